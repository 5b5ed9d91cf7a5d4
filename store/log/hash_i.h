/*
 * hash - xxh3-64 of values, at the speed of the machine. Distributions build
 * xxhash for SSE2 (about 14 GB/s here); the AVX2 build of the same function is
 * three times faster, as fast as memcpy, which matters because every read of a
 * value verifies it. The result is the same bits whichever variant runs.
 */
#ifndef CASKFS_STORE_HASH_I_H
#define CASKFS_STORE_HASH_I_H

#include <stddef.h>
#include <stdint.h>

/* xxh3-64 of len bytes at p (seed 0), using AVX2 when the CPU has it. */
uint64_t store_hash_bulk(const void *p, size_t len);

/* The AVX2 variant (store/hash_avx2.c, built with -mavx2); call only when the
 * CPU supports AVX2. */
uint64_t store_hash_avx2(const void *p, size_t len);

#endif
