/*
 * chunk - a file's content as content-addressed chunks of at most 1 MiB. A
 * chunk's id is the xxh3-128 of its bytes and its store key "c/" + 32 hex
 * digits (text, so memcache tools can name it). Chunks are immutable: a put
 * of bytes already stored writes nothing, and every read checks the bytes
 * against the id. A bounded LRU cache keeps decompressed chunks (only those
 * the store holds compressed: the others are a verified copy from a mapping
 * already). Format: docs/FORMAT.md ("Chunks"). Buffers are the caller's;
 * the cache is its creator's (the mount's struct fs) until freed.
 */
#ifndef CASKFS_FS_DAEMON_CHUNK_I_H
#define CASKFS_FS_DAEMON_CHUNK_I_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "meta/meta.h"
#include "store/node/cluster.h"
#include "store/store.h"

#define FS_CHUNK_KEY_LEN (2 + 2 * META_CHUNK_KEY)
/* A stored chunk younger than this is reused as it is by a new file; `caskfs
 * gc` never collects a chunk younger than its grace period, which must be
 * longer (docs/OPERATIONS.md). */
#define FS_GC_FRESH_MS 60000

/* The id of len bytes at data: their xxh3-128, big-endian. */
void fs_chunk_id(const void *data, size_t len, uint8_t id[META_CHUNK_KEY]);
/* The same, built for AVX2 (chunk_avx2.c): only where the CPU has it. */
void fs_chunk_id_avx2(const void *data, size_t len, uint8_t id[META_CHUNK_KEY]);
/* Writes the store key of id into key (FS_CHUNK_KEY_LEN bytes and a NUL). */
void fs_chunk_key(const uint8_t id[META_CHUNK_KEY], char key[FS_CHUNK_KEY_LEN + 1]);
/* True for the all-zero id of a hole. */
int fs_chunk_is_hole(const uint8_t id[META_CHUNK_KEY]);

struct fs_chunk_cache;

/* A cache holding at most max_bytes of chunk data (0 disables it).
 * Returns 0 or -ENOMEM; free with fs_chunk_cache_free(). Thread-safe. */
int fs_chunk_cache_new(size_t max_bytes, struct fs_chunk_cache **out);
void fs_chunk_cache_free(struct fs_chunk_cache *c);

struct fs_chunk_cache_stats {
	uint64_t hits, misses, bytes, entries;
};
void fs_chunk_cache_stats(struct fs_chunk_cache *c, struct fs_chunk_cache_stats *st);

/*
 * Stores len bytes (1 .. META_CHUNK_SIZE) as a chunk and fills id. Nothing is
 * written when the store has the chunk already. Errors of store_put().
 */
int fs_chunk_put(struct cluster *c, const void *data, size_t len, uint8_t id[META_CHUNK_KEY]);

/*
 * Reads chunk id into buf (cap bytes) and returns its length. Errors:
 * -ENOENT (not in the store), -EBADMSG (the bytes do not hash to id; logged),
 * -ERANGE (cap too small), and those of store_read(). cache may be NULL.
 */
ssize_t fs_chunk_read(struct fs_chunk_cache *cache, struct cluster *s,
		      const uint8_t id[META_CHUNK_KEY], void *buf, size_t cap);

/*
 * Copies bytes [off, off + len) of chunk id into buf through the cache (which
 * then holds the whole chunk, verified); returns the bytes copied, fewer
 * when the chunk ends first. Errors of fs_chunk_read(); -EINVAL without a
 * cache.
 */
ssize_t fs_chunk_read_range(struct fs_chunk_cache *cache, struct cluster *s,
			    const uint8_t id[META_CHUNK_KEY], size_t off, size_t len, void *buf);

#endif
