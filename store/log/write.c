/*
 * write - the one write path behind store_put, store_delete, store_apply and
 * store_repair. The one idea: a record is appended (under write_mu) before the
 * keydir points at it (under the rwlock), and a version given by a peer is
 * checked against the keydir under write_mu, so no other write can slip in
 * between the check and the append. Version rule: the higher (stamp, node)
 * wins. Every record is written in the current format (version 2, with the
 * client's flags and expiry time). Record format: docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash_i.h"
#include "store_i.h"
#include "../endian.h"
#include "../xxh_i.h"

/* store_write_record, and store_put_hashed when known_hash is given (the
 * value's xxh3-64, computed by the caller). */
static int write_record(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
			const struct store_version *version, bool tombstone,
			const struct store_attr *attr, unsigned how, struct store_meta *meta,
			const uint64_t *known_hash)
{
	bool must_exist = how & STORE_WRITE_MUST_EXIST, equal_ok = how & STORE_WRITE_EQUAL_OK;
	struct store_rec_hdr h = { 0 };
	uint8_t hdr[STORE_REC_HDR];
	uint64_t hash, through;
	const void *stored = val;
	void *cbuf = NULL;
	size_t clen = 0;
	uint32_t seg_id = 0, off = 0;
	int rc = 0;

	if (store_key_check(key, klen) < 0 || vlen > STORE_VALUE_MAX ||
	    (vlen && !val && !tombstone) ||
	    (version && !tombstone && (version->node & STORE_EXPIRY_NODE)))
		return -EINVAL;
	if (tombstone)
		vlen = 0;
	if (attr && !tombstone) {
		h.client_flags = attr->flags;
		h.expires = attr->expires;
	}
	hash = store_key_hash(key, klen);
	h.version = STORE_REC_VERSION;
	h.key_len = (uint16_t)klen;
	h.raw_len = (uint32_t)vlen;
	h.stored_len = (uint32_t)vlen;
	if (tombstone) {
		h.flags = STORE_REC_TOMBSTONE;
	} else {
		h.value_hash = known_hash ? *known_hash : store_hash_bulk(val, vlen);
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
		int ir = store_index_record(s, hash, key, &h, seg_id, off,
					    (uint32_t)store_rec_size(&h), true);
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
		meta->attr.flags = h.client_flags;
		meta->attr.expires = h.expires;
	}
	return rc;
}

int store_write_record(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		       const struct store_version *version, bool tombstone,
		       const struct store_attr *attr, unsigned how, struct store_meta *meta)
{
	return write_record(s, key, klen, val, vlen, version, tombstone, attr, how, meta, NULL);
}

int store_put_hashed(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		     uint64_t value_hash, struct store_meta *meta)
{
	return write_record(s, key, klen, val, vlen, NULL, false, NULL, 0, meta, &value_hash);
}

int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
	      struct store_meta *meta)
{
	return store_write_record(s, key, klen, val, vlen, NULL, false, NULL, 0, meta);
}

int store_put_attr(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		   const struct store_attr *attr, struct store_meta *meta)
{
	return store_write_record(s, key, klen, val, vlen, NULL, false, attr, 0, meta);
}

int store_delete(struct store *s, const void *key, size_t klen, struct store_meta *meta)
{
	return store_write_record(s, key, klen, NULL, 0, NULL, true, NULL, STORE_WRITE_MUST_EXIST,
				  meta);
}

int store_apply_attr(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		     const struct store_version *version, bool tombstone,
		     const struct store_attr *attr)
{
	if (!version)
		return -EINVAL;
	return store_write_record(s, key, klen, val, vlen, version, tombstone, attr, 0, NULL);
}

int store_apply(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		const struct store_version *version, bool tombstone)
{
	return store_apply_attr(s, key, klen, val, vlen, version, tombstone, NULL);
}

int store_repair_attr(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		      const struct store_version *version, bool tombstone,
		      const struct store_attr *attr)
{
	if (!version)
		return -EINVAL;
	return store_write_record(s, key, klen, val, vlen, version, tombstone, attr,
				  STORE_WRITE_EQUAL_OK, NULL);
}

int store_repair(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		 const struct store_version *version, bool tombstone)
{
	return store_repair_attr(s, key, klen, val, vlen, version, tombstone, NULL);
}
