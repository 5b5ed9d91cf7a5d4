/*
 * attr - attributes and content: setattr, and the chunk grid that describes
 * a file's bytes. Slot i of the grid covers bytes [i MiB, (i+1) MiB); a
 * write stores its chunks first and then replaces slots here in one record,
 * so a reader sees the old file or the new one. Holes cost nothing.
 * docs/FORMAT.md ("Namespace", the inode record).
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

uint32_t meta_grid_slots(uint64_t size)
{
	return (uint32_t)((size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE);
}

int meta_grid_fit(struct meta_chunk **grid, uint32_t *n, uint64_t size)
{
	uint32_t want = meta_grid_slots(size);

	if (want > *n) {
		struct meta_chunk *g = realloc(*grid, (size_t)want * sizeof(*g));
		if (!g)
			return -ENOMEM;
		memset(g + *n, 0, (size_t)(want - *n) * sizeof(*g));
		*grid = g;
	}
	*n = want;
	if (want) {
		uint64_t last = size - (uint64_t)(want - 1) * META_CHUNK_SIZE;
		if ((*grid)[want - 1].len > last)
			(*grid)[want - 1].len = (uint32_t)last;
	}
	return 0;
}

/* Resizes in's chunk grid for size and sets its size. */
static int resize_grid(struct meta_inode *in, uint64_t size)
{
	int rc = meta_grid_fit(&in->chunks, &in->nchunks, size);

	if (rc == 0)
		in->size = size;
	return rc;
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
		out->chunks = NULL;
		out->nchunks = in->nchunks;
		in->target = NULL;
	}
	return 0;
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
			rc = resize_grid(&in, a->attr->size);
			in.mtime = t;
		}
	}
	if (rc == 0) {
		if (a->mask & META_SET_MODE)
			in.mode = (in.mode & S_IFMT) | (a->attr->mode & 07777);
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
	uint32_t first, n;
	const struct meta_chunk *chunks;
	struct meta_inode *out;
};

static int do_set_content(struct meta *m, MDB_txn *txn, void *arg)
{
	struct content_args *a = arg;
	struct meta_inode in = { 0 };
	struct timespec t = meta_now();
	int rc = meta_inode_get(m, txn, a->ino, true, &in);

	if (rc)
		return rc;
	rc = check_resize(&in, a->size);
	if (rc == 0 && (uint64_t)a->first + a->n > meta_grid_slots(a->size))
		rc = -EFBIG;
	if (rc == 0)
		rc = resize_grid(&in, a->size);
	if (rc == 0) {
		memcpy(in.chunks + a->first, a->chunks, (size_t)a->n * sizeof(*a->chunks));
		resize_grid(&in, a->size); /* clip the last slot again */
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
		     uint32_t first, const struct meta_chunk *chunks, uint32_t n,
		     struct meta_inode *out)
{
	struct content_args a = { ino, size, mtime, first, n, chunks, out };

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
		struct content_args one = { c->ino, c->size, c->mtime, 0, c->n, c->chunks, NULL };
		c->rc = do_set_content(m, txn, &one);
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
