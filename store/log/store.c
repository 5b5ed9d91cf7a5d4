/*
 * store - the log engine of one node: open and recovery, the write path, reads,
 * durability and the background threads. The one idea: a record is appended
 * (under write_mu) before the keydir points at it (under the rwlock), and a
 * reader copies a record's place out of the keydir and reads it with no lock
 * held, keeping the segment open by a reference. Version rule: the higher
 * (stamp, node) wins, on put, on replication and on recovery alike.
 * Format: docs/FORMAT.md. Locking: store_i.h.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "../xxh_i.h"

#include "hash_i.h"
#include "store_i.h"
#include "../endian.h"

#define MIN_SEGMENT_SIZE 4096
#define MAX_SEGMENT_SIZE (2ull << 30)

void store_options_init(struct store_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->node_id = 1;
	opt->sync = STORE_SYNC_BATCH;
	opt->segment_size = 256ull << 20;
	opt->batch_interval_ms = 10;
	opt->compact_live_ratio = 0.5;
	opt->compact_interval_ms = 1000;
	opt->compress_level = 1;
}

int store_version_cmp(const struct store_version *a, const struct store_version *b)
{
	if (a->stamp != b->stamp)
		return a->stamp < b->stamp ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}

int store_sync_mode_parse(const char *name, enum store_sync_mode *mode)
{
	if (strcmp(name, "batch") == 0)
		*mode = STORE_SYNC_BATCH;
	else if (strcmp(name, "always") == 0)
		*mode = STORE_SYNC_ALWAYS;
	else if (strcmp(name, "none") == 0)
		*mode = STORE_SYNC_NONE;
	else
		return -EINVAL;
	return 0;
}

const char *store_sync_mode_name(enum store_sync_mode mode)
{
	switch (mode) {
	case STORE_SYNC_ALWAYS:
		return "always";
	case STORE_SYNC_NONE:
		return "none";
	default:
		return "batch";
	}
}

uint64_t store_key_hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

uint64_t store_tree_leaf(const void *key, size_t klen, const struct store_version *version,
			 uint64_t value_hash, bool tombstone)
{
	uint8_t buf[STORE_KEY_MAX + 21];

	if (klen > STORE_KEY_MAX)
		klen = STORE_KEY_MAX;
	memcpy(buf, key, klen);
	put_le64(buf + klen, version->stamp);
	put_le32(buf + klen + 8, version->node);
	put_le64(buf + klen + 12, value_hash);
	buf[klen + 20] = tombstone ? 1 : 0;
	return XXH3_64bits(buf, klen + 21);
}

static uint64_t entry_leaf(const struct store_kd_entry *e)
{
	struct store_version v = { e->stamp, e->node };

	return store_tree_leaf(e->key, e->key_len, &v, e->value_hash,
			       e->flags & STORE_REC_TOMBSTONE);
}

/* ---- segment table and keydir accounting (callers hold s->lock for writing) ---- */

static int table_set(struct store *s, uint32_t id, struct store_segment *seg)
{
	if (id >= s->segs_cap) {
		uint32_t cap = s->segs_cap ? s->segs_cap : 64;
		while (cap <= id)
			cap *= 2;
		struct store_segment **n = realloc(s->segs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + s->segs_cap, 0, (cap - s->segs_cap) * sizeof(*n));
		s->segs = n;
		s->segs_cap = cap;
	}
	s->segs[id] = seg;
	return 0;
}

static struct store_segment *table_get(struct store *s, uint32_t id)
{
	return id < s->segs_cap ? s->segs[id] : NULL;
}

static void account(struct store *s, struct store_kd_entry *e, uint64_t hash, int sign)
{
	struct store_segment *seg = table_get(s, e->seg);
	bool tomb = e->flags & STORE_REC_TOMBSTONE;

	store_htree_update(s->tree, hash, entry_leaf(e), sign);
	if (sign > 0) {
		if (seg)
			seg->live_bytes += e->len;
		s->live_bytes += e->len;
		if (tomb)
			s->tombstones++;
		else
			s->keys++;
	} else {
		if (seg)
			seg->live_bytes -= e->len;
		s->live_bytes -= e->len;
		if (tomb)
			s->tombstones--;
		else
			s->keys--;
	}
}

/*
 * Makes the keydir point at a record when its version is newer than the
 * current one (or equal, with ties_win: a later copy of the same version).
 * Returns 1 when indexed, 0 when the record is older, -ENOMEM.
 */
static int index_record(struct store *s, uint64_t hash, const void *key,
			const struct store_rec_hdr *h, uint32_t seg, uint32_t off, uint32_t len,
			bool ties_win)
{
	struct store_kd_entry *e = store_kd_find(s->kd, hash, key, h->key_len);

	if (e) {
		struct store_version nv = { h->stamp, h->node }, ov = { e->stamp, e->node };
		int c = store_version_cmp(&nv, &ov);

		if (c < 0 || (c == 0 && !ties_win))
			return 0;
		account(s, e, hash, -1);
	} else {
		e = store_kd_insert(s->kd, hash, key, h->key_len);
		if (!e)
			return -ENOMEM;
	}
	e->stamp = h->stamp;
	e->node = h->node;
	e->value_hash = h->value_hash;
	e->flags = h->flags;
	e->seg = seg;
	e->off = off;
	e->len = len;
	account(s, e, hash, +1);
	return 1;
}

static void meta_from_entry(const struct store_kd_entry *e, struct store_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->version.stamp = e->stamp;
	m->version.node = e->node;
	m->value_hash = e->value_hash;
	m->segment = e->seg;
	m->offset = e->off;
	m->tombstone = e->flags & STORE_REC_TOMBSTONE;
	m->compressed = e->flags & STORE_REC_ZSTD;
}

/* ---- durability ---- */

int store_sync_through(struct store *s, uint64_t through)
{
	int rc = 0;

	pthread_mutex_lock(&s->sync_mu);
	while (s->synced < through && rc == 0) {
		if (s->syncing) {
			pthread_cond_wait(&s->sync_cv, &s->sync_mu);
			continue;
		}
		s->syncing = true;
		pthread_mutex_unlock(&s->sync_mu);

		/* Everything before the active segment was fsynced when it was sealed. */
		pthread_mutex_lock(&s->write_mu);
		struct store_segment *seg = s->active;
		uint64_t upto = atomic_load(&s->appended);
		rc = store_flush_locked(s);
		store_segment_ref(seg);
		pthread_mutex_unlock(&s->write_mu);

		if (rc == 0 && fdatasync(seg->fd) < 0) {
			rc = -errno;
			store_logf(s, STORE_LOG_ERROR, "fsync of segment %06u failed: %s", seg->id,
				   strerror(-rc));
		}
		store_segment_unref(seg);

		pthread_mutex_lock(&s->sync_mu);
		s->syncing = false;
		if (rc == 0 && upto > s->synced)
			s->synced = upto;
		pthread_cond_broadcast(&s->sync_cv);
	}
	pthread_mutex_unlock(&s->sync_mu);
	return rc;
}

int store_flush(struct store *s)
{
	pthread_mutex_lock(&s->write_mu);
	int rc = store_flush_locked(s);
	pthread_mutex_unlock(&s->write_mu);
	return rc;
}

int store_sync(struct store *s)
{
	return store_sync_through(s, atomic_load(&s->appended));
}

/* ---- appending ---- */

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
		rc = table_set(s, seg->id, seg);
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
	struct iovec iov[3] = { { (void *)hdr, STORE_REC_HDR },
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
	p = seg->wbuf + seg->wbuf_len;
	memcpy(p, hdr, STORE_REC_HDR);
	memcpy(p + STORE_REC_HDR, key, h->key_len);
	if (h->stored_len)
		memcpy(p + STORE_REC_HDR + h->key_len, val, h->stored_len);
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

static int check_key(const void *key, size_t klen)
{
	return (key && klen > 0 && klen <= STORE_KEY_MAX) ? 0 : -EINVAL;
}

/* The one write path: put (version NULL), delete (tombstone, must_exist) and
 * apply (a version given: written only when newer). */
/* must_exist: -ENOENT unless the key has a live value. equal_ok: a record
 * of the same version as the current one is written too (a repair). */
static int write_object_x(struct store *s, const void *key, size_t klen, const void *val,
			  size_t vlen, const struct store_version *version, bool tombstone,
			  bool must_exist, bool equal_ok, struct store_meta *meta);

static int write_object(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
			const struct store_version *version, bool tombstone, bool must_exist,
			struct store_meta *meta)
{
	return write_object_x(s, key, klen, val, vlen, version, tombstone, must_exist, false, meta);
}

int store_repair(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		 const struct store_version *version, bool tombstone)
{
	if (!version)
		return -EINVAL;
	return write_object_x(s, key, klen, val, vlen, version, tombstone, false, true, NULL);
}

static int write_object_x(struct store *s, const void *key, size_t klen, const void *val,
			  size_t vlen, const struct store_version *version, bool tombstone,
			  bool must_exist, bool equal_ok, struct store_meta *meta)
{
	struct store_rec_hdr h = { 0 };
	uint8_t hdr[STORE_REC_HDR];
	uint64_t hash, through;
	const void *stored = val;
	void *cbuf = NULL;
	size_t clen = 0;
	uint32_t seg_id = 0, off = 0;
	int rc = 0;

	if (check_key(key, klen) < 0 || vlen > STORE_VALUE_MAX || (vlen && !val && !tombstone))
		return -EINVAL;
	if (tombstone)
		vlen = 0;
	hash = store_key_hash(key, klen);
	h.version = STORE_REC_VERSION;
	h.key_len = (uint16_t)klen;
	h.raw_len = (uint32_t)vlen;
	h.stored_len = (uint32_t)vlen;
	if (tombstone) {
		h.flags = STORE_REC_TOMBSTONE;
	} else {
		h.value_hash = store_hash_bulk(val, vlen);
		rc = store_zstd_compress(s->opt.compress_level, val, vlen, &cbuf, &clen);
		if (rc < 0)
			return rc;
		if (rc == 1) {
			stored = cbuf;
			h.stored_len = (uint32_t)clen;
			h.flags |= STORE_REC_ZSTD;
		}
		rc = 0;
	}

	pthread_mutex_lock(&s->write_mu);
	if (version || must_exist) {
		pthread_rwlock_rdlock(&s->lock);
		struct store_kd_entry *e = store_kd_find(s->kd, hash, key, klen);
		if (must_exist && (!e || (e->flags & STORE_REC_TOMBSTONE)))
			rc = -ENOENT;
		if (version && e) {
			struct store_version cur = { e->stamp, e->node };
			int v = store_version_cmp(version, &cur);
			if (v < 0 || (v == 0 && !equal_ok))
				rc = STORE_STALE;
		}
		pthread_rwlock_unlock(&s->lock);
	}
	if (rc == 0) {
		if (version) {
			h.stamp = version->stamp;
			h.node = version->node;
			store_clock_observe(&s->clock, version->stamp);
		} else {
			h.stamp = store_clock_now(&s->clock);
			h.node = s->opt.node_id;
		}
		store_rec_encode(&h, hdr);
		/* The seed is the hash of the stored bytes: for an uncompressed value
		 * that is the value hash, computed already. */
		uint64_t stored_hash = cbuf	   ? store_hash_bulk(cbuf, clen)
				       : tombstone ? XXH3_64bits(NULL, 0)
						   : h.value_hash;
		h.checksum = store_rec_checksum(hdr, key, klen, stored_hash);
		put_le64(hdr, h.checksum);
		rc = store_append_locked(s, hdr, &h, key, stored, &seg_id, &off);
	}
	if (rc == 0) {
		pthread_rwlock_wrlock(&s->lock);
		int ir =
		    index_record(s, hash, key, &h, seg_id, off, (uint32_t)store_rec_size(&h), true);
		pthread_rwlock_unlock(&s->lock);
		if (ir < 0)
			rc = ir;
	}
	through = atomic_load(&s->appended);
	pthread_mutex_unlock(&s->write_mu);
	free(cbuf);
	if (rc != 0)
		return rc;

	atomic_fetch_add(tombstone ? &s->deletes : &s->puts, 1);
	if (s->opt.sync == STORE_SYNC_ALWAYS)
		rc = store_sync_through(s, through);
	if (meta) {
		memset(meta, 0, sizeof(*meta));
		meta->version.stamp = h.stamp;
		meta->version.node = h.node;
		meta->value_hash = h.value_hash;
		meta->size = h.raw_len;
		meta->stored_size = h.stored_len;
		meta->segment = seg_id;
		meta->offset = off;
		meta->tombstone = tombstone;
		meta->compressed = h.flags & STORE_REC_ZSTD;
	}
	return rc;
}

int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
	      struct store_meta *meta)
{
	return write_object(s, key, klen, val, vlen, NULL, false, false, meta);
}

int store_delete(struct store *s, const void *key, size_t klen, struct store_meta *meta)
{
	return write_object(s, key, klen, NULL, 0, NULL, true, true, meta);
}

int store_apply(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		const struct store_version *version, bool tombstone)
{
	if (!version)
		return -EINVAL;
	return write_object(s, key, klen, val, vlen, version, tombstone, false, NULL);
}

/* ---- reading ---- */

/* Finds key and takes a reference on the segment holding its newest record. */
static int locate(struct store *s, const void *key, size_t klen, struct store_meta *m,
		  struct store_segment **seg, uint32_t *len)
{
	uint64_t hash = store_key_hash(key, klen);
	struct store_kd_entry *e;
	int rc = 0;

	pthread_rwlock_rdlock(&s->lock);
	e = store_kd_find(s->kd, hash, key, klen);
	if (!e) {
		memset(m, 0, sizeof(*m));
		rc = -ENOENT;
	} else {
		meta_from_entry(e, m);
		*len = e->len;
		if (m->tombstone) {
			rc = -ENOENT;
		} else {
			*seg = table_get(s, e->seg);
			if (*seg)
				store_segment_ref(*seg);
			else
				rc = -EIO;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
}

/*
 * Reads from segment mappings are guarded: a page that cannot be read (a media
 * error, or a segment file truncated behind our back) raises SIGBUS, which the
 * handler turns into -EIO for the reading thread instead of killing the
 * process. A SIGBUS outside a guarded copy gets the handler there was before.
 */
static _Thread_local sigjmp_buf *bus_guard;
static struct sigaction bus_prev;
static pthread_mutex_t bus_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	if (bus_guard)
		siglongjmp(*bus_guard, 1);
	if ((bus_prev.sa_flags & SA_SIGINFO) && bus_prev.sa_sigaction) {
		bus_prev.sa_sigaction(sig, info, ctx);
	} else if (bus_prev.sa_handler != SIG_DFL && bus_prev.sa_handler != SIG_IGN &&
		   bus_prev.sa_handler) {
		bus_prev.sa_handler(sig);
	} else {
		/* Returning re-runs the faulting access under the default action. */
		sigaction(SIGBUS, &bus_prev, NULL);
	}
}

/* Installs the handler unless it is the current one (someone may have replaced
 * it since the last store_open); what it replaces becomes the fallback. */
static void install_bus_handler(void)
{
	struct sigaction sa, cur;

	pthread_mutex_lock(&bus_mu);
	sigaction(SIGBUS, NULL, &cur);
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus) {
		pthread_mutex_unlock(&bus_mu);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	/* NODEFER: we leave the handler by siglongjmp without restoring a mask. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &bus_prev);
	pthread_mutex_unlock(&bus_mu);
}

/* Hashing the source first leaves it in cache for the copy: measured, this
 * costs less than hashing the copy afterwards. The mapped bytes of a record
 * never change, so the hash is the copy's. */
static __attribute__((noinline)) void copy_out(const uint8_t *src, void *dst, size_t len,
					       uint64_t *hash)
{
	if (hash)
		*hash = store_hash_bulk(src, len);
	memcpy(dst, src, len);
}

/* Copies len bytes at off out of seg's mapping into dst (and hashes them, when
 * hash is given); -EIO if a page of it cannot be read. */
static int read_mapped(const struct store_segment *seg, uint64_t off, void *dst, size_t len,
		       uint64_t *hash)
{
	sigjmp_buf jb;

	if (off + len > atomic_load(&seg->size) || off + len > seg->map_len)
		return -EIO;
	if (sigsetjmp(jb, 0)) {
		bus_guard = NULL;
		return -EIO;
	}
	bus_guard = &jb;
	copy_out(seg->map + off, dst, len, hash);
	bus_guard = NULL;
	return 0;
}

static int bad_record(struct store *s, const void *key, size_t klen, const struct store_meta *m,
		      const char *what)
{
	char kr[512];

	atomic_fetch_add(&s->corrupt_records, 1);
	store_logf(s, STORE_LOG_ERROR, "key %s: record at segment %06u offset %u %s",
		   store_key_repr(key, klen, kr, sizeof(kr)), m->segment, m->offset, what);
	return -EBADMSG;
}

/* Reads len bytes at off of seg (mapping or pread) and, when hash is given,
 * their xxh3-64; logs a failure. */
static int read_at(struct store *s, struct store_segment *seg, uint64_t off, void *buf, size_t len,
		   const void *key, size_t klen, uint64_t *hash)
{
	int rc;

	if (off + len > atomic_load(&seg->flushed)) {
		/* Appended but maybe not written yet: copy from the append buffer. */
		bool copied = false;

		pthread_mutex_lock(&s->write_mu);
		uint64_t flushed = atomic_load(&seg->flushed);
		if (off >= flushed && off + len <= flushed + seg->wbuf_len) {
			memcpy(buf, seg->wbuf + (off - flushed), len);
			copied = true;
		}
		pthread_mutex_unlock(&s->write_mu);
		if (copied) {
			if (hash)
				*hash = store_hash_bulk(buf, len);
			return 0;
		}
	}
	if (seg->map) {
		rc = read_mapped(seg, off, buf, len, hash);
	} else {
		ssize_t got = len ? store_read_full(seg->fd, buf, len, (off_t)off) : 0;

		rc = got < 0 ? (int)got : (size_t)got < len ? -EIO : 0;
		if (rc == 0 && hash)
			*hash = store_hash_bulk(buf, len);
	}
	if (rc < 0) {
		char kr[512];
		store_logf(s, STORE_LOG_ERROR, "key %s: cannot read segment %06u offset %llu: %s",
			   store_key_repr(key, klen, kr, sizeof(kr)), seg->id,
			   (unsigned long long)off, strerror(-rc));
	}
	return rc;
}

/* Reads and checks the header and key of the record the keydir gave for key. */
static int read_header(struct store *s, struct store_segment *seg, const struct store_meta *m,
		       uint32_t len, const void *key, size_t klen, uint8_t *hdr,
		       struct store_rec_hdr *h)
{
	uint8_t buf[STORE_REC_HDR + STORE_KEY_MAX];
	int rc = read_at(s, seg, m->offset, buf, STORE_REC_HDR + klen, key, klen, NULL);

	if (rc < 0)
		return rc;
	memcpy(hdr, buf, STORE_REC_HDR);
	if (store_rec_decode(buf, h) < 0 || h->key_len != klen ||
	    memcmp(buf + STORE_REC_HDR, key, klen) != 0 || store_rec_size(h) != len ||
	    h->stamp != m->version.stamp)
		return bad_record(s, key, klen, m, "does not match the keydir");
	return 0;
}

/*
 * The read path of store_get and store_read: into buf (cap bytes) when buf is
 * given, else into a new buffer of the exact size returned in *out.
 */
static int fetch(struct store *s, const void *key, size_t klen, void *buf, size_t cap, void **out,
		 size_t *vlen, struct store_meta *meta)
{
	struct store_meta m;
	struct store_segment *seg = NULL;
	struct store_rec_hdr h;
	uint8_t hdr[STORE_REC_HDR];
	uint8_t *dst = buf, *stored = NULL;
	uint64_t voff, stored_hash = 0;
	uint32_t len = 0;
	int rc;

	if (check_key(key, klen) < 0)
		return -EINVAL;
	atomic_fetch_add(&s->gets, 1);
	rc = locate(s, key, klen, &m, &seg, &len);
	if (rc < 0) {
		if (rc == -ENOENT)
			atomic_fetch_add(&s->get_misses, 1);
		if (meta) /* tells a deleted key (tombstone) from an absent one */
			*meta = m;
		return rc;
	}
	rc = read_header(s, seg, &m, len, key, klen, hdr, &h);
	if (rc < 0)
		goto out;
	*vlen = h.raw_len;
	if (buf && h.raw_len > cap) {
		rc = -ERANGE;
		goto out;
	}
	if (!buf) {
		dst = malloc(h.raw_len ? h.raw_len : 1);
		if (!dst) {
			rc = -ENOMEM;
			goto out;
		}
	}
	stored = dst;
	if (h.flags & STORE_REC_ZSTD) {
		stored = malloc(h.stored_len ? h.stored_len : 1);
		if (!stored) {
			rc = -ENOMEM;
			goto out;
		}
	}
	voff = (uint64_t)m.offset + STORE_REC_HDR + klen;
	rc = read_at(s, seg, voff, stored, h.stored_len, key, klen, &stored_hash);
	if (rc < 0)
		goto out;
	if (store_rec_checksum(hdr, key, klen, stored_hash) != h.checksum) {
		rc = bad_record(s, key, klen, &m, "fails its checksum");
		goto out;
	}
	if (h.flags & STORE_REC_ZSTD) {
		rc = store_zstd_decompress(stored, h.stored_len, dst, h.raw_len);
		if (rc == 0 && store_hash_bulk(dst, h.raw_len) != h.value_hash)
			rc = -EBADMSG;
		if (rc == -EBADMSG)
			bad_record(s, key, klen, &m, "does not decompress to its value hash");
	}
out:
	store_segment_unref(seg);
	if (stored != dst)
		free(stored);
	if (rc < 0) {
		if (dst != buf)
			free(dst);
		return rc;
	}
	if (out)
		*out = dst;
	if (meta) {
		*meta = m;
		meta->size = h.raw_len;
		meta->stored_size = h.stored_len;
	}
	return 0;
}

int store_get(struct store *s, const void *key, size_t klen, void **val, size_t *vlen,
	      struct store_meta *meta)
{
	return fetch(s, key, klen, NULL, 0, val, vlen, meta);
}

int store_read(struct store *s, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen,
	       struct store_meta *meta)
{
	if (!buf)
		return -EINVAL;
	return fetch(s, key, klen, buf, cap, NULL, vlen, meta);
}

int store_stat(struct store *s, const void *key, size_t klen, struct store_meta *meta)
{
	struct store_segment *seg = NULL;
	struct store_rec_hdr h;
	uint8_t hdr[STORE_REC_HDR];
	uint32_t len = 0;
	int rc;

	if (check_key(key, klen) < 0)
		return -EINVAL;
	rc = locate(s, key, klen, meta, &seg, &len);
	if (rc < 0)
		return rc;
	rc = read_header(s, seg, meta, len, key, klen, hdr, &h);
	store_segment_unref(seg);
	if (rc < 0)
		return rc;
	meta->size = h.raw_len;
	meta->stored_size = h.stored_len;
	return 0;
}

/* ---- snapshots for scans ---- */

struct snapshot {
	uint8_t *buf;
	size_t len, cap;
	const void *prefix;
	size_t plen;
	bool tombstones;
	int err;
};

static void snap_add(void *arg, struct store_kd_entry *e)
{
	struct snapshot *sn = arg;
	size_t need = sizeof(struct store_meta) + 1 + e->key_len;

	if (sn->err)
		return;
	if (!sn->tombstones && (e->flags & STORE_REC_TOMBSTONE))
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
	meta_from_entry(e, &m);
	memcpy(sn->buf + sn->len, &m, sizeof(m));
	sn->buf[sn->len + sizeof(m)] = e->key_len;
	memcpy(sn->buf + sn->len + sizeof(m) + 1, e->key, e->key_len);
	sn->len += need;
}

static int snap_walk(struct snapshot *sn, store_scan_fn fn, void *arg)
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
	struct snapshot sn = { .prefix = prefix, .plen = plen, .tombstones = with_tombstones };
	struct store_kd_entry *e;
	size_t pos = 0;

	pthread_rwlock_rdlock(&s->lock);
	while ((e = store_kd_next(s->kd, &pos)) != NULL)
		snap_add(&sn, e);
	pthread_rwlock_unlock(&s->lock);
	return snap_walk(&sn, fn, arg);
}

/* ---- hash tree ---- */

static int path_index(const uint8_t *path, int depth, uint64_t *index)
{
	uint64_t idx = 0;

	if (depth < 0 || depth > STORE_TREE_DEPTH || (depth && !path))
		return -EINVAL;
	for (int i = 0; i < depth; i++) {
		if (path[i] > 15)
			return -EINVAL;
		idx = idx << 4 | path[i];
	}
	*index = idx;
	return 0;
}

int store_tree_children(struct store *s, const uint8_t *path, int depth,
			struct store_tree_node *self, struct store_tree_node children[16])
{
	uint64_t idx;

	if (depth >= STORE_TREE_DEPTH || path_index(path, depth, &idx) < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&s->lock);
	if (self)
		*self = store_htree_node(s->tree, depth, idx);
	for (int i = 0; i < 16; i++)
		children[i] = store_htree_node(s->tree, depth + 1, idx << 4 | (uint64_t)i);
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

int store_tree_bucket(struct store *s, const uint8_t path[STORE_TREE_DEPTH], store_scan_fn fn,
		      void *arg)
{
	struct snapshot sn = { .tombstones = true };
	uint64_t idx, lo, hi;
	const int shift = 64 - 4 * STORE_TREE_DEPTH;

	if (path_index(path, STORE_TREE_DEPTH, &idx) < 0)
		return -EINVAL;
	lo = idx << shift;
	hi = lo | ((1ull << shift) - 1);
	pthread_rwlock_rdlock(&s->lock);
	store_kd_range(s->kd, lo, hi, snap_add, &sn);
	pthread_rwlock_unlock(&s->lock);
	return snap_walk(&sn, fn, arg);
}

/* One hint entry, kept to compare with the record it names. */
struct hint_rec {
	uint32_t off, len;
	uint64_t stamp, value_hash;
	uint32_t node;
	uint8_t flags, klen;
	uint8_t key[STORE_KEY_MAX];
	bool matched;
};

struct verify_ctx {
	uint64_t records, bad;
	uint32_t seg;
	store_verify_fn fn;
	void *arg;
	struct hint_rec *hints; /* of the segment being verified, sorted by offset */
	size_t nhints, caphints;
};

static void problem(struct verify_ctx *c, uint64_t off, const char *what)
{
	c->bad++;
	if (c->fn)
		c->fn(c->arg, c->seg, off, what);
}

static int collect_hint(void *arg, const struct store_hint_entry *e)
{
	struct verify_ctx *c = arg;

	if (c->nhints == c->caphints) {
		size_t cap = c->caphints ? c->caphints * 2 : 256;
		struct hint_rec *n = realloc(c->hints, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->hints = n;
		c->caphints = cap;
	}
	struct hint_rec *h = &c->hints[c->nhints++];
	h->off = e->off;
	h->len = e->len;
	h->stamp = e->hdr.stamp;
	h->value_hash = e->hdr.value_hash;
	h->node = e->hdr.node;
	h->flags = e->hdr.flags;
	h->klen = (uint8_t)e->hdr.key_len;
	memcpy(h->key, e->key, e->hdr.key_len);
	h->matched = false;
	return 0;
}

static int verify_rec(void *arg, const struct store_scan_rec *r)
{
	struct verify_ctx *c = arg;

	c->records++;
	if (r->corrupt)
		problem(c, r->off, "record fails its checksum");
	if (!c->hints || r->corrupt)
		return 0;
	/* the hint must describe this very record (hints are in offset order) */
	size_t lo = 0, hi = c->nhints;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->hints[mid].off < r->off)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct hint_rec *h = lo < c->nhints && c->hints[lo].off == r->off ? &c->hints[lo] : NULL;
	if (!h) {
		problem(c, r->off, "the hint file leaves out this record");
		return 0;
	}
	h->matched = true;
	if (h->len != r->len || h->stamp != r->hdr.stamp || h->node != r->hdr.node ||
	    h->value_hash != r->hdr.value_hash || h->flags != r->hdr.flags ||
	    h->klen != r->hdr.key_len || memcmp(h->key, r->key, h->klen) != 0)
		problem(c, r->off, "the hint file disagrees with this record");
	return 0;
}

static int cmp_hint(const void *a, const void *b)
{
	uint32_t x = ((const struct hint_rec *)a)->off, y = ((const struct hint_rec *)b)->off;
	return x < y ? -1 : x > y;
}

int store_verify(struct store *s, store_verify_fn fn, void *arg, uint64_t *records, uint64_t *bad)
{
	struct verify_ctx c = { .fn = fn, .arg = arg };
	int rc = store_sync(s); /* the append buffer into the file first */

	for (uint32_t id = 0; rc == 0; id++) {
		struct store_segment *seg = NULL;
		uint64_t end, size;

		pthread_rwlock_rdlock(&s->lock);
		if (id >= s->segs_cap) {
			pthread_rwlock_unlock(&s->lock);
			break;
		}
		seg = s->segs[id];
		if (seg)
			store_segment_ref(seg);
		pthread_rwlock_unlock(&s->lock);
		if (!seg)
			continue;
		c.seg = id;
		c.nhints = 0;
		bool hinted = false;
		if (seg->sealed) {
			int hr = store_hint_load(s, seg, collect_hint, &c);
			if (hr == -EBADMSG)
				problem(&c, 0, "the hint file is damaged or does not fit the segment");
			else if (hr == -ENOENT)
				problem(&c, 0, "the sealed segment has no hint file");
			else if (hr == 0)
				hinted = true;
			else if (hr < 0)
				rc = hr;
			if (hinted)
				qsort(c.hints, c.nhints, sizeof(*c.hints), cmp_hint);
		}
		struct hint_rec *keep = c.hints;
		if (!hinted)
			c.hints = NULL;
		size = atomic_load(&seg->flushed);
		if (rc == 0)
			rc = store_segment_scan(s, seg, verify_rec, &c, &end);
		if (rc == 0 && end < size)
			problem(&c, end, "unreadable from here to the end of the segment");
		for (size_t i = 0; hinted && i < c.nhints; i++)
			if (!c.hints[i].matched)
				problem(&c, c.hints[i].off, "the hint file names a record that is not there");
		c.hints = keep;
		store_segment_unref(seg);
	}
	free(c.hints);
	*records = c.records;
	*bad = c.bad;
	return rc;
}

struct store_clock *store_clock(struct store *s)
{
	return &s->clock;
}

/* ---- stats ---- */

void store_stats(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->node_id = s->opt.node_id;
	pthread_rwlock_rdlock(&s->lock);
	st->keys = s->keys;
	st->tombstones = s->tombstones;
	st->live_bytes = s->live_bytes;
	for (uint32_t i = 0; i < s->segs_cap; i++) {
		if (s->segs[i]) {
			st->segments++;
			st->disk_bytes += atomic_load(&s->segs[i]->size);
		}
	}
	st->keydir_bytes = store_kd_bytes(s->kd);
	st->tree_root = store_htree_node(s->tree, 0, 0).hash;
	pthread_rwlock_unlock(&s->lock);
	st->puts = atomic_load(&s->puts);
	st->deletes = atomic_load(&s->deletes);
	st->gets = atomic_load(&s->gets);
	st->get_misses = atomic_load(&s->get_misses);
	st->compactions = atomic_load(&s->compactions);
	st->compacted_bytes = atomic_load(&s->compacted_bytes);
	st->reclaimed_bytes = atomic_load(&s->reclaimed_bytes);
	st->corrupt_records = atomic_load(&s->corrupt_records);
	st->cut_bytes = atomic_load(&s->cut_bytes);
	st->appended = atomic_load(&s->appended);
	pthread_mutex_lock(&s->sync_mu);
	st->synced_through = s->synced;
	pthread_mutex_unlock(&s->sync_mu);
}

/* ---- open and recovery ---- */

struct load_ctx {
	struct store *s;
	uint32_t seg;
	struct store_hintbuf *hint; /* rebuilt while scanning */
};

static int load_one(struct load_ctx *c, const struct store_rec_hdr *h, const void *key,
		    uint32_t off, uint32_t len)
{
	int rc =
	    index_record(c->s, store_key_hash(key, h->key_len), key, h, c->seg, off, len, true);

	store_clock_observe(&c->s->clock, h->stamp);
	return rc < 0 ? rc : 0;
}

static int load_hint_entry(void *arg, const struct store_hint_entry *e)
{
	return load_one(arg, &e->hdr, e->key, e->off, e->len);
}

static int load_scan_rec(void *arg, const struct store_scan_rec *r)
{
	struct load_ctx *c = arg;

	store_hint_add(c->hint, &r->hdr, r->key, r->off, r->len);
	return load_one(c, &r->hdr, r->key, r->off, r->len);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Lists segment ids in ascending order; removes leftover temp files. */
static int list_segments(struct store *s, uint32_t **ids, size_t *n, uint64_t *hint_bytes)
{
	DIR *d = opendir(s->logdir);
	struct dirent *de;
	uint32_t *v = NULL;
	size_t cnt = 0, cap = 0;

	*hint_bytes = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long id = strtoul(de->d_name, &end, 10);
		size_t nl = strlen(de->d_name);

		if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (end == de->d_name || id == 0 || id >= UINT32_MAX - 1)
			continue;
		if (strcmp(end, ".hint") == 0) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
				*hint_bytes += (uint64_t)st.st_size;
			continue;
		}
		if (strcmp(end, ".cask") != 0)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			uint32_t *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = (uint32_t)id;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_u32);
	*ids = v;
	*n = cnt;
	return 0;
}

/* Scans a segment without a usable hint. The active one loses a torn tail;
 * a sealed one is left as it is and gets a new hint. */
static int load_by_scan(struct store *s, struct store_segment *seg, bool active)
{
	struct store_hintbuf tmp = { 0 };
	struct load_ctx c = { .s = s, .seg = seg->id, .hint = active ? &s->hint : &tmp };
	uint64_t size = atomic_load(&seg->size), end;
	int rc = store_segment_scan(s, seg, load_scan_rec, &c, &end);

	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot scan segment %06u: %s", seg->id,
			   strerror(-rc));
		free(tmp.buf);
		return rc;
	}
	if (end < size && active && store_segment_wellformed_after(s, seg, end) >= 2) {
		/* Whole records that fail their checksums are not a torn write:
		 * cutting them could destroy data (a wrong file, a checksum bug). */
		store_logf(s, STORE_LOG_ERROR,
			   "segment %06u: %llu bytes from offset %llu are whole records that fail "
			   "their checksums, not a torn write; refusing to cut them (move the "
			   "segment aside or run fsck)",
			   seg->id, (unsigned long long)(size - end), (unsigned long long)end);
		free(tmp.buf);
		return -EBADMSG;
	}
	if (end < size && active) {
		store_logf(s, STORE_LOG_WARN,
			   "segment %06u: cut %llu bytes of torn or failing records at offset %llu",
			   seg->id, (unsigned long long)(size - end), (unsigned long long)end);
		if (ftruncate(seg->fd, (off_t)end) < 0 || fdatasync(seg->fd) < 0) {
			rc = -errno;
			store_logf(s, STORE_LOG_ERROR, "cannot cut segment %06u: %s", seg->id,
				   strerror(-rc));
			return rc;
		}
		atomic_fetch_add(&s->cut_bytes, size - end);
		atomic_store(&seg->size, end);
		atomic_store(&seg->flushed, end);
	} else if (end < size) {
		store_logf(
		    s, STORE_LOG_ERROR,
		    "segment %06u: %llu bytes from offset %llu are unreadable; kept for fsck",
		    seg->id, (unsigned long long)(size - end), (unsigned long long)end);
	}
	if (!active) {
		store_hint_write(s, seg->id, &tmp);
		seg->sealed = true;
	}
	free(tmp.buf);
	return 0;
}

static int load_segments(struct store *s)
{
	uint32_t *ids = NULL, next_id = 1;
	size_t n = 0;
	uint64_t hint_bytes;
	int rc = list_segments(s, &ids, &n, &hint_bytes);

	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot list %s: %s", s->logdir, strerror(-rc));
		return rc;
	}
	rc = store_kd_create((size_t)(hint_bytes / 40), &s->kd);
	if (rc == 0)
		rc = store_htree_create(&s->tree);
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool last = i + 1 == n;
		struct store_segment *seg;
		struct load_ctx c = { .s = s, .seg = ids[i] };

		next_id = ids[i] + 1;
		rc = store_segment_open(s, ids[i], last, &seg);
		if (rc == -EBADMSG && !last) {
			rc = 0; /* logged; the file stays for fsck */
			continue;
		}
		if (rc < 0)
			break;
		rc = table_set(s, seg->id, seg);
		if (rc < 0) {
			store_segment_unref(seg);
			break;
		}
		rc = store_hint_load(s, seg, load_hint_entry, &c);
		if (rc == 0) {
			seg->sealed = true;
			continue;
		}
		if (rc != -ENOENT)
			store_logf(s, STORE_LOG_WARN,
				   "hint of segment %06u is unusable (%s); scanning", seg->id,
				   strerror(-rc));
		rc = load_by_scan(s, seg, last);
		if (rc == 0 && last)
			s->active = seg;
	}
	free(ids);
	if (rc == 0 && !s->active) {
		struct store_segment *seg;
		rc = store_segment_create(s, next_id, &seg);
		if (rc == 0) {
			rc = table_set(s, seg->id, seg);
			if (rc < 0)
				store_segment_unref(seg);
			else
				s->active = seg;
		}
	}
	return rc;
}

/* ---- background threads ---- */

static bool bg_wait(struct store *s, unsigned ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->bg_mu);
	if (!s->stopping)
		pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &ts);
	stop = s->stopping;
	pthread_mutex_unlock(&s->bg_mu);
	return stop;
}

static void *syncer_main(void *arg)
{
	struct store *s = arg;

	while (!bg_wait(s, s->opt.batch_interval_ms))
		store_sync(s);
	return NULL;
}

static void *compactor_main(void *arg)
{
	struct store *s = arg;

	while (!bg_wait(s, s->opt.compact_interval_ms))
		store_compact(s, false);
	return NULL;
}

static int start_threads(struct store *s)
{
	int rc;

	if (s->opt.no_background)
		return 0;
	if (s->opt.sync == STORE_SYNC_BATCH) {
		rc = pthread_create(&s->syncer, NULL, syncer_main, s);
		if (rc)
			return -rc;
	}
	if (s->opt.compact_live_ratio >= 0) {
		rc = pthread_create(&s->compactor, NULL, compactor_main, s);
		if (rc) {
			if (s->opt.sync == STORE_SYNC_BATCH) {
				pthread_mutex_lock(&s->bg_mu);
				s->stopping = true;
				pthread_cond_broadcast(&s->bg_cv);
				pthread_mutex_unlock(&s->bg_mu);
				pthread_join(s->syncer, NULL);
			}
			return -rc;
		}
	}
	s->threads_started = true;
	return 0;
}

static void stop_threads(struct store *s)
{
	if (!s->threads_started)
		return;
	pthread_mutex_lock(&s->bg_mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->bg_cv);
	pthread_mutex_unlock(&s->bg_mu);
	if (s->opt.sync == STORE_SYNC_BATCH)
		pthread_join(s->syncer, NULL);
	if (s->opt.compact_live_ratio >= 0)
		pthread_join(s->compactor, NULL);
	s->threads_started = false;
}

static void free_store(struct store *s)
{
	for (uint32_t i = 0; i < s->segs_cap; i++)
		store_segment_unref(s->segs[i]);
	free(s->segs);
	store_kd_destroy(s->kd);
	store_htree_destroy(s->tree);
	free(s->hint.buf);
	if (s->logdir_fd >= 0)
		close(s->logdir_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->write_mu);
	pthread_mutex_destroy(&s->sync_mu);
	pthread_cond_destroy(&s->sync_cv);
	pthread_mutex_destroy(&s->compact_mu);
	pthread_mutex_destroy(&s->bg_mu);
	pthread_cond_destroy(&s->bg_cv);
	free(s->dir);
	free(s->logdir);
	free(s);
}

static int make_dir(struct store *s, const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	return 0;
}

int store_open(const char *dir, const struct store_options *opt, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	install_bus_handler();
	if (opt)
		s->opt = *opt;
	else
		store_options_init(&s->opt);
	s->lock_fd = -1;
	s->logdir_fd = -1;
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->write_mu, NULL);
	pthread_mutex_init(&s->sync_mu, NULL);
	pthread_cond_init(&s->sync_cv, NULL);
	pthread_mutex_init(&s->compact_mu, NULL);
	pthread_mutex_init(&s->bg_mu, NULL);
	pthread_cond_init(&s->bg_cv, NULL);
	s->dir = strdup(dir ? dir : "");
	if (!s->dir || asprintf(&s->logdir, "%s/log", s->dir) < 0) {
		s->logdir = NULL;
		free_store(s);
		return -ENOMEM;
	}
	if (!dir || !*dir || s->opt.segment_size < MIN_SEGMENT_SIZE ||
	    s->opt.segment_size > MAX_SEGMENT_SIZE || s->opt.batch_interval_ms == 0 ||
	    s->opt.compact_interval_ms == 0 || s->opt.compact_live_ratio > 1.0 ||
	    s->opt.sync > STORE_SYNC_NONE) {
		store_logf(s, STORE_LOG_ERROR, "invalid store options");
		free_store(s);
		return -EINVAL;
	}
	rc = make_dir(s, s->dir);
	if (rc == 0)
		rc = store_dirlock_take(s);
	if (rc == 0)
		rc = make_dir(s, s->logdir);
	if (rc == 0) {
		s->logdir_fd = open(s->logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->logdir_fd < 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = load_segments(s);
	if (rc == 0) {
		/* What was on disk at open counts as durable. */
		s->synced = 0;
		rc = start_threads(s);
	}
	if (rc < 0) {
		free_store(s);
		return rc;
	}
	*out = s;
	return 0;
}

int store_close(struct store *s)
{
	int rc;

	if (!s)
		return 0;
	stop_threads(s);
	rc = store_sync(s);
	if (rc < 0 && s->active && s->active->wbuf_len)
		store_logf(s, STORE_LOG_ERROR,
			   "closing with %zu bytes of acknowledged records of segment %06u that "
			   "could not be written (%s): they are lost",
			   s->active->wbuf_len, s->active->id, strerror(-rc));
	free_store(s);
	return rc;
}
