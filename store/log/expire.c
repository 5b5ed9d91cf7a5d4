/*
 * expire - expiry times (struct store_attr in store.h). An object whose time
 * has passed reads as absent and is replaced by a tombstone, by whichever
 * comes first: a read that meets it, compaction moving it, or the sweep the
 * compactor thread runs while any object has an expiry time. The one idea:
 * the tombstone's version is derived from the object's (same stamp, node with
 * STORE_EXPIRY_NODE set), so every replica writes the same tombstone, and it
 * is newer than the object but older than any later write of the key.
 * Format of the expiry field: docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_i.h"

/* Slots of the keydir looked at per hold of the lock, and expired keys
 * collected before they are written. */
#define SWEEP_SLOTS 4096
#define SWEEP_BATCH 256

void store_expiry_version(const struct store_version *v, struct store_version *out)
{
	out->stamp = v->stamp;
	out->node = v->node | STORE_EXPIRY_NODE;
}

bool store_is_expired(struct store *s, uint32_t expires)
{
	return expires && !atomic_load(&s->no_expiry) && (uint64_t)time(NULL) >= expires;
}

void store_set_no_expiry(struct store *s, bool on)
{
	atomic_store(&s->no_expiry, on);
}

int store_expire_key(struct store *s, const void *key, size_t klen, const struct store_version *v,
		     struct store_meta *m)
{
	struct store_version t;
	int rc;

	store_expiry_version(v, &t);
	rc = store_write_record(s, key, klen, NULL, 0, &t, true, NULL, 0, NULL);
	if (rc == 0)
		atomic_fetch_add(&s->expired, 1);
	if (m) {
		memset(m, 0, sizeof(*m));
		m->version = t;
		m->tombstone = true;
	}
	return rc;
}

struct expired_key {
	struct store_version v;
	uint8_t klen;
	char key[STORE_KEY_MAX];
};

int store_expire(struct store *s)
{
	struct expired_key *batch;
	size_t pos = 0;
	int done = 0, rc = 0;
	bool at_end = false;

	if (atomic_load(&s->no_expiry))
		return 0;
	pthread_rwlock_rdlock(&s->lock);
	at_end = s->expiring == 0;
	pthread_rwlock_unlock(&s->lock);
	if (at_end)
		return 0;
	batch = malloc(SWEEP_BATCH * sizeof(*batch));
	if (!batch)
		return -ENOMEM;
	/* the table only ever grows, so a position stays meaningful between holds
	 * of the lock; an entry moved meanwhile is met twice or next time */
	while (!at_end && rc >= 0) {
		uint64_t now = (uint64_t)time(NULL);
		size_t end = pos + SWEEP_SLOTS;
		int n = 0;

		pthread_rwlock_rdlock(&s->lock);
		while (n < SWEEP_BATCH && pos < end) {
			struct store_kd_entry *e = store_kd_next(s->kd, &pos);
			if (!e) {
				at_end = true;
				break;
			}
			if (!e->expires || (e->flags & STORE_REC_TOMBSTONE) || now < e->expires)
				continue;
			batch[n].v.stamp = e->stamp;
			batch[n].v.node = e->node;
			batch[n].klen = e->key_len;
			memcpy(batch[n].key, e->key, e->key_len);
			n++;
		}
		pthread_rwlock_unlock(&s->lock);
		for (int i = 0; i < n && rc >= 0; i++) {
			int r = store_expire_key(s, batch[i].key, batch[i].klen, &batch[i].v, NULL);
			if (r == 0)
				done++;
			else if (r < 0)
				rc = r;
		}
	}
	free(batch);
	return rc < 0 ? rc : done;
}
