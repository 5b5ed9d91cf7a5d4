/*
 * ops_entry - what the kernel is told of an inode: its attributes, which
 * count writes a file state holds that the namespace has not seen yet, and
 * its entry, each one handed out counted as a lookup the kernel holds
 * (nlookup.c) until it forgets it. Also the creation of a new entry, which
 * every operation that makes one shares.
 */
#include <stdio.h>
#include <string.h>

#include "ops_i.h"

static bool timespec_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

double fs_ops_timeout(struct fs *fs)
{
	return fs_session_request_raced() ? 0 : fs->timeout;
}

void fs_ops_fill_stat(struct fs *fs, const struct meta_inode *in, struct stat *st)
{
	struct timespec mtime;
	uint64_t size;
	/* a state is newer than what the namespace said a moment ago (it may
	 * have committed meanwhile) */
	bool state = S_ISREG(in->mode) && fs_file_peek(fs, in->ino, &size, &mtime);

	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)(state ? size : in->size);
	st->st_blksize = META_CHUNK_SIZE;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
	if (state && mtime.tv_nsec != UTIME_OMIT) { /* a write not in the namespace yet */
		if (timespec_after(mtime, in->mtime))
			st->st_mtim = mtime;
		if (timespec_after(mtime, in->ctime))
			st->st_ctim = mtime;
	}
}

/* Before the kernel is handed an entry for ino: one more lookup it holds.
 * Without memory for the count, its FORGET finds none and lets go at once,
 * as before counts were kept. */
void fs_ops_count_lookup(struct fs *fs, uint64_t ino)
{
	if (fs_nlookup_add(&fs->lookups, ino) < 0)
		fprintf(stderr, "caskfs: inode %llu: out of memory for its lookup count\n",
			(unsigned long long)ino);
}

void fs_ops_reply_entry(fuse_req_t req, const struct meta_inode *in)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = in->ino;
	e.attr_timeout = e.entry_timeout = fs_ops_timeout(fs);
	fs_ops_fill_stat(fs, in, &e.attr);
	fs_ops_count_lookup(fs, in->ino);
	fuse_reply_entry(req, &e);
}

void fs_ops_reply_attr(fuse_req_t req, const struct meta_inode *in)
{
	struct stat st;

	fs_ops_fill_stat(fs_of(req), in, &st);
	fuse_reply_attr(req, &st, fs_ops_timeout(fs_of(req)));
}

/* Replies an entry for in, or the error; releases in. */
void fs_ops_finish_entry(fuse_req_t req, int rc, struct meta_inode *in)
{
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fs_ops_reply_entry(req, in);
	meta_inode_release(in);
}

int fs_ops_make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		const char *target, struct meta_inode *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return meta_mknod(fs_of(req)->meta, parent, name, mode, ctx->uid, ctx->gid, (uint32_t)rdev,
			  target, out);
}
