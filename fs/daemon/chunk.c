/*
 * chunk - content-addressed chunks and the decompressed-chunk cache (see
 * chunk_i.h). The cache is a small open hash table of entries on an LRU list,
 * all under one mutex: a lookup is a copy of at most 1 MiB, which is what the
 * caller would have done anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "chunk_i.h"

/* 0 unknown, 1 baseline, 2 AVX2 (chunk_avx2.c); racing first calls agree. */
static _Atomic int hash_level;

void fs_chunk_id(const void *data, size_t len, uint8_t id[META_CHUNK_KEY])
{
	int level = atomic_load_explicit(&hash_level, memory_order_relaxed);

	if (!level) {
		__builtin_cpu_init();
		level = __builtin_cpu_supports("avx2") ? 2 : 1;
		atomic_store_explicit(&hash_level, level, memory_order_relaxed);
	}
	if (level == 2 && len >= 1024) {
		fs_chunk_id_avx2(data, len, id);
		return;
	}
	XXH128_hash_t h = XXH3_128bits(data, len);
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(id, c.digest, META_CHUNK_KEY);
}

void fs_chunk_key(const uint8_t id[META_CHUNK_KEY], char key[FS_CHUNK_KEY_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";

	key[0] = 'c';
	key[1] = '/';
	for (int i = 0; i < META_CHUNK_KEY; i++) {
		key[2 + 2 * i] = hex[id[i] >> 4];
		key[3 + 2 * i] = hex[id[i] & 15];
	}
	key[FS_CHUNK_KEY_LEN] = '\0';
}

int fs_chunk_is_hole(const uint8_t id[META_CHUNK_KEY])
{
	for (int i = 0; i < META_CHUNK_KEY; i++)
		if (id[i])
			return 0;
	return 1;
}

int fs_chunk_put(struct cluster *c, const void *data, size_t len, uint8_t id[META_CHUNK_KEY])
{
	char key[FS_CHUNK_KEY_LEN + 1];
	struct store_meta m;

	if (len == 0 || len > META_CHUNK_SIZE)
		return -EINVAL;
	fs_chunk_id(data, len, id);
	fs_chunk_key(id, key);
	/* identical bytes are stored once; but a copy older than FS_GC_FRESH_MS
	 * is written again, so its new stamp keeps `caskfs gc` (whose grace
	 * period is longer) from collecting it before this file commits */
	if (store_stat(cluster_local(c), key, FS_CHUNK_KEY_LEN, &m) == 0 && m.size == len &&
	    (store_clock_now(store_clock(cluster_local(c))) >> 16) - (m.version.stamp >> 16) <
		FS_GC_FRESH_MS)
		return 0;
	/* Past XXH3_MIDSIZE_MAX (240) bytes, xxh3-64 is the low half of
	 * xxh3-128 (the same accumulators, the same first merge): the record's
	 * value hash comes from the id, and the bytes are hashed once. */
	if (len > 240) {
		uint64_t low = 0;
		for (int i = 8; i < 16; i++)
			low = low << 8 | id[i];
		return cluster_put_hashed(c, key, FS_CHUNK_KEY_LEN, data, len, low);
	}
	return cluster_put(c, key, FS_CHUNK_KEY_LEN, data, len);
}

/* ---- the cache ---- */

struct centry {
	uint8_t id[META_CHUNK_KEY];
	uint8_t *data;
	size_t len;
	struct centry *prev, *next; /* LRU list, most recent first */
};

struct fs_chunk_cache {
	pthread_mutex_t mu;
	size_t max_bytes, bytes;
	struct centry **slots; /* open addressing on the id's first 8 bytes */
	size_t cap, count;
	struct centry *head, *tail;
	uint64_t hits, misses;
};

static size_t slot_of(const struct fs_chunk_cache *c, const uint8_t *id)
{
	uint64_t h;

	memcpy(&h, id, 8);
	return (size_t)h & (c->cap - 1);
}

static size_t find_slot(const struct fs_chunk_cache *c, const uint8_t *id)
{
	size_t i = slot_of(c, id);

	while (c->slots[i] && memcmp(c->slots[i]->id, id, META_CHUNK_KEY) != 0)
		i = (i + 1) & (c->cap - 1);
	return i;
}

static void lru_unlink(struct fs_chunk_cache *c, struct centry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push(struct fs_chunk_cache *c, struct centry *e)
{
	e->next = c->head;
	e->prev = NULL;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

/* Removes e from the table (backward-shift deletion) and frees it. */
static void evict(struct fs_chunk_cache *c, struct centry *e)
{
	size_t mask = c->cap - 1, i = find_slot(c, e->id), j = i;

	c->slots[i] = NULL;
	for (;;) {
		j = (j + 1) & mask;
		if (!c->slots[j])
			break;
		size_t k = slot_of(c, c->slots[j]->id);
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			c->slots[i] = c->slots[j];
			c->slots[j] = NULL;
			i = j;
		}
	}
	lru_unlink(c, e);
	c->bytes -= e->len;
	c->count--;
	free(e->data);
	free(e);
}

int fs_chunk_cache_new(size_t max_bytes, struct fs_chunk_cache **out)
{
	struct fs_chunk_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->max_bytes = max_bytes;
	/* room for max_bytes of 4 KiB chunks at half load */
	c->cap = 64;
	while (c->cap < max_bytes / 2048)
		c->cap *= 2;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (!c->slots) {
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->mu, NULL);
	*out = c;
	return 0;
}

void fs_chunk_cache_free(struct fs_chunk_cache *c)
{
	if (!c)
		return;
	while (c->head)
		evict(c, c->head);
	free(c->slots);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void fs_chunk_cache_stats(struct fs_chunk_cache *c, struct fs_chunk_cache_stats *st)
{
	pthread_mutex_lock(&c->mu);
	st->hits = c->hits;
	st->misses = c->misses;
	st->bytes = c->bytes;
	st->entries = c->count;
	pthread_mutex_unlock(&c->mu);
}

/* The cached entry of id, made the most recently used, or NULL; counted as
 * a hit or a miss. With c->mu held. */
static struct centry *cache_hit(struct fs_chunk_cache *c, const uint8_t *id)
{
	struct centry *e = c->slots[find_slot(c, id)];

	if (e) {
		lru_unlink(c, e);
		lru_push(c, e);
		c->hits++;
	} else {
		c->misses++;
	}
	return e;
}

/* Copies a cached chunk into buf: its length, -ENOENT when absent, -ERANGE. */
static ssize_t cache_get(struct fs_chunk_cache *c, const uint8_t *id, void *buf, size_t cap)
{
	ssize_t rc = -ENOENT;

	pthread_mutex_lock(&c->mu);
	struct centry *e = cache_hit(c, id);
	if (e) {
		rc = e->len > cap ? -ERANGE : (ssize_t)e->len;
		if (rc >= 0)
			memcpy(buf, e->data, e->len);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Inserts len bytes at data (malloc'd, now the cache's: freed when not
 * kept) as chunk id's entry. */
static void cache_insert(struct fs_chunk_cache *c, const uint8_t *id, uint8_t *data, size_t len)
{
	struct centry *e;

	if (len > c->max_bytes || !(e = calloc(1, sizeof(*e)))) {
		free(data);
		return; /* a cache may forget */
	}
	memcpy(e->id, id, META_CHUNK_KEY);
	e->data = data;
	e->len = len;
	pthread_mutex_lock(&c->mu);
	size_t i = find_slot(c, id);
	if (c->slots[i]) {
		pthread_mutex_unlock(&c->mu);
		free(e->data);
		free(e);
		return;
	}
	while (c->tail && (c->bytes + len > c->max_bytes || c->count + 1 > c->cap / 2))
		evict(c, c->tail);
	i = find_slot(c, id);
	c->slots[i] = e;
	lru_push(c, e);
	c->bytes += len;
	c->count++;
	pthread_mutex_unlock(&c->mu);
}

static void cache_add(struct fs_chunk_cache *c, const uint8_t *id, const void *data, size_t len)
{
	uint8_t *copy;

	if (len > c->max_bytes || !(copy = malloc(len ? len : 1)))
		return;
	memcpy(copy, data, len);
	cache_insert(c, id, copy, len);
}

/* Copies [off, off + len) of a cached chunk into buf: the bytes copied
 * (fewer past its end), or -ENOENT when it is not cached. */
static ssize_t cache_get_range(struct fs_chunk_cache *c, const uint8_t *id, size_t off, size_t len,
			       void *buf)
{
	ssize_t rc = -ENOENT;

	pthread_mutex_lock(&c->mu);
	struct centry *e = cache_hit(c, id);
	if (e) {
		size_t have = off < e->len ? e->len - off : 0;
		rc = (ssize_t)(have < len ? have : len);
		memcpy(buf, e->data + off, (size_t)rc);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

ssize_t fs_chunk_read_range(struct fs_chunk_cache *cache, struct cluster *s,
			    const uint8_t id[META_CHUNK_KEY], size_t off, size_t len, void *buf)
{
	uint8_t *whole;
	ssize_t rc;

	if (!cache || !cache->max_bytes)
		return -EINVAL;
	rc = cache_get_range(cache, id, off, len, buf);
	if (rc != -ENOENT)
		return rc;
	/* a file read in 128 KiB requests reads each chunk eight times: copied
	 * out of the log and verified once, into what becomes the cache's entry
	 * (no second copy), then served from there */
	if (!(whole = malloc(META_CHUNK_SIZE)))
		return -ENOMEM;
	rc = fs_chunk_read(NULL, s, id, whole, META_CHUNK_SIZE);
	if (rc < 0) {
		free(whole);
		return rc;
	}
	size_t have = off < (size_t)rc ? (size_t)rc - off : 0;
	if (have > len)
		have = len;
	memcpy(buf, whole + off, have);
	if ((size_t)rc < META_CHUNK_SIZE / 2) {
		uint8_t *fit = realloc(whole, rc ? (size_t)rc : 1);
		whole = fit ? fit : whole;
	}
	cache_insert(cache, id, whole, (size_t)rc);
	return (ssize_t)have;
}

ssize_t fs_chunk_read(struct fs_chunk_cache *cache, struct cluster *s,
		      const uint8_t id[META_CHUNK_KEY], void *buf, size_t cap)
{
	char key[FS_CHUNK_KEY_LEN + 1];
	uint8_t check[META_CHUNK_KEY];
	struct store_meta m;
	size_t len;
	ssize_t rc;

	if (cache && cache->max_bytes) {
		rc = cache_get(cache, id, buf, cap);
		if (rc != -ENOENT)
			return rc;
	}
	fs_chunk_key(id, key);
	/* the id is the bytes' hash: the store need not hash them too */
	rc = cluster_read_content(s, key, FS_CHUNK_KEY_LEN, buf, cap, &len, &m);
	if (rc < 0)
		return rc;
	fs_chunk_id(buf, len, check);
	if (memcmp(check, id, META_CHUNK_KEY) != 0) {
		fprintf(stderr, "caskfs: chunk %s: the stored bytes do not hash to its id\n", key);
		return -EBADMSG;
	}
	/* worth keeping: decompressing it again, or fetching it from a peer */
	if (cache && cache->max_bytes && (m.compressed || m.segment == 0))
		cache_add(cache, id, buf, len);
	return (ssize_t)len;
}
