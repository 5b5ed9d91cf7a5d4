/*
 * test_record - the record format: header round trip of both versions, a
 * decoder that rejects every malformed field, and the checked-in golden
 * DATA_DIRs decoded byte by byte, so that a format change is deliberate:
 * tests/data/golden/log (format version 1, written before flags and expiry
 * times; frozen: nothing writes version 1 any more) and
 * tests/data/golden/log-v2 (the current format).
 * `CASKFS_WRITE_GOLDEN=DIR test_record` writes the current golden content
 * into DIR/log (copy it to tests/data/golden/log-v2).
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
#define GOLDEN_V2_ROOT UINT64_C(0x83fbe4a9f95dd62f)

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

	h.client_flags = 0xFFFFFFFF;
	h.expires = 0x5A5B5C5D;
	store_rec_encode(&h, b);
	/* little-endian, field by field */
	assert_int_equal(b[0], 0x88);
	assert_int_equal(b[8], 0x08);
	assert_int_equal(b[24], 0xEF);
	assert_int_equal(b[36], 250);
	assert_int_equal(b[38], STORE_REC_ZSTD);
	assert_int_equal(b[39], 2);
	assert_int_equal(b[40], 0xFF);
	assert_int_equal(b[43], 0xFF);
	assert_int_equal(b[44], 0x5D);
	assert_int_equal(b[47], 0x5A);
	assert_int_equal(store_rec_decode(b, sizeof(b), &d), 0);
	assert_memory_equal(&h, &d, sizeof(h));
	assert_int_equal(store_rec_size(&d), 48 + 250 + 100);
	/* a version 2 header cut short is not a header */
	assert_int_equal(store_rec_decode(b, 47, &d), -EBADMSG);

	/* version 1: 40 bytes, no flags, no expiry */
	h.version = 1;
	memset(b, 0xEE, sizeof(b));
	store_rec_encode(&h, b);
	assert_int_equal(b[39], 1);
	assert_int_equal(b[40], 0xEE); /* not written */
	assert_int_equal(store_rec_decode(b, 40, &d), 0);
	assert_int_equal(d.client_flags, 0);
	assert_int_equal(d.expires, 0);
	assert_int_equal(store_rec_size(&d), 40 + 250 + 100);
	assert_int_equal(store_rec_decode(b, 39, &d), -EBADMSG);
	/* the checksum covers the header of its own version */
	uint8_t key[3] = { 'a', 'b', 'c' };
	h.version = 2;
	store_rec_encode(&h, b);
	uint64_t c2 = store_rec_checksum(b, key, 3, 7);
	b[45] ^= 1;
	assert_true(store_rec_checksum(b, key, 3, 7) != c2);
	h.version = 1;
	store_rec_encode(&h, b);
	uint64_t c1 = store_rec_checksum(b, key, 3, 7);
	b[45] ^= 1; /* the key's place in version 1: not part of the header */
	assert_true(store_rec_checksum(b, key, 3, 7) == c1);
}

static void expect_bad(struct store_rec_hdr h)
{
	uint8_t b[STORE_REC_HDR];
	struct store_rec_hdr d;

	store_rec_encode(&h, b);
	assert_int_equal(store_rec_decode(b, sizeof(b), &d), -EBADMSG);
}

static void test_decode_rejects(void **state)
{
	(void)state;
	const struct store_rec_hdr ok = {
		.key_len = 3, .stored_len = 5, .raw_len = 5, .version = STORE_REC_VERSION
	};
	struct store_rec_hdr h;

	h = ok, h.version = 3, expect_bad(h);
	h = ok, h.version = 0, expect_bad(h);
	h = ok, h.version = 1, h.flags = 0x80, expect_bad(h);
	/* a tombstone has no expiry time */
	h = ok, h.flags = STORE_REC_TOMBSTONE, h.stored_len = h.raw_len = 0, h.expires = 5,
	expect_bad(h);
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
	assert_int_equal(store_rec_decode(zero, sizeof(zero), &h), -EBADMSG);
	/* and the segment header: versions 1 and 2, nothing else */
	uint8_t seg[STORE_SEG_HDR];
	store_seg_encode(9, seg);
	assert_int_equal(store_seg_decode(seg, 9), 2);
	assert_int_equal(store_seg_decode(seg, 8), -EBADMSG);
	seg[8] = 1;
	assert_int_equal(store_seg_decode(seg, 9), 1);
	seg[8] = 3;
	assert_int_equal(store_seg_decode(seg, 9), -EBADMSG);
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

/* What version 2 adds: flags, up to 2^32-1, and expiry times. */
static void golden_content_v2(struct store *s)
{
	struct store_version v = { .node = 7 };
	struct store_attr pickled = { 1, 0 }, top = { UINT32_MAX, 0 }, later = { 16, 4000000000u },
			  gone = { 2, 1 };

	golden_content(s);
	v.stamp = 6 << 16;
	assert_int_equal(store_apply_attr(s, "pickled", 7, "\x80\x04K*.", 5, &v, false, &pickled),
			 0);
	v.stamp = 7 << 16;
	assert_int_equal(store_apply_attr(s, "top", 3, "flags", 5, &v, false, &top), 0);
	v.stamp = 8 << 16;
	assert_int_equal(store_apply_attr(s, "later", 5, "until 2096", 10, &v, false, &later), 0);
	v.stamp = 9 << 16;
	assert_int_equal(store_apply_attr(s, "gone", 4, "expired", 7, &v, false, &gone), 0);
}

static void test_golden(void **state)
{
	(void)state;
	char *dir = tu_tmpdir(), cmd[8192];
	struct store_options o;
	struct tu_log log;
	struct store *s;
	void *got;
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
	assert_int_equal(store_rec_decode(b + 16, n - 16, &h), 0);
	assert_int_equal(h.version, 1);
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
	assert_int_equal(store_rec_decode(b + 72, n - 72, &h), 0);
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
	/* the last segment, of version 1, is sealed: new records go to a new one */
	assert_string_equal(log.text, "segment 000003 is in format version 1: sealed, new records "
				      "go to a new segment\n");
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
	/* old records have no flags and no expiry; a new record is of version 2,
	 * in a version 2 segment */
	assert_int_equal(store_get(s, "alpha", 5, &got, &n, &m), 0);
	free(got);
	assert_int_equal(m.attr.flags, 0);
	assert_int_equal(m.attr.expires, 0);
	struct store_attr a = { 42, 0 };
	assert_int_equal(store_put_attr(s, "new", 3, "v2", 2, &a, &m), 0);
	assert_int_equal(m.segment, 4);
	assert_int_equal(store_close(s), 0);
	char path[4200];
	snprintf(path, sizeof(path), "%s/log/000004.cask", dir);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	assert_memory_equal(b, "CASKSEG\0\2\0\0\0\4\0\0\0", 16);
	assert_int_equal(store_rec_decode(b + 16, n - 16, &h), 0);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.client_flags, 42);
	/* and it all opens again: 000003 now from the hint written for it */
	tu_log_init(&log);
	assert_int_equal(store_open(dir, &o, &s), 0);
	assert_int_equal(log.len, 0);
	tu_expect(s, "beta", 4, beta, sizeof(beta));
	assert_int_equal(store_get(s, "new", 3, &got, &n, &m), 0);
	free(got);
	assert_int_equal(m.attr.flags, 42);
	store_close(s);
	tu_rmdir(dir);
}

static void test_golden_v2(void **state)
{
	(void)state;
	char *dir = tu_tmpdir(), cmd[8192];
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_rec_hdr h;
	struct store_meta m;
	uint8_t b[8192];
	void *got;
	size_t n;

	/* the segment header and the first record, byte by byte: version 2 */
	FILE *f = fopen(GOLDEN "/log-v2/000001.cask", "rb");
	assert_non_null(f);
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	assert_true(n > 16 + 48 + 5 + 11);
	assert_memory_equal(b, "CASKSEG\0\2\0\0\0\1\0\0\0", 16);
	assert_int_equal(store_rec_decode(b + 16, n - 16, &h), 0);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.stamp, 1 << 16);
	assert_int_equal(h.node, 7);
	assert_int_equal(h.key_len, 5);
	assert_int_equal(h.stored_len, 11);
	assert_int_equal(h.client_flags, 0);
	assert_int_equal(h.expires, 0);
	assert_memory_equal(b + 64, "alphafirst value", 16);
	assert_int_equal(h.checksum,
			 store_rec_checksum(b + 16, b + 64, 5, store_key_hash(b + 69, 11)));
	/* the hint of a sealed segment: version 2 entries (with the expiry) */
	f = fopen(GOLDEN "/log-v2/000001.hint", "rb");
	assert_non_null(f);
	n = fread(b, 1, sizeof(b), f);
	fclose(f);
	assert_memory_equal(b, "CASKHNT\0\2\0\0\0\1\0\0\0", 16);
	assert_int_equal(b[16 + 29], 5);		 /* key length */
	assert_memory_equal(b + 16 + 30, "\0\0\0\0", 4); /* no expiry */
	assert_memory_equal(b + 16 + 34, "alpha", 5);

	/* the records with flags and expiry times, wherever they are */
	snprintf(cmd, sizeof(cmd), "cp -r '%s/log-v2' '%s/log'", GOLDEN, dir);
	assert_int_equal(system(cmd), 0);
	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 4096;
	assert_int_equal(store_open(dir, &o, &s), 0);
	assert_int_equal(log.len, 0);
	char beta[300];
	memset(beta, 'b', sizeof(beta));
	tu_expect(s, "alpha", 5, "first value", 11);
	tu_expect(s, "beta", 4, beta, sizeof(beta));
	assert_int_equal(store_get(s, "pickled", 7, &got, &n, &m), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(got, "\x80\x04K*.", 5);
	free(got);
	assert_int_equal(m.attr.flags, 1);
	assert_int_equal(store_stat(s, "top", 3, &m), 0);
	assert_int_equal(m.attr.flags, UINT32_MAX);
	assert_int_equal(store_stat(s, "later", 5, &m), 0);
	assert_int_equal(m.attr.flags, 16);
	assert_int_equal(m.attr.expires, 4000000000u);
	struct store_stats st;
	store_stats(s, &st);
	printf("golden v2 tree root %016llx\n", (unsigned long long)st.tree_root);
	assert_int_equal(st.tree_root, GOLDEN_V2_ROOT);
	assert_int_equal(st.keys, 7);
	assert_int_equal(st.expiring, 2);
	/* expired in 1970: reads as absent, and its tombstone is the one every
	 * replica writes: the same stamp, node 7 with the top bit */
	assert_int_equal(store_get(s, "gone", 4, &got, &n, &m), -ENOENT);
	assert_true(m.tombstone);
	assert_int_equal(m.version.stamp, 9 << 16);
	assert_int_equal(m.version.node, 7 | STORE_EXPIRY_NODE);
	store_stats(s, &st);
	assert_int_equal(st.keys, 6);
	assert_int_equal(st.tombstones, 2);
	assert_int_equal(st.expired, 1);
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
		golden_content_v2(s);
		return store_close(s) != 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_decode_rejects),
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_golden_v2),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
