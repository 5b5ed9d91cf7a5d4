/*
 * fuzz_cmap - libFuzzer harness for the two decoders of the cluster map
 * (store/node/cmap.c): the map as it crosses the wire (xmap) and the file
 * DATA_DIR/cluster.map. Each input is decoded as it is, then again with its
 * checksums made right, so the fuzzer reaches the checks behind them. A map
 * that decodes must re-encode to the same bytes and hold only sorted, valid
 * addresses and known flags (__builtin_trap() otherwise); AddressSanitizer
 * catches any read past the input. Run: make fuzz; make test runs it briefly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/endian.h"
#include "store/node/cmap.h"
#include "store/xxh_i.h"

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static void check_map(const struct cmap *m, const uint8_t *in, size_t len)
{
	static uint8_t out[CMAP_WIRE_MAX];

	check(m->count >= 0 && m->count <= CMAP_MAX);
	for (int i = 0; i < m->count; i++) {
		check(cmap_addr_ok(m->node[i].addr, strlen(m->node[i].addr)));
		check(m->node[i].flags && !(m->node[i].flags & ~CMAP_FLAGS));
		check(i == 0 || strcmp(m->node[i - 1].addr, m->node[i].addr) < 0);
	}
	if (in) {
		size_t n = cmap_encode(m, out, sizeof(out));
		check(n == len && memcmp(out, in, len) == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cmap m;
	static struct cmap_local l;
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	if (cmap_decode(buf, size, &m) == 0)
		check_map(&m, buf, size);
	if (cmap_file_decode(buf, size, &m, &l) == 0)
		check_map(&m, NULL, 0);
	if (size >= 8) {
		/* as a wire map with a right checksum */
		put_le64(buf + size - 8, XXH3_64bits(buf, size - 8));
		if (cmap_decode(buf, size, &m) == 0)
			check_map(&m, buf, size);
		/* as a file: the inner map's checksum, then the file's */
		if (size > 69) {
			size_t at = 65 + buf[64] + 4;
			if (at + 8 <= size - 8)
				put_le64(buf + size - 16, XXH3_64bits(buf + at, size - 16 - at));
			put_le64(buf + size - 8, XXH3_64bits(buf, size - 8));
			if (cmap_file_decode(buf, size, &m, &l) == 0) {
				check_map(&m, NULL, 0);
				check(strlen(l.self) <= CMAP_ADDR_MAX);
			}
		}
	}
	free(buf);
	return 0;
}
