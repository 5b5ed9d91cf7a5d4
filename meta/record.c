/*
 * record - the bytes of the namespace: LMDB keys (big-endian, so LMDB sorts
 * them as numbers), the inode, entry and xattr values (little-endian, field
 * by field, after the 16-byte head every replicated value shares) and the
 * wire record peers exchange. No LMDB here: these are pure codecs, and the
 * decoders take their input as untrusted. Byte layouts: docs/FORMAT.md
 * ("Namespace"); the declarations: record_i.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record_i.h"
#include "store/endian.h"

uint64_t meta_name_pos(const char *name, size_t len)
{
	return (store_key_hash(name, len) >> 2) + 4;
}

void meta_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

uint64_t meta_get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

size_t meta_key_dirent(uint8_t *key, uint64_t parent, const char *name, size_t len)
{
	meta_be64(key, parent);
	meta_be64(key + 8, meta_name_pos(name, len));
	memcpy(key + 16, name, len);
	return 16 + len;
}

size_t meta_key_xattr(uint8_t *key, uint64_t ino, const char *name, size_t len)
{
	meta_be64(key, ino);
	memcpy(key + 8, name, len);
	return 8 + len;
}

void meta_head_encode(uint8_t out[META_HEAD_SIZE], const struct store_version *v, bool deleted)
{
	out[0] = META_REC_VERSION;
	out[1] = deleted ? META_REC_DELETED : 0;
	out[2] = out[3] = 0;
	put_le32(out + 4, v->node);
	put_le64(out + 8, v->stamp);
}

int meta_head_decode(const uint8_t *p, size_t len, struct store_version *v, bool *deleted)
{
	/* an inode record says 2 since its chunk map went sparse; the head is the same */
	if (len < META_HEAD_SIZE || (p[0] != META_REC_VERSION && p[0] != META_INODE_VERSION))
		return -EBADMSG;
	if (deleted)
		*deleted = p[1] & META_REC_DELETED;
	v->node = get_le32(p + 4);
	v->stamp = get_le64(p + 8);
	return 0;
}

void meta_wire_encode(uint8_t *out, uint8_t table, const void *key, size_t klen, const void *val,
		      size_t vlen)
{
	out[0] = table;
	put_le16(out + 1, (uint16_t)klen);
	memcpy(out + META_WIRE_HEAD, key, klen);
	memcpy(out + META_WIRE_HEAD + klen, val, vlen);
}

static void put_time(uint8_t *p, const struct timespec *t)
{
	put_le64(p, (uint64_t)t->tv_sec);
	put_le32(p + 8, (uint32_t)t->tv_nsec);
}

static void get_time(const uint8_t *p, struct timespec *t)
{
	t->tv_sec = (time_t)(int64_t)get_le64(p);
	t->tv_nsec = (long)get_le32(p + 8);
}

/* The bytes of a map's reserved slots (fallocate without data yet). */
static uint64_t reserved_bytes(const struct meta_chunk *v, uint32_t n)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++)
		if (meta_chunk_reserved(&v[i]))
			sum += meta_map_allocated(&v[i], 1);
	return sum;
}

uint64_t meta_inode_reserved(const uint8_t *p, size_t len)
{
	return len >= META_INODE_FIXED && p[0] == META_INODE_VERSION
		   ? (uint64_t)get_le32(p + 80) * META_BLOCK
		   : 0;
}

uint8_t *meta_inode_encode(const struct meta_inode *in, bool deleted, size_t *len)
{
	size_t tlen = in->target ? strlen(in->target) : 0;
	bool reg = S_ISREG(in->mode); /* only files have a content lineage */
	size_t n = META_INODE_FIXED + tlen + 4 + (size_t)in->nchunks * META_INODE_SLOT +
		   (reg ? META_LINEAGE_SIZE : 0);
	uint8_t *p = malloc(n), *q;

	if (!p)
		return NULL;
	meta_head_encode(p, &in->version, deleted);
	p[0] = META_INODE_VERSION;
	put_le32(p + 16, in->mode);
	put_le32(p + 20, in->uid);
	put_le32(p + 24, in->gid);
	put_le32(p + 28, in->rdev);
	put_le64(p + 32, in->size);
	put_time(p + 40, &in->atime);
	put_time(p + 52, &in->mtime);
	put_time(p + 64, &in->ctime);
	put_le32(p + 76, (uint32_t)tlen);
	put_le32(p + 80, (uint32_t)(reserved_bytes(in->chunks, in->nchunks) / META_BLOCK));
	put_le64(p + 84, meta_map_allocated(in->chunks, in->nchunks));
	q = p + META_INODE_FIXED;
	if (tlen)
		memcpy(q, in->target, tlen);
	q += tlen;
	put_le32(q, in->nchunks);
	q += 4;
	for (uint32_t i = 0; i < in->nchunks; i++, q += META_INODE_SLOT) {
		put_le32(q, in->chunks[i].idx);
		put_le32(q + 4, in->chunks[i].len);
		memcpy(q + 8, in->chunks[i].key, META_CHUNK_KEY);
	}
	if (reg)
		meta_lineage_encode(&in->lineage, q);
	*len = n;
	return p;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/*
 * The chunk map of a record: version 2 lists its slots (le32 idx, le32 len,
 * key), sorted; version 1 had a dense grid of (key, le32 len), a zero key
 * for a hole, which becomes the map of its stored slots. n counts the
 * record's entries (the grid's slots for version 1); *out how many are
 * kept, into map (NULL: count only). -EBADMSG for a map out of order or
 * with a slot past size.
 */
static int decode_map(const uint8_t *q, uint32_t n, int version, uint64_t size,
		      struct meta_chunk *map, uint32_t *out, uint64_t *allocated)
{
	uint64_t slots = (size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
	uint32_t kept = 0;
	int64_t prev = -1;

	*allocated = 0;
	for (uint32_t i = 0; i < n; i++) {
		struct meta_chunk c;

		if (version == META_INODE_VERSION) {
			const uint8_t *e = q + (size_t)i * META_INODE_SLOT;
			c.idx = get_le32(e);
			c.len = get_le32(e + 4);
			memcpy(c.key, e + 8, META_CHUNK_KEY);
			if ((int64_t)c.idx <= prev)
				return -EBADMSG;
		} else {
			const uint8_t *e = q + (size_t)i * META_INODE_SLOT_V1;
			if (all_zero(e, META_CHUNK_KEY))
				continue; /* a hole */
			c.idx = i;
			c.len = get_le32(e + META_CHUNK_KEY);
			memcpy(c.key, e, META_CHUNK_KEY);
		}
		if (c.idx >= slots || c.len > META_CHUNK_SIZE)
			return -EBADMSG;
		*allocated += meta_map_allocated(&c, 1);
		prev = c.idx;
		if (map)
			map[kept] = c;
		kept++;
	}
	*out = kept;
	return 0;
}

int meta_inode_decode(const uint8_t *p, size_t len, bool with_chunks, struct meta_inode *in)
{
	uint32_t tlen, n;
	int version = len ? p[0] : 0;
	size_t fixed = version == META_INODE_VERSION ? META_INODE_FIXED : META_INODE_FIXED_V1;
	size_t slot = version == META_INODE_VERSION ? META_INODE_SLOT : META_INODE_SLOT_V1;
	const uint8_t *q;
	int rc;

	if (len < fixed + 4 || meta_head_decode(p, len, &in->version, NULL) < 0)
		return -EBADMSG;
	in->mode = get_le32(p + 16);
	in->uid = get_le32(p + 20);
	in->gid = get_le32(p + 24);
	in->rdev = get_le32(p + 28);
	in->size = get_le64(p + 32);
	get_time(p + 40, &in->atime);
	get_time(p + 52, &in->mtime);
	get_time(p + 64, &in->ctime);
	tlen = get_le32(p + 76);
	if (tlen > META_SYMLINK_MAX || len - fixed - 4 < tlen || in->size > META_FILE_MAX)
		return -EBADMSG;
	q = p + fixed + tlen;
	n = get_le32(q);
	if ((len - fixed - 4 - tlen) / slot < n)
		return -EBADMSG;
	q += 4;
	in->target = NULL;
	in->chunks = NULL;
	/* the lineage follows the chunk map; a record without it (or with bytes
	 * this version does not know) has none */
	memset(&in->lineage, 0, sizeof(in->lineage));
	size_t end = fixed + tlen + 4 + (size_t)n * slot;
	if (len - end == META_LINEAGE_SIZE)
		meta_lineage_decode(p + end, &in->lineage);
	if (version == META_INODE_VERSION && !with_chunks) {
		/* the count and the allocation are in the record: no walk */
		in->nchunks = n;
		in->allocated = get_le64(p + 84);
	} else {
		if (with_chunks && n) {
			in->chunks = malloc((size_t)n * sizeof(*in->chunks));
			if (!in->chunks)
				return -ENOMEM;
		}
		rc = decode_map(q, n, version, in->size, in->chunks, &in->nchunks, &in->allocated);
		if (rc < 0) {
			free(in->chunks);
			in->chunks = NULL;
			return rc;
		}
	}
	if (tlen) {
		in->target = malloc(tlen + 1);
		if (!in->target) {
			free(in->chunks);
			in->chunks = NULL;
			return -ENOMEM;
		}
		memcpy(in->target, p + fixed, tlen);
		in->target[tlen] = '\0';
	}
	return 0;
}

static void put_version(uint8_t *p, const struct store_version *v)
{
	put_le64(p, v->stamp);
	put_le32(p + 8, v->node);
}

static void get_version(const uint8_t *p, struct store_version *v)
{
	v->stamp = get_le64(p);
	v->node = get_le32(p + 8);
}

void meta_lineage_encode(const struct meta_lineage *l, uint8_t out[META_LINEAGE_SIZE])
{
	put_version(out, &l->content);
	put_version(out + 12, &l->run);
	for (int i = 0; i < 2; i++) {
		put_version(out + 24 + 24 * i, &l->prev_run[i]);
		put_version(out + 36 + 24 * i, &l->prev_last[i]);
	}
}

void meta_lineage_decode(const uint8_t in[META_LINEAGE_SIZE], struct meta_lineage *l)
{
	get_version(in, &l->content);
	get_version(in + 12, &l->run);
	for (int i = 0; i < 2; i++) {
		get_version(in + 24 + 24 * i, &l->prev_run[i]);
		get_version(in + 36 + 24 * i, &l->prev_last[i]);
	}
}

void meta_dirent_encode(const struct meta_dirent *d, uint8_t out[META_DIRENT_SIZE])
{
	meta_head_encode(out, &d->version, d->deleted);
	out[0] = META_DIRENT_VERSION;
	put_le16(out + 2, (uint16_t)(d->type >> 12));
	put_le64(out + 16, d->child);
	put_version(out + 24, &d->prev);
	put_version(out + 36, &d->origin);
}

int meta_dirent_decode(const uint8_t *p, size_t len, struct meta_dirent *d)
{
	/* version 2 is 48 bytes; version 1 was 36 (or 24, before prev) */
	bool v2 = len > 0 && p[0] == META_DIRENT_VERSION;
	if (v2 ? len != META_DIRENT_SIZE : len != META_DIRENT_V1_SIZE && len != META_DIRENT_V0_SIZE)
		return -EBADMSG;
	if (meta_head_decode(p, len, &d->version, &d->deleted) < 0)
		return -EBADMSG;
	d->type = (uint32_t)get_le16(p + 2) << 12;
	d->child = get_le64(p + 16);
	memset(&d->prev, 0, sizeof(d->prev));
	memset(&d->origin, 0, sizeof(d->origin));
	if (len >= META_DIRENT_V1_SIZE)
		get_version(p + 24, &d->prev);
	if (len == META_DIRENT_SIZE)
		get_version(p + 36, &d->origin);
	return 0;
}

struct store_version meta_dirent_binding(const struct meta_dirent *d)
{
	return d->origin.stamp || d->origin.node ? d->origin : d->version;
}

void meta_inode_release(struct meta_inode *in)
{
	if (!in)
		return;
	free(in->target);
	free(in->chunks);
	in->target = NULL;
	in->chunks = NULL;
}
