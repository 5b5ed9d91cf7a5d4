/*
 * compact - online compaction. A sealed segment whose live ratio fell under the
 * threshold is read sequentially; each record the keydir still points at is
 * copied byte for byte (same version, same checksum) to the active segment and
 * the keydir moved to the copy; one whose expiry time has passed is replaced
 * by its expiry tombstone instead. Once the copies are fsynced and nothing points
 * into the old segment, its files are unlinked. Readers keep a reference to the
 * segment they read, so its descriptor outlives the unlink.
 * Records: docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_i.h"

struct move_ctx {
	struct store *s;
	struct store_segment *seg;
	uint64_t moved;
};

static int move_record(void *arg, const struct store_scan_rec *r)
{
	struct move_ctx *c = arg;
	struct store *s = c->s;
	uint64_t hash = store_key_hash(r->key, r->hdr.key_len);
	struct store_kd_entry *e;
	bool live;
	int rc = 0;

	pthread_mutex_lock(&s->write_mu);
	pthread_rwlock_rdlock(&s->lock);
	e = store_kd_find(s->kd, hash, r->key, r->hdr.key_len);
	live = e && e->seg == c->seg->id && e->off == r->off;
	pthread_rwlock_unlock(&s->lock);
	if (live && store_is_expired(s, r->hdr.expires)) {
		/* not copied: its tombstone takes its place (writing takes write_mu,
		 * and checks the version again) */
		struct store_version v = { r->hdr.stamp, r->hdr.node };
		pthread_mutex_unlock(&s->write_mu);
		rc = store_expire_key(s, r->key, r->hdr.key_len, &v, NULL);
		return rc < 0 ? rc : 0;
	}
	if (live) {
		uint32_t seg_id, off;

		rc = store_append_locked(s, r->raw, &r->hdr, r->key, r->key + r->hdr.key_len,
					 &seg_id, &off);
		if (rc == 0) {
			/* Holding write_mu, no writer changed e since we looked. */
			pthread_rwlock_wrlock(&s->lock);
			store_index_move(s, e, c->seg, seg_id, off);
			pthread_rwlock_unlock(&s->lock);
			c->moved += r->len;
		}
	}
	pthread_mutex_unlock(&s->write_mu);
	return rc;
}

/* Returns 1 when seg was removed, 0 when it had to stay, -errno on failure. */
static int compact_one(struct store *s, struct store_segment *seg)
{
	struct move_ctx c = { .s = s, .seg = seg };
	uint64_t end, live, size = atomic_load(&seg->size);
	char path[4096];
	int rc;

	rc = store_segment_scan(s, seg, move_record, &c, &end);
	if (rc == 0)
		rc = store_sync(s);
	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "compaction of segment %06u stopped: %s", seg->id,
			   strerror(-rc));
		return rc;
	}
	pthread_rwlock_wrlock(&s->lock);
	live = seg->live_bytes;
	if (live == 0)
		s->segs[seg->id] = NULL;
	pthread_rwlock_unlock(&s->lock);
	atomic_fetch_add(&s->compacted_bytes, c.moved);
	if (live != 0) {
		store_logf(s, STORE_LOG_ERROR,
			   "segment %06u still holds %llu live bytes that could not be read; kept",
			   seg->id, (unsigned long long)live);
		return 0;
	}
	store_seg_path(s, seg->id, "hint", path, sizeof(path));
	unlink(path);
	store_seg_path(s, seg->id, "cask", path, sizeof(path));
	if (unlink(path) < 0)
		store_logf(s, STORE_LOG_ERROR, "cannot remove %s: %s", path, strerror(errno));
	fsync(s->logdir_fd);
	atomic_fetch_add(&s->compactions, 1);
	atomic_fetch_add(&s->reclaimed_bytes, size);
	store_logf(s, STORE_LOG_INFO, "compacted segment %06u: moved %llu of %llu bytes", seg->id,
		   (unsigned long long)c.moved, (unsigned long long)size);
	store_segment_unref(seg); /* the table's reference */
	return 1;
}

int store_compact(struct store *s, bool all)
{
	struct store_segment **cand = NULL;
	size_t n = 0;
	int removed = 0, rc = 0;
	double ratio = s->opt.compact_live_ratio;

	if (ratio < 0 && !all)
		return 0;
	/* expired objects first become tombstones, so that the segments they
	 * were in count them as garbage */
	rc = store_expire(s);
	if (rc < 0)
		return rc;
	rc = 0;
	pthread_mutex_lock(&s->compact_mu);
	pthread_rwlock_rdlock(&s->lock);
	cand = calloc(s->segs_cap ? s->segs_cap : 1, sizeof(*cand));
	for (uint32_t i = 0; cand && i < s->segs_cap; i++) {
		struct store_segment *seg = s->segs[i];
		uint64_t total;

		if (!seg || !seg->sealed)
			continue;
		total = atomic_load(&seg->size) - STORE_SEG_HDR;
		if ((all && seg->live_bytes < total) ||
		    (double)seg->live_bytes < ratio * (double)total || total == 0) {
			store_segment_ref(seg);
			cand[n++] = seg;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	if (!cand) {
		pthread_mutex_unlock(&s->compact_mu);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (rc >= 0) {
			rc = compact_one(s, cand[i]);
			if (rc > 0)
				removed++;
		}
		store_segment_unref(cand[i]);
	}
	free(cand);
	pthread_mutex_unlock(&s->compact_mu);
	return rc < 0 ? rc : removed;
}
