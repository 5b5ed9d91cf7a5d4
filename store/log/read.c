/*
 * read - the read path of store_get, store_read and store_stat. The one idea:
 * a reader copies a record's place out of the keydir under the read lock,
 * takes a reference on its segment, and reads with no lock held (from the
 * mapping, by pread, or from the append buffer for bytes not yet written),
 * verifying the record's checksum on every read. A value whose reader checks
 * it by a hash of its own (a chunk, by its id) is not hashed twice: its
 * header and key are checked against the header's value hash instead. An object whose expiry time
 * has passed reads as absent and is replaced by its expiry tombstone there
 * and then (expire.c). Record format: docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash_i.h"
#include "store_i.h"

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
		store_index_meta(e, m);
		*len = e->len;
		if (m->tombstone) {
			rc = -ENOENT;
		} else {
			*seg = store_table_get(s, e->seg);
			if (*seg)
				store_segment_ref(*seg);
			else
				rc = -EIO;
		}
	}
	pthread_rwlock_unlock(&s->lock);
	return rc;
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
		rc = store_mapread_copy(seg, off, buf, len, hash);
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

/* Reads and checks the header and key of the record the keydir gave for key
 * (len bytes in all: one read covers a header of either version and the key). */
static int read_header(struct store *s, struct store_segment *seg, const struct store_meta *m,
		       uint32_t len, const void *key, size_t klen, uint8_t *hdr,
		       struct store_rec_hdr *h)
{
	uint8_t buf[STORE_REC_HDR + STORE_KEY_MAX];
	size_t n = STORE_REC_HDR + klen < len ? STORE_REC_HDR + klen : len;
	int rc = read_at(s, seg, m->offset, buf, n, key, klen, NULL);

	if (rc < 0)
		return rc;
	if (store_rec_decode(buf, n, h) < 0 || h->key_len != klen ||
	    store_rec_hdr_len(h->version) + klen > n ||
	    memcmp(buf + store_rec_hdr_len(h->version), key, klen) != 0 ||
	    store_rec_size(h) != len || h->stamp != m->version.stamp)
		return bad_record(s, key, klen, m, "does not match the keydir");
	memcpy(hdr, buf, store_rec_hdr_len(h->version));
	return 0;
}

/* The object of the header just read has expired: it reads as absent, and
 * its tombstone replaces it. Returns -ENOENT with m describing the
 * tombstone, or STORE_STALE when a newer write came first (read again). */
static int expired(struct store *s, const void *key, size_t klen, struct store_meta *m)
{
	struct store_version v = m->version;

	if (store_expire_key(s, key, klen, &v, m) == STORE_STALE)
		return STORE_STALE;
	atomic_fetch_add(&s->get_misses, 1);
	return -ENOENT;
}

/*
 * The read path of store_get and store_read: into buf (cap bytes) when buf is
 * given, else into a new buffer of the exact size returned in *out. With
 * by_caller an uncompressed value is not hashed (store_read_content).
 */
static int fetch(struct store *s, const void *key, size_t klen, void *buf, size_t cap, void **out,
		 size_t *vlen, struct store_meta *meta, bool by_caller)
{
	struct store_meta m;
	struct store_segment *seg = NULL;
	struct store_rec_hdr h;
	uint8_t hdr[STORE_REC_HDR];
	uint8_t *dst = buf, *stored = NULL;
	uint64_t voff, stored_hash = 0;
	uint32_t len = 0;
	int rc;

	if (store_key_check(key, klen) < 0)
		return -EINVAL;
	atomic_fetch_add(&s->gets, 1);
again:
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
	if (store_is_expired(s, h.expires)) {
		store_segment_unref(seg);
		seg = NULL;
		rc = expired(s, key, klen, &m);
		if (rc == STORE_STALE)
			goto again;
		if (meta)
			*meta = m;
		return rc;
	}
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
	voff = (uint64_t)m.offset + store_rec_hdr_len(h.version) + klen;
	/* the seed of an uncompressed record's checksum is its value hash */
	by_caller = by_caller && !(h.flags & STORE_REC_ZSTD);
	uint64_t *hash = by_caller ? NULL : &stored_hash;
	rc = read_at(s, seg, voff, stored, h.stored_len, key, klen, hash);
	if (rc < 0)
		goto out;
	if (by_caller)
		stored_hash = h.value_hash;
	atomic_fetch_add(&s->read_bytes, h.stored_len);
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
		meta->attr.flags = h.client_flags;
	}
	return 0;
}

int store_get(struct store *s, const void *key, size_t klen, void **val, size_t *vlen,
	      struct store_meta *meta)
{
	return fetch(s, key, klen, NULL, 0, val, vlen, meta, false);
}

int store_read(struct store *s, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen,
	       struct store_meta *meta)
{
	if (!buf)
		return -EINVAL;
	return fetch(s, key, klen, buf, cap, NULL, vlen, meta, false);
}

int store_read_content(struct store *s, const void *key, size_t klen, void *buf, size_t cap,
		       size_t *vlen, struct store_meta *meta)
{
	if (!buf)
		return -EINVAL;
	return fetch(s, key, klen, buf, cap, NULL, vlen, meta, true);
}

int store_stat(struct store *s, const void *key, size_t klen, struct store_meta *meta)
{
	struct store_segment *seg = NULL;
	struct store_rec_hdr h;
	uint8_t hdr[STORE_REC_HDR];
	uint32_t len = 0;
	int rc;

	if (store_key_check(key, klen) < 0)
		return -EINVAL;
	do {
		rc = locate(s, key, klen, meta, &seg, &len);
		if (rc < 0)
			return rc;
		rc = read_header(s, seg, meta, len, key, klen, hdr, &h);
		store_segment_unref(seg);
		if (rc < 0)
			return rc;
		if (!store_is_expired(s, h.expires)) {
			meta->size = h.raw_len;
			meta->stored_size = h.stored_len;
			meta->attr.flags = h.client_flags;
			return 0;
		}
		rc = store_expire_key(s, key, klen, &meta->version, meta);
	} while (rc == STORE_STALE);
	return -ENOENT;
}
