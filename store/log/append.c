/*
 * append - the write end of the log: records go into the active segment's
 * append buffer and reach the file in large writes; a record larger than
 * STORE_WBUF_DIRECT bypasses the buffer. The one idea: an append is all or
 * nothing, and a write that fails keeps the buffer and refuses new appends
 * until it goes through, so no acknowledged record is silently dropped.
 * When the active segment is full it is sealed (flush, fsync, hint file) and
 * the next one begins. Functions named _locked run under write_mu; the
 * public store_flush() and store_roll() take it. Format: docs/FORMAT.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store_i.h"

int store_flush(struct store *s)
{
	pthread_mutex_lock(&s->write_mu);
	int rc = store_flush_locked(s);
	pthread_mutex_unlock(&s->write_mu);
	return rc;
}

int store_flush_locked(struct store *s)
{
	struct store_segment *seg = s->active;
	uint64_t at = atomic_load(&seg->flushed);
	int rc;

	if (!seg->wbuf_len)
		return 0;
	/* A partial write is simply written again, whole, at the same offset. */
	rc = store_write_full(seg->fd, seg->wbuf, seg->wbuf_len, (off_t)at);
	if (rc < 0) {
		if (rc != s->write_err)
			store_logf(
			    s, STORE_LOG_ERROR,
			    "cannot write %zu bytes of segment %06u at offset %llu: %s; they "
			    "stay in memory and new writes are refused until this succeeds",
			    seg->wbuf_len, seg->id, (unsigned long long)at, strerror(-rc));
		s->write_err = rc;
		return rc;
	}
	if (s->write_err)
		store_logf(s, STORE_LOG_WARN, "segment %06u: buffered writes went through again",
			   seg->id);
	s->write_err = 0;
	atomic_store(&seg->flushed, at + seg->wbuf_len);
	seg->wbuf_len = 0;
	return 0;
}

/* Seals the active segment (flush, fsync, hint file) and starts the next.
 * Caller holds write_mu. On failure the active segment stays active. */
static int roll_locked(struct store *s)
{
	struct store_segment *old = s->active, *seg;
	char hint[4096];
	int rc;

	rc = store_flush_locked(s);
	if (rc < 0)
		return rc;
	if (fdatasync(old->fd) < 0) {
		rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "fsync of segment %06u failed: %s", old->id,
			   strerror(-rc));
		return rc;
	}
	rc = store_hint_write(s, old->id, &s->hint);
	if (rc < 0)
		return rc;
	rc = store_segment_create(s, old->id + 1, &seg);
	if (rc == 0) {
		pthread_rwlock_wrlock(&s->lock);
		rc = store_table_set(s, seg->id, seg);
		if (rc == 0)
			old->sealed = true;
		pthread_rwlock_unlock(&s->lock);
		if (rc < 0) {
			char path[4096];
			store_seg_path(s, seg->id, "cask", path, sizeof(path));
			unlink(path);
			store_segment_unref(seg);
		}
	}
	if (rc < 0) {
		/* The old segment goes on being written: its hint would lie. */
		store_seg_path(s, old->id, "hint", hint, sizeof(hint));
		unlink(hint);
		return rc;
	}
	s->active = seg;
	free(old->wbuf);
	old->wbuf = NULL;
	store_hint_reset(&s->hint);
	pthread_mutex_lock(&s->sync_mu);
	if (atomic_load(&s->appended) > s->synced)
		s->synced = atomic_load(&s->appended);
	pthread_cond_broadcast(&s->sync_cv);
	pthread_mutex_unlock(&s->sync_mu);
	return 0;
}

/* Writes a large record straight to the file (the buffer is empty). */
static int append_direct(struct store *s, struct store_segment *seg, uint64_t at,
			 const uint8_t *hdr, const struct store_rec_hdr *h, const void *key,
			 const void *val)
{
	struct iovec iov[3] = { { (void *)hdr, store_rec_hdr_len(h->version) },
				{ (void *)key, h->key_len },
				{ (void *)val, h->stored_len } };
	int rc = store_pwritev_full(seg->fd, iov, h->stored_len ? 3 : 2, (off_t)at);

	if (rc < 0) {
		/* Leave no partial record behind; the next append overwrites it anyway. */
		if (ftruncate(seg->fd, (off_t)at) < 0)
			store_logf(s, STORE_LOG_ERROR, "cannot cut segment %06u back to %llu: %s",
				   seg->id, (unsigned long long)at, strerror(errno));
		return rc;
	}
	atomic_store(&seg->flushed, at + store_rec_size(h));
	return 0;
}

/* Copies a record into the append buffer (room checked by the caller). */
static int append_buffered(struct store_segment *seg, const uint8_t *hdr,
			   const struct store_rec_hdr *h, const void *key, const void *val)
{
	uint8_t *p;

	if (!seg->wbuf) {
		seg->wbuf = malloc(STORE_WBUF_CAP);
		if (!seg->wbuf)
			return -ENOMEM;
	}
	size_t hl = store_rec_hdr_len(h->version);

	p = seg->wbuf + seg->wbuf_len;
	memcpy(p, hdr, hl);
	memcpy(p + hl, key, h->key_len);
	if (h->stored_len)
		memcpy(p + hl + h->key_len, val, h->stored_len);
	seg->wbuf_len += store_rec_size(h);
	return 0;
}

int store_roll(struct store *s)
{
	int rc = 0;

	pthread_mutex_lock(&s->write_mu);
	if (atomic_load(&s->active->size) > STORE_SEG_HDR)
		rc = roll_locked(s);
	pthread_mutex_unlock(&s->write_mu);
	return rc;
}

int store_append_locked(struct store *s, const uint8_t *hdr, const struct store_rec_hdr *h,
			const void *key, const void *val, uint32_t *seg_id, uint32_t *off)
{
	uint64_t len = store_rec_size(h);
	struct store_segment *seg = s->active;
	uint64_t at = atomic_load(&seg->size);
	int rc = 0;

	if (s->write_err)
		rc = store_flush_locked(s);
	if (rc == 0 && at > STORE_SEG_HDR && at + len > s->opt.segment_size) {
		rc = roll_locked(s);
		seg = s->active;
		at = atomic_load(&seg->size);
	}
	/* Small records are gathered and written in large writes, which the page
	 * cache takes far faster than many small unaligned ones. */
	if (rc == 0 && (len > STORE_WBUF_DIRECT || seg->wbuf_len + len > STORE_WBUF_CAP))
		rc = store_flush_locked(s);
	if (rc == 0)
		rc = len > STORE_WBUF_DIRECT ? append_direct(s, seg, at, hdr, h, key, val)
					     : append_buffered(seg, hdr, h, key, val);
	if (rc < 0) {
		char kr[512];
		store_logf(s, STORE_LOG_ERROR, "append of key %s to segment %06u failed: %s",
			   store_key_repr(key, h->key_len, kr, sizeof(kr)), seg->id, strerror(-rc));
		return rc;
	}
	atomic_store(&seg->size, at + len);
	store_hint_add(&s->hint, h, key, (uint32_t)at, (uint32_t)len);
	atomic_fetch_add(&s->appended, len);
	*seg_id = seg->id;
	*off = (uint32_t)at;
	return 0;
}
