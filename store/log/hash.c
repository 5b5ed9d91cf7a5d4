/*
 * hash - picks the xxh3 variant once (see hash_i.h). Short inputs stay on the
 * inlined baseline code, where vector width does not matter.
 */
#include <stdatomic.h>

#include "hash_i.h"
#include "../xxh_i.h"

#define BULK_MIN 1024

static uint64_t hash_baseline(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

/* 0 unknown, 1 baseline, 2 AVX2; racing first calls agree on the answer. */
static _Atomic int level;

static int cpu_level(void)
{
	int l = atomic_load_explicit(&level, memory_order_relaxed);

	if (!l) {
		__builtin_cpu_init();
		l = __builtin_cpu_supports("avx2") ? 2 : 1;
		atomic_store_explicit(&level, l, memory_order_relaxed);
	}
	return l;
}

uint64_t store_hash_bulk(const void *p, size_t len)
{
	if (len < BULK_MIN)
		return XXH3_64bits(p, len);
	return cpu_level() == 2 ? store_hash_avx2(p, len) : hash_baseline(p, len);
}
