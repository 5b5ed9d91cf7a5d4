/*
 * test_chunkmap - a file's sparse chunk map: slots set in any order stay
 * sorted and unique, holes cost nothing (a map of a 1 TiB file written at
 * both ends holds two entries), punching and fitting to a size drop exactly
 * the slots they should and clip the last one, and allocation counts blocks.
 */
#include "testutil.h"
#include "meta/meta.h"

static struct meta_chunk slot(uint32_t idx, uint32_t len, uint8_t tag)
{
	struct meta_chunk c = { .idx = idx, .len = len };

	memset(c.key, tag, sizeof(c.key));
	return c;
}

static void test_set_keeps_order(void **state)
{
	struct meta_map m = { 0 };
	uint32_t order[] = { 5, 1, 9, 3, 7, 0, 2 };

	(void)state;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		struct meta_chunk c = slot(order[i], 100 + order[i], (uint8_t)(order[i] + 1));
		assert_int_equal(meta_map_set(&m, &c), 0);
	}
	assert_int_equal(m.n, 7);
	for (uint32_t i = 1; i < m.n; i++)
		assert_true(m.v[i - 1].idx < m.v[i].idx);
	/* replacing a slot does not add one */
	struct meta_chunk c = slot(3, 42, 0x33);
	assert_int_equal(meta_map_set(&m, &c), 0);
	assert_int_equal(m.n, 7);
	assert_int_equal(meta_map_find(m.v, m.n, 3)->len, 42);
	assert_null(meta_map_find(m.v, m.n, 4));
	assert_null(meta_map_find(m.v, m.n, 10));
	assert_int_equal(meta_map_lower(m.v, m.n, 4), 4); /* 0 1 2 3 | 5 */
	meta_map_release(&m);
	assert_int_equal(m.n, 0);
}

static void test_sparse_terabyte(void **state)
{
	struct meta_map m = { 0 };
	uint64_t size = (uint64_t)1 << 40;
	uint32_t last = (uint32_t)(size / META_CHUNK_SIZE - 1);
	struct meta_chunk a = slot(0, META_CHUNK_SIZE, 1), b = slot(last, 4096, 2);

	(void)state;
	assert_int_equal(meta_map_set(&m, &b), 0);
	assert_int_equal(meta_map_set(&m, &a), 0);
	meta_map_fit(&m, size);
	assert_int_equal(m.n, 2);
	assert_true(m.cap <= 4);
	assert_int_equal(meta_map_allocated(m.v, m.n), META_CHUNK_SIZE + 4096);
	/* cut to a size inside the last slot: it is clipped, not dropped */
	meta_map_fit(&m, size - META_CHUNK_SIZE + 100);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.v[1].len, 100);
	assert_int_equal(meta_map_allocated(m.v, m.n), META_CHUNK_SIZE + 4096);
	/* cut to before it: dropped */
	meta_map_fit(&m, size - META_CHUNK_SIZE);
	assert_int_equal(m.n, 1);
	meta_map_fit(&m, 10);
	assert_int_equal(m.n, 1);
	assert_int_equal(m.v[0].len, 10);
	meta_map_fit(&m, 0);
	assert_int_equal(m.n, 0);
	meta_map_release(&m);
}

static void test_punch(void **state)
{
	struct meta_map m = { 0 };

	(void)state;
	for (uint32_t i = 0; i < 10; i++) {
		struct meta_chunk c = slot(i * 2, META_CHUNK_SIZE, (uint8_t)i);
		assert_int_equal(meta_map_set(&m, &c), 0);
	}
	meta_map_punch(&m, 3, 9); /* drops 4, 6, 8 */
	assert_int_equal(m.n, 7);
	assert_non_null(meta_map_find(m.v, m.n, 2));
	assert_null(meta_map_find(m.v, m.n, 4));
	assert_null(meta_map_find(m.v, m.n, 8));
	assert_non_null(meta_map_find(m.v, m.n, 10));
	meta_map_punch(&m, 5, 5); /* empty range */
	assert_int_equal(m.n, 7);
	meta_map_punch(&m, 0, UINT32_MAX);
	assert_int_equal(m.n, 0);
	meta_map_release(&m);
}

static void test_copy_and_reserved(void **state)
{
	struct meta_map m = { 0 }, d = { 0 };
	struct meta_chunk r = slot(1, 5000, 0), c = slot(0, 1, 7);

	(void)state;
	assert_int_equal(meta_map_set(&m, &c), 0);
	assert_int_equal(meta_map_set(&m, &r), 0);
	assert_true(meta_chunk_reserved(&m.v[1]));
	assert_false(meta_chunk_reserved(&m.v[0]));
	assert_int_equal(meta_map_copy(&d, m.v, m.n), 0);
	assert_int_equal(d.n, 2);
	assert_memory_equal(d.v, m.v, 2 * sizeof(*m.v));
	assert_int_equal(meta_map_allocated(d.v, d.n), 4096 + 8192);
	meta_map_release(&m);
	meta_map_release(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_keeps_order),
		cmocka_unit_test(test_sparse_terabyte),
		cmocka_unit_test(test_punch),
		cmocka_unit_test(test_copy_and_reserved),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
