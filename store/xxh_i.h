/*
 * xxh_i.h - xxhash, inlined. Hashing short keys is on every path, so the
 * functions are compiled in (XXH_INLINE_ALL) rather than called in libxxhash;
 * that also exposes XXH3_state_t for streaming checksums.
 */
#ifndef CASKFS_STORE_XXH_I_H
#define CASKFS_STORE_XXH_I_H

#define XXH_INLINE_ALL
#include <xxhash.h>

#endif
