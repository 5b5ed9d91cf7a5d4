/*
 * test_scrub - the scrubber's pass (store/log/scrub.c) run in the test's
 * thread: a flipped byte in a sealed segment, a value whose checksum is
 * right but which fails the owner's check, a damaged record that is no
 * longer its key's newest, the repair callback, and the position kept in
 * scrub.state; then the content hash of meta/chash.c (hole = zeros).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>

#include "fs/daemon/chunk_i.h"
#include "meta/meta.h"

struct calls {
	int repairs;
	char keys[8][32];
};

static int check(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)arg;
	(void)vlen;
	/* "bad*" keys stand for chunks whose bytes do not hash to their name */
	return klen >= 3 && memcmp(key, "bad", 3) == 0 && ((const char *)val)[0] != 'B' ? -EBADMSG
											      : 0;
}

static int repair(void *arg, const void *key, size_t klen, const struct store_version *v)
{
	struct calls *c = arg;

	(void)v;
	if (c->repairs < 8)
		snprintf(c->keys[c->repairs], sizeof(c->keys[0]), "%.*s", (int)klen,
			 (const char *)key);
	c->repairs++;
	return 0;
}

static void test_pass_finds_what_is_damaged(void **state)
{
	char *dir = tu_tmpdir(), path[4200];
	struct store_options o;
	struct store *s;
	struct store_meta m;
	uint8_t val[1000];

	(void)state;
	store_options_init(&o);
	o.no_background = true;
	o.segment_size = 8192;
	assert_int_equal(store_open(dir, &o, &s), 0);
	uint64_t x = 88172645463325252ull; /* incompressible bytes: offsets below are exact */
	for (size_t i = 0; i < sizeof(val); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		val[i] = (uint8_t)x;
	}
	val[0] = 'x';
	for (int i = 0; i < 20; i++) {
		char k[16];
		snprintf(k, sizeof(k), "key%02d", i);
		assert_int_equal(store_put(s, k, strlen(k), val, sizeof(val), NULL), 0);
	}
	assert_int_equal(store_put(s, "bad1", 4, val, sizeof(val), NULL), 0); /* fails check */
	assert_int_equal(store_put(s, "key03", 5, val, sizeof(val), NULL), 0); /* key03 moves on */
	assert_int_equal(store_roll(s), 0);
	/* a byte of key05's value and of key03's old record, behind the store's back */
	struct store_meta m5, m3;
	assert_int_equal(store_stat(s, "key05", 5, &m5), 0);
	assert_int_equal(store_stat(s, "key03", 5, &m3), 0);
	assert_int_equal(store_close(s), 0);
	snprintf(path, sizeof(path), "%s/log/%06u.cask", dir, m5.segment);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b = 0;
	assert_int_equal(pwrite(fd, &b, 1, m5.offset + 48 + 5 + 500), 1); /* a version 2 header */
	close(fd);
	snprintf(path, sizeof(path), "%s/log/%06u.cask", dir, 1u);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	/* key03's first record is in segment 1, the fourth record there */
	assert_int_equal(pwrite(fd, &b, 1, 16 + 3 * (48 + 5 + 1000) + 48 + 5 + 10), 1);
	close(fd);

	assert_int_equal(store_open(dir, &o, &s), 0);
	struct calls calls = { 0 };
	struct store_scrub_options so = { .rate = 1u << 30, .check = check, .repair = repair,
					  .arg = &calls };
	struct store_scrub_stats st;
	assert_int_equal(store_scrub_pass(s, &so, &st), 0);
	assert_int_equal(st.passes, 1);
	assert_int_equal(st.records, 22);
	assert_int_equal(st.damaged, 3);
	assert_int_equal(st.repaired, 2); /* key05 and bad1: their newest records */
	assert_int_equal(st.stale, 1);	  /* key03's old record: garbage already */
	assert_int_equal(calls.repairs, 2);
	assert_true(strcmp(calls.keys[0], "key05") == 0 || strcmp(calls.keys[1], "key05") == 0);
	assert_true(strcmp(calls.keys[0], "bad1") == 0 || strcmp(calls.keys[1], "bad1") == 0);
	assert_int_equal(store_stat(s, "key05", 5, &m), 0);
	/* the progress is on disk, and what a store without a thread reports */
	struct store_scrub_stats disk;
	assert_int_equal(store_scrub_state_read(dir, &disk), 0);
	assert_int_equal(disk.passes, 1);
	assert_int_equal(disk.damaged, 3);
	assert_false(disk.running);
	store_scrub_stats(s, &st);
	assert_false(st.enabled);
	assert_int_equal(st.repaired, 2);
	/* no rate, no scrubber */
	so.rate = 0;
	assert_int_equal(store_scrub_start(s, &so), -EINVAL);
	so.rate = 1 << 20;
	assert_int_equal(store_scrub_start(s, &so), 0);
	assert_int_equal(store_scrub_start(s, &so), -EBUSY);
	assert_int_equal(store_scrub_now(s), 0);
	assert_int_equal(store_close(s), 0); /* stops the thread */
	tu_rmdir(dir);
}

static void test_pauses_while_busy(void **state)
{
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	uint8_t val[4000];
	void *v;
	size_t vl;

	(void)state;
	store_options_init(&o);
	o.no_background = true;
	o.segment_size = 16384;
	assert_int_equal(store_open(dir, &o, &s), 0);
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 2654435761u >> 13);
	for (int i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i);
		val[0] = (uint8_t)i;
		assert_int_equal(store_put(s, k, strlen(k), val, sizeof(val), NULL), 0);
	}
	assert_int_equal(store_roll(s), 0);
	/* 800 KB at 200 KB/s: four seconds of work, paused while busy */
	struct store_scrub_options so = { .rate = 200000, .busy_ops = 50 };
	assert_int_equal(store_scrub_start(s, &so), 0);
	assert_int_equal(store_scrub_now(s), 0);
	struct store_scrub_stats st;
	bool paused = false;
	uint64_t at_pause = 0, later = 0;
	for (int round = 0; round < 400 && !paused; round++) { /* far above 50 gets a second */
		for (int i = 0; i < 20; i++) {
			assert_int_equal(store_get(s, "k001", 4, &v, &vl, NULL), 0);
			free(v);
		}
		usleep(5000);
		store_scrub_stats(s, &st);
		if (st.paused) {
			paused = true;
			at_pause = st.pass_bytes;
		}
	}
	assert_true(paused);
	for (int round = 0; round < 100; round++) { /* still busy: no progress */
		for (int i = 0; i < 20; i++) {
			assert_int_equal(store_get(s, "k001", 4, &v, &vl, NULL), 0);
			free(v);
		}
		usleep(5000);
	}
	store_scrub_stats(s, &st);
	later = st.pass_bytes;
	assert_true(later - at_pause < 40000); /* a record or two at most */
	store_scrub_stop(s);
	assert_int_equal(store_close(s), 0);
	tu_rmdir(dir);
}

static void test_content_hash(void **state)
{
	static uint8_t zeros[1 << 20];
	uint8_t h1[META_CONTENT_HASH], h2[META_CONTENT_HASH], h3[META_CONTENT_HASH];
	struct meta_inode holes = { .size = 3u << 20 }; /* no slot: all holes */
	struct meta_chunk z[2] = { { .idx = 1, .len = 1 << 20 }, { .idx = 2 } };

	(void)state;
	assert_int_equal(meta_content_hash(&holes, h1), 0);
	/* a stored slot of zeros (the id of 1 MiB of zeros) hashes as a hole */
	fs_chunk_id(zeros, sizeof(zeros), z[0].key);
	struct meta_inode b = { .size = 3u << 20, .nchunks = 1, .chunks = z };
	assert_int_equal(meta_content_hash(&b, h2), 0);
	assert_memory_equal(h1, h2, sizeof(h1));
	assert_true(meta_chunk_is_zero(z[0].key, 1 << 20));
	/* data in slot 2, and its length cut to the file's end */
	z[1].key[0] = 1;
	z[1].len = 1 << 20;
	b.nchunks = 2;
	assert_int_equal(meta_content_hash(&b, h2), 0);
	assert_memory_not_equal(h1, h2, sizeof(h1));
	b.size = (2u << 20) + 10; /* slot 2 holds 10 bytes now */
	assert_int_equal(meta_content_hash(&b, h3), 0);
	z[1].len = 10;
	assert_int_equal(meta_content_hash(&b, h2), 0);
	assert_memory_equal(h2, h3, sizeof(h2));
	/* fed slot by slot, the same */
	struct meta_content_hasher *h = meta_content_hash_begin(b.size);
	assert_non_null(h);
	meta_content_hash_slot(h, 2, 10, z[1].key);
	meta_content_hash_end(h, h3);
	assert_memory_equal(h2, h3, sizeof(h2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass_finds_what_is_damaged),
		cmocka_unit_test(test_pauses_while_busy),
		cmocka_unit_test(test_content_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
