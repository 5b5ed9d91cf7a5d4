/*
 * test_keydir - the hash table on its own: insert/find/remove against a brute
 * force list, backward-shift deletion under heavy collisions and wrap-around,
 * and range scans (what hash-tree buckets use) against a full walk.
 */
#include "testutil.h"
#include "store/log/keydir_i.h"

#define N 50000

/* Key number i of a key set. With collide, only keys whose hash lies in the
 * last 1/64 of the hash space are used: their home slots crowd the end of the
 * table, so runs are long and wrap around to slot 0. */
static int key_for(int i, int collide, char *buf)
{
	static int *picked;
	static int npicked;

	if (!collide)
		return sprintf(buf, "k%d", i);
	if (!picked) {
		picked = malloc(N * sizeof(int));
		for (int c = 0; npicked < N; c++) {
			int kl = sprintf(buf, "c%d", c);
			if (store_key_hash(buf, (size_t)kl) >> 58 == 63)
				picked[npicked++] = c;
		}
	}
	return sprintf(buf, "c%d", picked[i]);
}

static uint64_t hash_of(const char *key, int kl)
{
	return store_key_hash(key, (size_t)kl);
}

static void fill_and_check(int collide)
{
	struct store_kd *kd;
	char key[32];
	int present[N] = { 0 };
	uint64_t rng = 5;

	assert_int_equal(store_kd_create(0, &kd), 0);
	for (int i = 0; i < N; i++) {
		int kl = key_for(i, collide, key);
		struct store_kd_entry *e = store_kd_insert(kd, hash_of(key, kl), key, (size_t)kl);
		assert_non_null(e);
		e->stamp = (uint64_t)i;
		present[i] = 1;
	}
	assert_int_equal(store_kd_count(kd), N);
	/* remove a random half, re-add some */
	for (int j = 0; j < N; j++) {
		int i = (int)(tu_rand(&rng) % N);
		int kl = key_for(i, collide, key);
		struct store_kd_entry *e = store_kd_find(kd, hash_of(key, kl), key, (size_t)kl);
		if (present[i]) {
			assert_non_null(e);
			assert_int_equal(e->stamp, (uint64_t)i);
			store_kd_remove(kd, e);
			present[i] = 0;
		} else {
			assert_null(e);
			if (j % 3 == 0) {
				e = store_kd_insert(kd, hash_of(key, kl), key, (size_t)kl);
				assert_non_null(e);
				e->stamp = (uint64_t)i;
				present[i] = 1;
			}
		}
	}
	size_t count = 0;
	for (int i = 0; i < N; i++) {
		int kl = key_for(i, collide, key);
		struct store_kd_entry *e = store_kd_find(kd, hash_of(key, kl), key, (size_t)kl);
		if (present[i]) {
			assert_non_null(e);
			assert_int_equal(e->stamp, (uint64_t)i);
			assert_int_equal(e->key_len, kl);
			assert_memory_equal(e->key, key, (size_t)kl);
			count++;
		} else {
			assert_null(e);
		}
	}
	assert_int_equal(store_kd_count(kd), count);
	size_t pos = 0, walked = 0;
	while (store_kd_next(kd, &pos))
		walked++;
	assert_int_equal(walked, count);
	store_kd_destroy(kd);
}

static void test_insert_find_remove(void **state)
{
	(void)state;
	fill_and_check(0);
}

static void test_collisions_wrap(void **state)
{
	(void)state;
	fill_and_check(1);
}

struct range_acc {
	uint64_t lo, hi;
	size_t n;
	int bad;
};

static void range_cb(void *arg, struct store_kd_entry *e)
{
	struct range_acc *a = arg;

	uint64_t h = store_kd_hash(e);

	if (h < a->lo || h > a->hi)
		a->bad++;
	a->n++;
}

static void test_range(void **state)
{
	(void)state;
	for (int collide = 0; collide < 2; collide++) {
		struct store_kd *kd;
		char key[32];
		uint64_t rng = 9;

		assert_int_equal(store_kd_create(0, &kd), 0);
		for (int i = 0; i < N / 2; i++) {
			int kl = key_for(i, collide, key);
			assert_non_null(store_kd_insert(kd, hash_of(key, kl), key, (size_t)kl));
		}
		for (int t = 0; t < 300; t++) {
			uint64_t a = tu_rand(&rng), b = tu_rand(&rng);
			struct range_acc acc;
			size_t want = 0, pos = 0;
			struct store_kd_entry *e;

			if (t % 3 == 0) /* hash-tree leaf buckets: 16-bit prefixes */
				b = (a | 0x0000FFFFFFFFFFFFull), a &= 0xFFFF000000000000ull;
			if (a > b) {
				uint64_t x = a;
				a = b;
				b = x;
			}
			if (t == 0)
				a = 0, b = UINT64_MAX;
			acc = (struct range_acc){ .lo = a, .hi = b };
			store_kd_range(kd, a, b, range_cb, &acc);
			while ((e = store_kd_next(kd, &pos)) != NULL)
				if (store_kd_hash(e) >= a && store_kd_hash(e) <= b)
					want++;
			assert_int_equal(acc.bad, 0);
			assert_int_equal(acc.n, want);
		}
		store_kd_destroy(kd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_collisions_wrap),
		cmocka_unit_test(test_range),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
