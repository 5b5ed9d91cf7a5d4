/*
 * keydir - the in-memory index: key -> place and version of its newest record.
 * An open-addressing table (linear probing) of pointers to entries, whose home
 * slot is the top bits of the key's xxh3-64 hash. That keeps the table ordered
 * by hash prefix, so the keys of one hash-tree bucket are found by scanning a
 * short run of slots instead of the whole table. Entries live in an arena (no
 * per-entry malloc header); docs/FORMAT.md ("Memory") gives the per-object cost.
 * Not thread-safe by itself: the store guards it with its rwlock.
 */
#ifndef CASKFS_STORE_KEYDIR_I_H
#define CASKFS_STORE_KEYDIR_I_H

#include <stddef.h>
#include <stdint.h>

struct store_kd_entry {
	uint64_t stamp;	     /* version of the newest record */
	uint64_t value_hash; /* xxh3-64 of the raw value, 0 for a tombstone */
	uint32_t node;
	uint32_t seg; /* segment id, offset and total size of the record */
	uint32_t off;
	uint32_t len;
	uint32_t expires; /* the record's expiry time (unix seconds), 0 never */
	uint8_t flags;	  /* STORE_REC_* flags of the record */
	uint8_t key_len;
	char key[]; /* key_len bytes, not NUL-terminated */
};

struct store_kd;

/* Creates an empty keydir sized for about expect entries. Returns 0 or -ENOMEM. */
int store_kd_create(size_t expect, struct store_kd **out);
/* Frees the keydir and every entry. NULL is fine. */
void store_kd_destroy(struct store_kd *kd);

/* The key's hash (xxh3-64), recomputed: entries do not store it, which keeps
 * them at 38 bytes plus the key. */
uint64_t store_kd_hash(const struct store_kd_entry *e);

/* Returns the entry for key (whose hash is hash), or NULL. */
struct store_kd_entry *store_kd_find(struct store_kd *kd, uint64_t hash, const void *key,
				     size_t klen);

/*
 * Adds an entry for a key that is not present; the key is filled in, the
 * caller fills the rest. Returns the entry (owned by the keydir) or NULL when
 * out of memory.
 */
struct store_kd_entry *store_kd_insert(struct store_kd *kd, uint64_t hash, const void *key,
				       size_t klen);

/* Removes e from the keydir and frees it. */
void store_kd_remove(struct store_kd *kd, struct store_kd_entry *e);

/* Number of entries; bytes held by entries and table. */
size_t store_kd_count(const struct store_kd *kd);
size_t store_kd_bytes(const struct store_kd *kd);

/* Iteration: start with *pos = 0; returns NULL at the end. The keydir must not
 * change during an iteration. */
struct store_kd_entry *store_kd_next(struct store_kd *kd, size_t *pos);

/* Calls fn for every entry whose hash lies in [lo, hi]. */
void store_kd_range(struct store_kd *kd, uint64_t lo, uint64_t hi,
		    void (*fn)(void *arg, struct store_kd_entry *e), void *arg);

#endif
