/*
 * attr - attributes and content: setattr, and the chunk map that describes
 * a file's bytes (chunkmap.c). Slot i covers bytes [i MiB, (i+1) MiB); a
 * write stores its chunks first and then replaces the map here in one
 * record, so a reader sees the old file or the new one. Holes cost nothing.
 * docs/FORMAT.md ("Namespace", the inode record).
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"
#include "store/endian.h"

/* Fits in's chunk map to size and sets its size (in's map is its own). */
static void resize_map(struct meta_inode *in, uint64_t size)
{
	struct meta_map map = { in->chunks, in->nchunks, in->nchunks };

	meta_map_fit(&map, size);
	in->nchunks = map.n;
	in->size = size;
}

/* Whether in may take a size of size bytes: -EISDIR, -EINVAL (not a regular
 * file), -EFBIG. */
static int check_resize(const struct meta_inode *in, uint64_t size)
{
	if (S_ISDIR(in->mode))
		return -EISDIR;
	if (!S_ISREG(in->mode))
		return -EINVAL;
	return size > META_FILE_MAX ? -EFBIG : 0;
}

struct setattr_args {
	uint64_t ino;
	unsigned mask;
	const struct meta_inode *attr;
	struct meta_inode *out;
};

static struct timespec pick_time(struct timespec given, struct timespec now)
{
	return given.tv_nsec == UTIME_NOW ? now : given;
}

static int finish_out(struct meta *m, MDB_txn *txn, struct meta_inode *in, struct meta_inode *out)
{
	if (out) {
		meta_nlink_fill(m, txn, in);
		*out = *in;
		out->allocated = meta_map_allocated(in->chunks, in->nchunks);
		out->chunks = NULL;
		out->nchunks = in->nchunks;
		in->target = NULL;
	}
	return 0;
}

/* A chmod keeps an access ACL in step: its owner, mask (or group) and other
 * entries take the new bits, as the kernel expects of a filesystem that
 * handles ACLs. */
static int chmod_acl(struct meta *m, MDB_txn *txn, const struct meta_inode *in)
{
	uint8_t acl[META_XATTR_SIZE_MAX];
	MDB_val val;
	int rc = meta_xattr_find(m, txn, in->ino, META_ACL_ACCESS, &val);

	if (rc == -ENODATA)
		return 0;
	if (rc)
		return rc;
	if (val.mv_size > sizeof(acl) || meta_acl_chmod(memcpy(acl, val.mv_data, val.mv_size),
						       val.mv_size, in->mode) < 0)
		return 0; /* not an ACL the kernel could have set: left as it is */
	return meta_xattr_write(m, txn, in->ino, META_ACL_ACCESS, acl, val.mv_size, false);
}

static int do_setattr(struct meta *m, MDB_txn *txn, void *arg)
{
	struct setattr_args *a = arg;
	struct meta_inode in = { 0 };
	struct timespec t = meta_now();
	int rc = meta_inode_get(m, txn, a->ino, true, &in);

	if (rc)
		return rc;
	if (a->mask & META_SET_SIZE) {
		rc = check_resize(&in, a->attr->size);
		if (rc == 0 && a->attr->size != in.size) {
			resize_map(&in, a->attr->size);
			in.mtime = t;
		}
	}
	if (rc == 0 && (a->mask & META_SET_MODE)) {
		in.mode = (in.mode & S_IFMT) | (a->attr->mode & 07777);
		rc = chmod_acl(m, txn, &in);
	}
	if (rc == 0) {
		if (a->mask & META_SET_UID)
			in.uid = a->attr->uid;
		if (a->mask & META_SET_GID)
			in.gid = a->attr->gid;
		if (a->mask & META_SET_ATIME)
			in.atime = pick_time(a->attr->atime, t);
		if (a->mask & META_SET_MTIME)
			in.mtime = pick_time(a->attr->mtime, t);
		in.ctime = (a->mask & META_SET_CTIME) ? pick_time(a->attr->ctime, t) : t;
		rc = meta_inode_put(m, txn, &in);
	}
	if (rc == 0)
		finish_out(m, txn, &in, a->out);
	meta_inode_release(&in);
	return rc;
}

int meta_setattr(struct meta *m, uint64_t ino, unsigned mask, const struct meta_inode *attr,
		 struct meta_inode *out)
{
	struct setattr_args a = { ino, mask, attr, out };

	return meta_txn_write(m, do_setattr, &a);
}

struct content_args {
	uint64_t ino, size;
	const struct timespec *mtime;
	uint32_t n;
	const struct meta_chunk *chunks;
	struct meta_inode *out;
};

/* Whether chunks (n) is a map for a file of size bytes: sorted, each slot
 * once, inside the file, no longer than a slot. -EINVAL, -EFBIG. */
static int check_map(const struct meta_chunk *chunks, uint32_t n, uint64_t size)
{
	uint64_t slots = (size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;

	for (uint32_t i = 0; i < n; i++) {
		if ((i && chunks[i].idx <= chunks[i - 1].idx) || chunks[i].len > META_CHUNK_SIZE)
			return -EINVAL;
		if (chunks[i].idx >= slots)
			return -EFBIG;
	}
	return 0;
}

static int do_set_content(struct meta *m, MDB_txn *txn, void *arg)
{
	struct content_args *a = arg;
	struct meta_inode in = { 0 };
	struct timespec t = meta_now();
	struct meta_map map = { 0 };
	int rc = meta_inode_get(m, txn, a->ino, false, &in);

	if (rc)
		return rc;
	rc = check_resize(&in, a->size);
	if (rc == 0)
		rc = check_map(a->chunks, a->n, a->size);
	if (rc == 0)
		rc = meta_map_copy(&map, a->chunks, a->n);
	if (rc == 0) {
		meta_map_fit(&map, a->size); /* the last slot clipped to the size */
		in.chunks = map.v;
		in.nchunks = map.n;
		in.size = a->size;
		in.mtime = in.ctime = t;
		if (a->mtime)
			in.mtime = *a->mtime;
		rc = meta_inode_put(m, txn, &in);
	}
	if (rc == 0)
		finish_out(m, txn, &in, a->out);
	meta_inode_release(&in);
	return rc;
}

int meta_set_content(struct meta *m, uint64_t ino, uint64_t size, const struct timespec *mtime,
		     const struct meta_chunk *chunks, uint32_t n, struct meta_inode *out)
{
	struct content_args a = { ino, size, mtime, n, chunks, out };

	if (n && !chunks)
		return -EINVAL;
	return meta_txn_write(m, do_set_content, &a);
}

struct contents_args {
	struct meta_content *items;
	size_t n;
};

static int do_set_contents(struct meta *m, MDB_txn *txn, void *arg)
{
	struct contents_args *a = arg;

	for (size_t i = 0; i < a->n; i++) {
		struct meta_content *c = &a->items[i];
		struct content_args one = { c->ino, c->size, c->mtime, c->n, c->chunks, NULL };
		c->rc = do_set_content(m, txn, &one);
		if (c->rc == 0 && c->jseq) {
			uint8_t v[8];
			put_le64(v, c->jseq);
			c->rc = meta_u64_put(txn, m->folded, c->ino, v, sizeof(v));
			if (c->rc)
				return c->rc;
		}
		/* one file's own failure leaves the others to commit; a failure of
		 * the database (full, damaged) ends the transaction */
		if (c->rc && c->rc != -ENOENT && c->rc != -EISDIR && c->rc != -EINVAL &&
		    c->rc != -EFBIG)
			return c->rc;
	}
	return 0;
}

int meta_set_contents(struct meta *m, struct meta_content *items, size_t n)
{
	struct contents_args a = { items, n };

	for (size_t i = 0; i < n; i++)
		if (items[i].n && !items[i].chunks)
			return -EINVAL;
	return meta_txn_write(m, do_set_contents, &a);
}
