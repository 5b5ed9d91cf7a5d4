/*
 * test_record - the record format: header round trip, a decoder that rejects
 * every malformed field, and the checked-in golden DATA_DIR (tests/data/golden)
 * decoded byte by byte, so that a format change is deliberate.
 * `CASKFS_WRITE_GOLDEN=DIR test_record` writes the golden files again.
 */
#include <errno.h>

#include "testutil.h"
#include "store/log/record_i.h"

#ifndef CASKFS_SRCDIR
#define CASKFS_SRCDIR "."
#endif
#define GOLDEN CASKFS_SRCDIR "/tests/data/golden"
/* The tree root of the golden content: part of the sync protocol, must not move. */
#define GOLDEN_ROOT UINT64_C(0xe32f18b6fcab50f1)

static void test_header_roundtrip(void **state)
{
	(void)state;
	struct store_rec_hdr h = { .checksum = 0x1122334455667788ull,
				   .stamp = 0x0102030405060708ull,
				   .value_hash = 0xA1A2A3A4A5A6A7A8ull,
				   .node = 0xDEADBEEF,
				   .stored_len = 100,
				   .raw_len = 300,
				   .key_len = 250,
				   .flags = STORE_REC_ZSTD,
				   .version = STORE_REC_VERSION },
			     d;
	uint8_t b[STORE_REC_HDR];

	store_rec_encode(&h, b);
	/* little-endian, field by field */
	assert_int_equal(b[0], 0x88);
	assert_int_equal(b[8], 0x08);
	assert_int_equal(b[24], 0xEF);
	assert_int_equal(b[36], 250);
	assert_int_equal(b[38], STORE_REC_ZSTD);
	assert_int_equal(b[39], 1);
	assert_int_equal(store_rec_decode(b, &d), 0);
	assert_memory_equal(&h, &d, sizeof(h));
	assert_int_equal(store_rec_size(&d), 40 + 250 + 100);
}

static void expect_bad(struct store_rec_hdr h)
{
	uint8_t b[STORE_REC_HDR];
	struct store_rec_hdr d;

	store_rec_encode(&h, b);
	assert_int_equal(store_rec_decode(b, &d), -EBADMSG);
}

static void test_decode_rejects(void **state)
{
	(void)state;
	const struct store_rec_hdr ok = {
		.key_len = 3, .stored_len = 5, .raw_len = 5, .version = STORE_REC_VERSION
	};
	struct store_rec_hdr h;

	h = ok, h.version = 2, expect_bad(h);
	h = ok, h.version = 0, expect_bad(h);
	h = ok, h.flags = 0x80, expect_bad(h);
	h = ok, h.key_len = 0, expect_bad(h);
	h = ok, h.key_len = STORE_KEY_MAX + 1, expect_bad(h);
	h = ok, h.stored_len = STORE_VALUE_MAX + 1, h.raw_len = h.stored_len, expect_bad(h);
	h = ok, h.raw_len = 6, expect_bad(h);		      /* uncompressed lengths must agree */
	h = ok, h.flags = STORE_REC_TOMBSTONE, expect_bad(h); /* a tombstone has no value */
	h = ok, h.flags = STORE_REC_TOMBSTONE | STORE_REC_ZSTD, h.stored_len = h.raw_len = 0,
	expect_bad(h);
	h = ok, h.flags = STORE_REC_ZSTD, h.raw_len = STORE_VALUE_MAX + 1, expect_bad(h);
	/* and all zeroes (a hole in a file) is not a record */
	uint8_t zero[STORE_REC_HDR] = { 0 };
	assert_int_equal(store_rec_decode(zero, &h), -EBADMSG);
}

static void golden_content(struct store *s)
{
	uint8_t photo[5000];
	char beta[300];
	struct store_version v = { .node = 7 };

	memset(beta, 'b', sizeof(beta));
	tu_fill(photo, sizeof(photo), 5);
	v.stamp = 1 << 16;
	assert_int_equal(store_apply(s, "alpha", 5, "first value", 11, &v, false), 0);
	v.stamp = 2 << 16;
	assert_int_equal(store_apply(s, "beta", 4, beta, sizeof(beta), &v, false), 0);
	v.stamp = 3 << 16;
	assert_int_equal(store_apply(s, "photo.jpg", 9, photo, sizeof(photo), &v, false), 0);
	v.stamp = 4 << 16;
	assert_int_equal(store_apply(s, "gamma", 5, "to be deleted", 13, &v, false), 0);
	v.stamp = 5 << 16;
	assert_int_equal(store_apply(s, "gamma", 5, NULL, 0, &v, true), 0);
}

static void test_golden(void **state)
{
	(void)state;
	char *dir = tu_tmpdir(), cmd[8192];
	struct store_options o;
	struct tu_log log;
	struct store *s;
	size_t n;

	/* the segment header and first record, byte by byte */
	FILE *f = fopen(GOLDEN "/log/000001.cask", "rb");
	assert_non_null(f);
	uint8_t b[4096];
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	assert_true(n > 16 + 40 + 5 + 11);
	assert_memory_equal(b, "CASKSEG\0\1\0\0\0\1\0\0\0", 16);
	struct store_rec_hdr h;
	assert_int_equal(store_rec_decode(b + 16, &h), 0);
	assert_int_equal(h.stamp, 1 << 16);
	assert_int_equal(h.node, 7);
	assert_int_equal(h.key_len, 5);
	assert_int_equal(h.stored_len, 11);
	assert_int_equal(h.raw_len, 11);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.value_hash, store_key_hash("first value", 11));
	assert_memory_equal(b + 56, "alphafirst value", 16);
	assert_int_equal(h.checksum,
			 store_rec_checksum(b + 16, b + 56, 5, store_key_hash(b + 61, 11)));
	/* second record: "beta", compressed */
	assert_int_equal(store_rec_decode(b + 72, &h), 0);
	assert_int_equal(h.flags, STORE_REC_ZSTD);
	assert_int_equal(h.raw_len, 300);
	assert_true(h.stored_len < 300);

	/* the whole DATA_DIR opens from its hint and reads back */
	snprintf(cmd, sizeof(cmd), "cp -r '%s/log' '%s/'", GOLDEN, dir);
	assert_int_equal(system(cmd), 0);
	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 4096;
	assert_int_equal(store_open(dir, &o, &s), 0);
	assert_int_equal(log.len, 0);
	char beta[300];
	uint8_t photo[5000];
	memset(beta, 'b', sizeof(beta));
	tu_fill(photo, sizeof(photo), 5);
	tu_expect(s, "alpha", 5, "first value", 11);
	tu_expect(s, "beta", 4, beta, sizeof(beta));
	tu_expect(s, "photo.jpg", 9, photo, sizeof(photo));
	struct store_meta m;
	assert_int_equal(store_stat(s, "gamma", 5, &m), -ENOENT);
	assert_true(m.tombstone);
	assert_int_equal(m.version.stamp, 5 << 16);
	assert_int_equal(store_stat(s, "photo.jpg", 9, &m), 0);
	assert_int_equal(m.segment, 2);
	struct store_stats st;
	store_stats(s, &st);
	assert_int_equal(st.keys, 3);
	assert_int_equal(st.tombstones, 1);
	printf("golden tree root %016llx\n", (unsigned long long)st.tree_root);
	assert_int_equal(st.tree_root, GOLDEN_ROOT);
	store_close(s);
	tu_rmdir(dir);
}

int main(void)
{
	const char *gen = getenv("CASKFS_WRITE_GOLDEN");

	if (gen) {
		struct store_options o;
		struct store *s;

		tu_options(&o, NULL);
		o.segment_size = 4096;
		if (store_open(gen, &o, &s) != 0)
			return 1;
		golden_content(s);
		return store_close(s) != 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
