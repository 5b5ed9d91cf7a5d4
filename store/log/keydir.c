/*
 * keydir - linear-probing hash table ordered by hash prefix, entries in an
 * arena. The one idea: an entry's home slot is hash >> (64 - bits), so entries
 * of a hash range sit in the slots of that range or just after it (until the
 * next empty slot). Deletion shifts followers back, so no tombstone slots exist.
 * Memory per entry: docs/FORMAT.md ("Memory (keydir)").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keydir_i.h"
#include "../xxh_i.h"

#define KD_BLOCK_SIZE (1u << 20)
#define KD_ALIGN 8
#define KD_CLASSES ((offsetof(struct store_kd_entry, key) + 256 + KD_ALIGN) / KD_ALIGN)

struct kd_block {
	struct kd_block *next;
	size_t used;
	char data[];
};

struct store_kd {
	struct store_kd_entry **slots;
	size_t cap; /* power of two */
	unsigned bits;
	size_t count;
	struct kd_block *blocks;
	size_t nblocks;
	void *free_list[KD_CLASSES]; /* freed entries by size class, linked through their start */
};

static size_t entry_size(size_t klen)
{
	size_t n = offsetof(struct store_kd_entry, key) + klen;
	return (n + KD_ALIGN - 1) & ~(size_t)(KD_ALIGN - 1);
}

static size_t home(const struct store_kd *kd, uint64_t hash)
{
	return (size_t)(hash >> (64 - kd->bits));
}

uint64_t store_kd_hash(const struct store_kd_entry *e)
{
	return XXH3_64bits(e->key, e->key_len);
}

static void *arena_alloc(struct store_kd *kd, size_t size)
{
	size_t cls = size / KD_ALIGN;
	void *p = kd->free_list[cls];

	if (p) {
		memcpy(&kd->free_list[cls], p, sizeof(void *));
		return p;
	}
	if (!kd->blocks || kd->blocks->used + size > KD_BLOCK_SIZE - sizeof(struct kd_block)) {
		struct kd_block *b = malloc(KD_BLOCK_SIZE);
		if (!b)
			return NULL;
		b->next = kd->blocks;
		b->used = 0;
		kd->blocks = b;
		kd->nblocks++;
	}
	p = kd->blocks->data + kd->blocks->used;
	kd->blocks->used += size;
	return p;
}

static void arena_free(struct store_kd *kd, void *p, size_t size)
{
	size_t cls = size / KD_ALIGN;

	memcpy(p, &kd->free_list[cls], sizeof(void *));
	kd->free_list[cls] = p;
}

static int table_alloc(struct store_kd *kd, unsigned bits)
{
	struct store_kd_entry **slots = calloc((size_t)1 << bits, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	kd->slots = slots;
	kd->bits = bits;
	kd->cap = (size_t)1 << bits;
	return 0;
}

static void place(struct store_kd *kd, struct store_kd_entry *e, uint64_t hash)
{
	size_t mask = kd->cap - 1;
	size_t i = home(kd, hash);

	while (kd->slots[i])
		i = (i + 1) & mask;
	kd->slots[i] = e;
}

static int grow(struct store_kd *kd)
{
	struct store_kd_entry **old = kd->slots;
	size_t oldcap = kd->cap;

	if (table_alloc(kd, kd->bits + 1) < 0) {
		kd->slots = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < oldcap; i++)
		if (old[i])
			place(kd, old[i], store_kd_hash(old[i]));
	free(old);
	return 0;
}

int store_kd_create(size_t expect, struct store_kd **out)
{
	struct store_kd *kd = calloc(1, sizeof(*kd));
	unsigned bits = 10;

	if (!kd)
		return -ENOMEM;
	while (((size_t)1 << bits) * 3 / 4 < expect && bits < 40)
		bits++;
	if (table_alloc(kd, bits) < 0) {
		free(kd);
		return -ENOMEM;
	}
	*out = kd;
	return 0;
}

void store_kd_destroy(struct store_kd *kd)
{
	if (!kd)
		return;
	while (kd->blocks) {
		struct kd_block *b = kd->blocks;
		kd->blocks = b->next;
		free(b);
	}
	free(kd->slots);
	free(kd);
}

struct store_kd_entry *store_kd_find(struct store_kd *kd, uint64_t hash, const void *key,
				     size_t klen)
{
	size_t mask = kd->cap - 1;
	size_t i = home(kd, hash);
	struct store_kd_entry *e;

	while ((e = kd->slots[i]) != NULL) {
		if (e->key_len == klen && memcmp(e->key, key, klen) == 0)
			return e;
		i = (i + 1) & mask;
	}
	return NULL;
}

struct store_kd_entry *store_kd_insert(struct store_kd *kd, uint64_t hash, const void *key,
				       size_t klen)
{
	struct store_kd_entry *e;

	if ((kd->count + 1) > kd->cap / 4 * 3 && grow(kd) < 0)
		return NULL;
	e = arena_alloc(kd, entry_size(klen));
	if (!e)
		return NULL;
	memset(e, 0, offsetof(struct store_kd_entry, key));
	e->key_len = (uint8_t)klen;
	memcpy(e->key, key, klen);
	place(kd, e, hash);
	kd->count++;
	return e;
}

void store_kd_remove(struct store_kd *kd, struct store_kd_entry *e)
{
	size_t mask = kd->cap - 1;
	size_t i = home(kd, store_kd_hash(e));
	size_t j;

	while (kd->slots[i] != e)
		i = (i + 1) & mask;
	kd->slots[i] = NULL;
	/* Shift back every follower whose home does not lie cyclically in (i, j]. */
	j = i;
	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!kd->slots[j])
			break;
		k = home(kd, store_kd_hash(kd->slots[j]));
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			kd->slots[i] = kd->slots[j];
			kd->slots[j] = NULL;
			i = j;
		}
	}
	kd->count--;
	arena_free(kd, e, entry_size(e->key_len));
}

size_t store_kd_count(const struct store_kd *kd)
{
	return kd->count;
}

size_t store_kd_bytes(const struct store_kd *kd)
{
	return kd->nblocks * (size_t)KD_BLOCK_SIZE + kd->cap * sizeof(*kd->slots);
}

struct store_kd_entry *store_kd_next(struct store_kd *kd, size_t *pos)
{
	while (*pos < kd->cap) {
		struct store_kd_entry *e = kd->slots[(*pos)++];
		if (e)
			return e;
	}
	return NULL;
}

void store_kd_range(struct store_kd *kd, uint64_t lo, uint64_t hi,
		    void (*fn)(void *arg, struct store_kd_entry *e), void *arg)
{
	size_t mask = kd->cap - 1;
	size_t first = home(kd, lo);
	size_t span = home(kd, hi) - first;
	size_t i = first;

	for (size_t steps = 0; steps < kd->cap; steps++, i = (i + 1) & mask) {
		struct store_kd_entry *e = kd->slots[i];

		if (!e) {
			if (steps > span)
				break;
			continue;
		}
		uint64_t h = store_kd_hash(e);
		if (h >= lo && h <= hi)
			fn(arg, e);
	}
}
