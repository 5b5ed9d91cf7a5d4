/*
 * snapshot - how a scan sees the keydir without holding it: the entries
 * asked for are copied (their meta and key, packed in one growing buffer)
 * under the read lock, and the caller's function is called on the copy after
 * the lock is released, so it may call the store, even write to it.
 * store_scan() is the plain case; tree.c lists a hash-tree bucket this way.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_i.h"

void store_snapshot_add(void *arg, struct store_kd_entry *e)
{
	struct store_snapshot *sn = arg;
	size_t need = sizeof(struct store_meta) + 1 + e->key_len;

	if (sn->err)
		return;
	if (!sn->tombstones && (e->flags & STORE_REC_TOMBSTONE))
		return;
	if (!sn->tombstones && sn->now && e->expires && sn->now >= e->expires)
		return;
	if (sn->plen && (e->key_len < sn->plen || memcmp(e->key, sn->prefix, sn->plen) != 0))
		return;
	if (sn->len + need > sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 64 * 1024;
		while (cap < sn->len + need)
			cap *= 2;
		uint8_t *n = realloc(sn->buf, cap);
		if (!n) {
			sn->err = -ENOMEM;
			return;
		}
		sn->buf = n;
		sn->cap = cap;
	}
	struct store_meta m;
	store_index_meta(e, &m);
	memcpy(sn->buf + sn->len, &m, sizeof(m));
	sn->buf[sn->len + sizeof(m)] = e->key_len;
	memcpy(sn->buf + sn->len + sizeof(m) + 1, e->key, e->key_len);
	sn->len += need;
}

int store_snapshot_walk(struct store_snapshot *sn, store_scan_fn fn, void *arg)
{
	size_t pos = 0;
	int rc = sn->err;

	while (rc == 0 && pos < sn->len) {
		struct store_meta m;
		memcpy(&m, sn->buf + pos, sizeof(m));
		uint8_t klen = sn->buf[pos + sizeof(m)];
		rc = fn(arg, sn->buf + pos + sizeof(m) + 1, klen, &m);
		pos += sizeof(m) + 1 + klen;
	}
	free(sn->buf);
	return rc;
}

int store_scan(struct store *s, const void *prefix, size_t plen, bool with_tombstones,
	       store_scan_fn fn, void *arg)
{
	struct store_snapshot sn = { .prefix = prefix,
				     .plen = plen,
				     .tombstones = with_tombstones };
	struct store_kd_entry *e;
	size_t pos = 0;

	if (!with_tombstones && !atomic_load(&s->no_expiry))
		sn.now = (uint64_t)time(NULL);
	pthread_rwlock_rdlock(&s->lock);
	while ((e = store_kd_next(s->kd, &pos)) != NULL)
		store_snapshot_add(&sn, e);
	pthread_rwlock_unlock(&s->lock);
	return store_snapshot_walk(&sn, fn, arg);
}
