/*
 * test_chunk - content-addressed chunks: ids and keys, round trips, storing
 * identical bytes once, refusing bytes that do not hash to their id, and the
 * decompressed-chunk cache (only compressed chunks, LRU, bounded).
 */
#include <errno.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "testutil.h"
#include "fs/daemon/chunk_i.h"

struct fixture {
	char *dir;
	struct store *s;
	struct cluster *c; /* this node alone: what a mount without peers uses */
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct store_options o;

	f->dir = tu_tmpdir();
	tu_options(&o, NULL);
	assert_int_equal(store_open(f->dir, &o, &f->s), 0);
	struct cluster_options co = { 0 };
	assert_int_equal(cluster_open(f->s, &co, &f->c), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	cluster_close(f->c);
	store_close(f->s);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static void test_id_and_key(void **state)
{
	(void)state;
	uint8_t id[META_CHUNK_KEY], zero[META_CHUNK_KEY] = { 0 };
	char key[FS_CHUNK_KEY_LEN + 1], want[64];
	XXH128_hash_t h = XXH3_128bits("hello", 5);

	fs_chunk_id("hello", 5, id);
	fs_chunk_key(id, key);
	snprintf(want, sizeof(want), "c/%016llx%016llx", (unsigned long long)h.high64,
		 (unsigned long long)h.low64);
	assert_string_equal(key, want);
	assert_int_equal(strlen(key), FS_CHUNK_KEY_LEN);
	assert_false(fs_chunk_is_hole(id));
	assert_true(fs_chunk_is_hole(zero));
}

static void test_roundtrip_dedup(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[META_CHUNK_SIZE], back[META_CHUNK_SIZE];
	static const size_t sizes[] = { 1, 4096, 65537, META_CHUNK_SIZE };
	uint8_t id[META_CHUNK_KEY];
	struct store_stats before, after;

	for (size_t i = 0; i < 4; i++) {
		tu_fill(data, sizes[i], i);
		assert_int_equal(fs_chunk_put(f->c, data, sizes[i], id), 0);
		assert_int_equal(fs_chunk_read(NULL, f->c, id, back, sizeof(back)),
				 (ssize_t)sizes[i]);
		assert_memory_equal(back, data, sizes[i]);
		store_stats(f->s, &before);
		assert_int_equal(fs_chunk_put(f->c, data, sizes[i], id), 0);
		store_stats(f->s, &after);
		assert_int_equal(after.appended, before.appended); /* stored once */
	}
	assert_int_equal(fs_chunk_read(NULL, f->c, id, back, 10), -ERANGE);
	assert_int_equal(fs_chunk_put(f->c, data, 0, id), -EINVAL);
	assert_int_equal(fs_chunk_put(f->c, data, META_CHUNK_SIZE + 1, id), -EINVAL);
	memset(id, 0x5a, sizeof(id));
	assert_int_equal(fs_chunk_read(NULL, f->c, id, back, sizeof(back)), -ENOENT);
}

/* A chunk's record carries the xxh3-64 of its bytes, taken from the id past
 * 240 bytes (fs_chunk_put): the store's full check (store_read) agrees at
 * every size, and so does xxhash itself at random sizes. */
static void test_value_hash_from_id(void **state)
{
	struct fixture *f = *state;
	static uint8_t data[META_CHUNK_SIZE], back[META_CHUNK_SIZE];
	static const size_t sizes[] = { 1, 17, 240, 241, 242, 4096, 65537, META_CHUNK_SIZE };
	uint8_t id[META_CHUNK_KEY];
	char key[FS_CHUNK_KEY_LEN + 1];
	struct store_meta m;
	size_t vl;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		tu_fill(data, sizes[i], 100 + i);
		assert_int_equal(fs_chunk_put(f->c, data, sizes[i], id), 0);
		fs_chunk_key(id, key);
		assert_int_equal(
		    store_read(f->s, key, FS_CHUNK_KEY_LEN, back, sizeof(back), &vl, &m), 0);
		assert_int_equal(vl, sizes[i]);
		assert_memory_equal(back, data, sizes[i]);
		assert_true(m.value_hash == XXH3_64bits(data, sizes[i]));
	}
	tu_fill(data, sizeof(data), 7);
	for (size_t len = 241; len <= META_CHUNK_SIZE; len = len * 3 + 1)
		assert_true(XXH3_64bits(data, len) == XXH3_128bits(data, len).low64);
}

static void test_wrong_bytes_refused(void **state)
{
	struct fixture *f = *state;
	uint8_t id[META_CHUNK_KEY], back[64];
	char key[FS_CHUNK_KEY_LEN + 1];

	/* the store holds other bytes under this chunk's key */
	fs_chunk_id("the real bytes", 14, id);
	fs_chunk_key(id, key);
	assert_int_equal(store_put(f->s, key, FS_CHUNK_KEY_LEN, "other bytes!!!", 14, NULL), 0);
	assert_int_equal(fs_chunk_read(NULL, f->c, id, back, sizeof(back)), -EBADMSG);
}

static void test_cache(void **state)
{
	struct fixture *f = *state;
	struct fs_chunk_cache *c;
	struct fs_chunk_cache_stats st;
	static uint8_t text[20][8192], photo[8192], back[8192];
	uint8_t ids[20][META_CHUNK_KEY], pid[META_CHUNK_KEY];

	assert_int_equal(fs_chunk_cache_new(5 * 8192, &c), 0);
	for (int i = 0; i < 20; i++) {
		memset(text[i], 'a' + i, sizeof(text[i]));
		snprintf((char *)text[i], 32, "chunk %d", i);
		assert_int_equal(fs_chunk_put(f->c, text[i], sizeof(text[i]), ids[i]), 0);
	}
	tu_fill(photo, sizeof(photo), 99);
	assert_int_equal(fs_chunk_put(f->c, photo, sizeof(photo), pid), 0);

	/* an incompressible chunk is not cached: its read is a copy already */
	assert_int_equal(fs_chunk_read(c, f->c, pid, back, sizeof(back)), (ssize_t)sizeof(photo));
	fs_chunk_cache_stats(c, &st);
	assert_int_equal(st.entries, 0);
	/* compressed ones are, and hit on the second read */
	assert_int_equal(fs_chunk_read(c, f->c, ids[0], back, sizeof(back)), 8192);
	assert_int_equal(fs_chunk_read(c, f->c, ids[0], back, sizeof(back)), 8192);
	assert_memory_equal(back, text[0], 8192);
	fs_chunk_cache_stats(c, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.entries, 1);
	/* bounded: 20 chunks through a cache of 5; the most recent stay */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 20; i++) {
			assert_int_equal(fs_chunk_read(c, f->c, ids[i], back, sizeof(back)), 8192);
			assert_memory_equal(back, text[i], 8192);
			/* keep chunk 0 hot */
			assert_int_equal(fs_chunk_read(c, f->c, ids[0], back, sizeof(back)), 8192);
		}
	}
	fs_chunk_cache_stats(c, &st);
	assert_true(st.bytes <= 5 * 8192);
	assert_true(st.entries <= 5);
	uint64_t hits = st.hits;
	assert_int_equal(fs_chunk_read(c, f->c, ids[0], back, sizeof(back)), 8192);
	assert_int_equal(fs_chunk_read(c, f->c, ids[19], back, sizeof(back)), 8192);
	fs_chunk_cache_stats(c, &st);
	assert_int_equal(st.hits, hits + 2);
	assert_int_equal(fs_chunk_read(c, f->c, ids[19], back, 100), -ERANGE);
	fs_chunk_cache_free(c);
}

/* Ids are store keys on disk: the AVX2 build must give the same bytes as the
 * portable one, for every length (short tails, odd sizes, whole chunks). */
static void test_id_avx2_matches(void **state)
{
	static uint8_t data[1 << 20];
	static const size_t sizes[] = { 1024, 1025, 4099, 65536 + 17, 1 << 20 };

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 2654435761u >> 13);
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx2"))
		skip();
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint8_t a[META_CHUNK_KEY], b[META_CHUNK_KEY];
		XXH128_canonical_t c;
		XXH128_canonicalFromHash(&c, XXH3_128bits(data, sizes[k]));
		fs_chunk_id(data, sizes[k], a);
		fs_chunk_id_avx2(data, sizes[k], b);
		assert_memory_equal(a, c.digest, META_CHUNK_KEY);
		assert_memory_equal(b, c.digest, META_CHUNK_KEY);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id_and_key),
		cmocka_unit_test(test_id_avx2_matches),
		cmocka_unit_test_setup_teardown(test_roundtrip_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_hash_from_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_bytes_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cache, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
