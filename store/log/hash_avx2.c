/*
 * hash_avx2 - xxh3-64 compiled for AVX2 (this file alone is built with -mavx2;
 * store/hash.c calls it only on CPUs that have AVX2).
 */
#include "hash_i.h"
#include "../xxh_i.h"

uint64_t store_hash_avx2(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}
