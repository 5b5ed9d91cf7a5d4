/*
 * bench_sync - makes two DATA_DIRs for the anti-entropy benchmark
 * (scripts/bench-sync): OBJECTS objects of VALUE_BYTES random bytes, written
 * to both with the same versions, except PERMILLE per thousand of them, which
 * get a newer, different value on one side (alternating A and B). Prints the
 * number of differing objects and their bytes.
 *
 *   bench_sync DIR_A DIR_B OBJECTS VALUE_BYTES PERMILLE
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		memcpy(p + i, &rng, n - i < 8 ? n - i : 8);
	}
}

int main(int argc, char **argv)
{
	struct store_options o;
	struct store *a, *b;

	if (argc != 6) {
		fprintf(stderr, "usage: bench_sync DIR_A DIR_B OBJECTS VALUE_BYTES PERMILLE\n");
		return 2;
	}
	long n = atol(argv[3]), permille = atol(argv[5]);
	size_t vsize = (size_t)atol(argv[4]);
	uint8_t *val = malloc(vsize + 8);
	store_options_init(&o);
	o.no_background = true;
	o.sync = STORE_SYNC_NONE;
	o.compress_level = -1;
	if (!val || store_open(argv[1], &o, &a) < 0 || store_open(argv[2], &o, &b) < 0)
		return 1;
	uint64_t differing = 0, bytes = 0;
	for (long i = 0; i < n; i++) {
		char key[32];
		int kl = snprintf(key, sizeof(key), "obj/%08ld", i);
		struct store_version v = { (uint64_t)1 << 40, 1 };
		fill(val, vsize);
		if (store_apply(a, key, (size_t)kl, val, vsize, &v, false) < 0 ||
		    store_apply(b, key, (size_t)kl, val, vsize, &v, false) < 0)
			return 1;
		if ((i * 7919) % 1000 < permille) {
			struct store_version newer = { ((uint64_t)1 << 40) + 1, 2 };
			fill(val, vsize);
			if (store_apply(i % 2 ? a : b, key, (size_t)kl, val, vsize, &newer, false) < 0)
				return 1;
			differing++;
			bytes += vsize;
		}
	}
	if (store_close(a) < 0 || store_close(b) < 0)
		return 1;
	printf("%" PRIu64 " %" PRIu64 "\n", differing, bytes);
	free(val);
	return 0;
}
