/*
 * fuzz_seal - libFuzzer harness for the records of an encrypted session
 * (store/node/seal.c), the decoder that faces bytes from the network before
 * anything is authenticated. Two runs per input: the input as a stream of
 * records, opened the way the server opens them (each record copied into a
 * buffer of its exact size, so AddressSanitizer sees any read past it); and
 * the input cut into pieces, sealed, then opened again, which must give the
 * pieces back, and must fail once any byte of the sealed stream changes.
 * Run: make fuzz (FUZZ_SECONDS=N); make test runs it briefly.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/node/seal.h"

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static const struct auth_key key = { { 9, 8, 7, 6, 5, 4, 3, 2, 1 } };
static const uint8_t cn[AUTH_NONCE] = "fuzz client", sn[AUTH_NONCE] = "fuzz server";

static void as_stream(const uint8_t *data, size_t size)
{
	struct seal s;
	size_t pos = 0;

	seal_init(&s, &key, cn, sn, 's');
	while (pos < size) {
		long want = seal_peek(data + pos, size - pos);
		check(want >= -EPROTO);
		if (want <= 0 || (size_t)want > size - pos)
			break;
		check(want > SEAL_HEADER + SEAL_TAG && want <= SEAL_RECORD_MAX);
		uint8_t *rec = malloc((size_t)want);
		size_t cap = (size_t)want - SEAL_HEADER - SEAL_TAG, n = 0;
		uint8_t *out = malloc(cap);
		if (!rec || !out) {
			free(rec);
			free(out);
			break;
		}
		memcpy(rec, data + pos, (size_t)want);
		long rc = seal_open(&s.rx, rec, (size_t)want, out, cap, &n);
		check(rc == want || rc == -EBADMSG);
		check(rc != want || n == cap);
		free(rec);
		free(out);
		if (rc < 0)
			break;
		pos += (size_t)want;
	}
}

static void round_trip(const uint8_t *data, size_t size)
{
	struct seal c, s;
	size_t wire_cap = seal_wire_size(size) + 8 * (SEAL_HEADER + SEAL_TAG), wlen = 0;
	uint8_t *wire = malloc(wire_cap ? wire_cap : 1), *out = malloc(SEAL_PLAIN_MAX);
	size_t cuts[8], ncuts = 0, pos = 0;

	if (!wire || !out)
		goto done;
	seal_init(&c, &key, cn, sn, 'c');
	seal_init(&s, &key, cn, sn, 's');
	/* pieces: lengths from the first bytes, the rest is the plaintext */
	while (pos < size && ncuts < 8) {
		size_t len = (size_t)data[pos] * 300 + 1;
		cuts[ncuts++] = len;
		pos++;
	}
	const uint8_t *plain = data + pos;
	size_t left = size - pos, at = 0;
	for (size_t i = 0; i < ncuts && at < left; i++) {
		size_t len = cuts[i] < left - at ? cuts[i] : left - at;
		if (len > SEAL_PLAIN_MAX)
			len = SEAL_PLAIN_MAX;
		check(wlen + len + SEAL_HEADER + SEAL_TAG <= wire_cap);
		wlen += seal_record(&c.tx, plain + at, len, wire + wlen);
		at += len;
	}
	/* change one byte when the input asks for it */
	bool flip = size > 0 && (data[0] & 1) && wlen > 0;
	if (flip)
		wire[(size_t)data[size - 1] * 131 % wlen] ^= 0x5a;
	size_t off = 0, got = 0;
	bool failed = false;
	while (off < wlen) {
		size_t n;
		long rc = seal_open(&s.rx, wire + off, wlen - off, out, SEAL_PLAIN_MAX, &n);
		if (rc <= 0) {
			failed = true;
			break;
		}
		check(got + n <= at && memcmp(out, plain + got, n) == 0);
		got += n;
		off += (size_t)rc;
	}
	check(flip ? failed : !failed && got == at);
done:
	free(wire);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_stream(data, size);
	round_trip(data, size);
	return 0;
}
