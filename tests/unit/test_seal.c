/*
 * test_seal - the records of an encrypted session (store/node/seal.c): keys
 * per direction from the secret and both nonces, records that open only in
 * their place, every bound of the length prefix, and a golden session
 * (tests/data/golden/seal/session.bin) so a change of the wire format is
 * deliberate.
 */
#include <errno.h>
#include <string.h>

#include "testutil.h"

#include "store/node/seal.h"
#include "store/endian.h"

#ifndef CASKFS_SRCDIR
#define CASKFS_SRCDIR "."
#endif
#define GOLDEN CASKFS_SRCDIR "/tests/data/golden/seal/session.bin"

static const struct auth_key key = { { 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
				       12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
				       23, 24, 25, 26, 27, 28, 29, 30, 31, 32 } };
static const uint8_t cn[AUTH_NONCE] = "client nonce 16";
static const uint8_t sn[AUTH_NONCE] = "server nonce 16";

static void pair(struct seal *c, struct seal *s)
{
	seal_init(c, &key, cn, sn, 'c');
	seal_init(s, &key, cn, sn, 's');
}

static void test_round_trip(void **state)
{
	struct seal c, s;
	static uint8_t plain[SEAL_PLAIN_MAX], rec[SEAL_RECORD_MAX], out[SEAL_PLAIN_MAX];
	size_t n;

	(void)state;
	pair(&c, &s);
	tu_fill(plain, sizeof(plain), 7);
	size_t sizes[] = { 1, 2, 100, 4096, SEAL_PLAIN_MAX - 1, SEAL_PLAIN_MAX };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = seal_record(&c.tx, plain, sizes[i], rec);
		assert_int_equal(len, sizes[i] + SEAL_HEADER + SEAL_TAG);
		assert_int_equal(seal_peek(rec, len), (long)len);
		/* the plaintext does not show through */
		if (sizes[i] >= 16)
			assert_null(memmem(rec, len, plain, 16));
		/* every prefix asks for more, and consumes nothing */
		for (size_t k = 0; k < len; k += (k < 64 ? 1 : 997))
			assert_int_equal(seal_open(&s.rx, rec, k, out, sizeof(out), &n), 0);
		assert_int_equal(seal_open(&s.rx, rec, len, out, sizeof(out), &n), (long)len);
		assert_int_equal(n, sizes[i]);
		assert_memory_equal(out, plain, n);
	}
	/* the other direction has its own key */
	size_t len = seal_record(&s.tx, "STORED\r\n", 8, rec);
	assert_int_equal(seal_open(&s.rx, rec, len, out, sizeof(out), &n), -EBADMSG);
	assert_int_equal(seal_open(&c.rx, rec, len, out, sizeof(out), &n), (long)len);
	assert_memory_equal(out, "STORED\r\n", 8);
	assert_int_equal(seal_wire_size(0), 0);
	assert_int_equal(seal_wire_size(1), 21);
	assert_int_equal(seal_wire_size(SEAL_PLAIN_MAX + 1), SEAL_PLAIN_MAX + 1 + 40);
}

static void test_out_of_place(void **state)
{
	struct seal c, s, other;
	uint8_t r1[64], r2[64], out[64];
	size_t n;

	(void)state;
	pair(&c, &s);
	size_t l1 = seal_record(&c.tx, "first", 5, r1);
	size_t l2 = seal_record(&c.tx, "second", 6, r2);
	/* dropped or reordered: the second opens under the first's nonce */
	assert_int_equal(seal_open(&s.rx, r2, l2, out, sizeof(out), &n), -EBADMSG);
	assert_int_equal(s.rx.seq, 0);
	assert_int_equal(seal_open(&s.rx, r1, l1, out, sizeof(out), &n), (long)l1);
	/* replayed */
	assert_int_equal(seal_open(&s.rx, r1, l1, out, sizeof(out), &n), -EBADMSG);
	assert_int_equal(seal_open(&s.rx, r2, l2, out, sizeof(out), &n), (long)l2);
	/* every bit of a record matters, the length prefix included */
	pair(&c, &s);
	l1 = seal_record(&c.tx, "first", 5, r1);
	for (size_t bit = 0; bit < l1 * 8; bit++) {
		struct seal t = s;
		r1[bit / 8] ^= (uint8_t)(1 << (bit % 8));
		long rc = seal_open(&t.rx, r1, l1, out, sizeof(out), &n);
		assert_true(rc == -EBADMSG || rc == -EPROTO || rc == 0);
		r1[bit / 8] ^= (uint8_t)(1 << (bit % 8));
	}
	/* another session (other nonces) cannot open it */
	uint8_t sn2[AUTH_NONCE] = "server nonce 17";
	seal_init(&other, &key, cn, sn2, 's');
	assert_int_equal(seal_open(&other.rx, r1, l1, out, sizeof(out), &n), -EBADMSG);
	assert_int_equal(seal_open(&s.rx, r1, l1, out, sizeof(out), &n), (long)l1);
	seal_wipe(&s);
	assert_int_equal(s.rx.seq, 0);
}

static void test_bounds(void **state)
{
	struct seal c, s;
	uint8_t head[SEAL_HEADER + SEAL_TAG + 8] = { 0 }, out[8];
	size_t n;

	(void)state;
	pair(&c, &s);
	assert_int_equal(seal_peek(head, 3), 0);
	put_le32(head, 0);
	assert_int_equal(seal_peek(head, 4), -EPROTO);
	put_le32(head, SEAL_TAG); /* an empty record is not a record */
	assert_int_equal(seal_peek(head, 4), -EPROTO);
	assert_int_equal(seal_open(&s.rx, head, sizeof(head), out, sizeof(out), &n), -EPROTO);
	put_le32(head, SEAL_CIPHER_MAX + 1);
	assert_int_equal(seal_peek(head, 4), -EPROTO);
	put_le32(head, 0xffffffffu);
	assert_int_equal(seal_peek(head, 4), -EPROTO);
	put_le32(head, SEAL_CIPHER_MAX);
	assert_int_equal(seal_peek(head, 4), SEAL_RECORD_MAX);
	/* a buffer too small consumes nothing */
	uint8_t rec[64], small[4];
	size_t len = seal_record(&c.tx, "12345678", 8, rec);
	assert_int_equal(seal_open(&s.rx, rec, len, small, sizeof(small), &n), -ENOBUFS);
	assert_int_equal(seal_open(&s.rx, rec, len, out, sizeof(out), &n), (long)len);
}

/* The golden file: a client record "get k\r\n" then a server record
 * "END\r\n", sealed with the key and nonces above. */
static void test_golden(void **state)
{
	struct seal c, s;
	uint8_t want[128], got[128], out[64];
	size_t n;
	FILE *f = fopen(GOLDEN, "rb");

	(void)state;
	assert_non_null(f);
	size_t flen = fread(want, 1, sizeof(want), f);
	fclose(f);
	pair(&c, &s);
	size_t l1 = seal_record(&c.tx, "get k\r\n", 7, got);
	size_t l2 = seal_record(&s.tx, "END\r\n", 5, got + l1);
	assert_int_equal(flen, l1 + l2);
	assert_memory_equal(got, want, flen);
	assert_int_equal(get_le32(want), 7 + SEAL_TAG);
	assert_int_equal(seal_open(&s.rx, want, flen, out, sizeof(out), &n), (long)l1);
	assert_memory_equal(out, "get k\r\n", 7);
	assert_int_equal(seal_open(&c.rx, want + l1, flen - l1, out, sizeof(out), &n), (long)l2);
	assert_memory_equal(out, "END\r\n", 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_out_of_place),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_golden),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
