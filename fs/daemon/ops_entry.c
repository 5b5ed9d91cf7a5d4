/*
 * ops_entry - what the kernel is told of an inode: its attributes, which
 * count writes a file state holds that the namespace has not seen yet, and
 * its entry, each one handed out counted as a lookup the kernel holds
 * (nlookup.c) until it forgets it. Also the creation of a new entry, which
 * every operation that makes one shares.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ops_i.h"

static bool timespec_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

void fs_ops_fill_stat(struct fs *fs, const struct meta_inode *in, struct stat *st)
{
	struct timespec mtime;
	uint64_t size, allocated = in->allocated;
	struct meta_inode now = { 0 };
	/* a state is newer than what the namespace said a moment ago (it may
	 * have committed meanwhile) */
	bool state = S_ISREG(in->mode) && fs_file_peek(fs, in->ino, &size, &allocated, &mtime);

	/*
	 * No state now, but in was read before the last commit: a state that
	 * held newer writes may have committed and gone between that read and
	 * the peek. The kernel would take in's older size as the newest (the
	 * writes were answered before it asked) and cut its cached pages to
	 * it; read again, which sees every commit of a state already dropped.
	 */
	if (S_ISREG(in->mode) && !state && in->snapshot &&
	    in->snapshot < meta_last_txn(fs->meta) && meta_getattr(fs->meta, in->ino, false, &now) == 0)
		in = &now;
	if (in == &now)
		allocated = now.allocated;
	memset(st, 0, sizeof(*st));
	st->st_ino = in->ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = (off_t)(state ? size : in->size);
	st->st_blksize = META_CHUNK_SIZE;
	/* a file counts what its slots hold (holes nothing); others their size */
	st->st_blocks = S_ISREG(in->mode) ? (blkcnt_t)(allocated / 512) : (st->st_size + 511) / 512;
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
	if (state && mtime.tv_nsec != UTIME_OMIT) { /* a write not in the namespace yet */
		if (timespec_after(mtime, in->mtime))
			st->st_mtim = mtime;
		if (timespec_after(mtime, in->ctime))
			st->st_ctim = mtime;
	}
	meta_inode_release(&now);
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
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	fs_ops_fill_stat(fs, in, &e.attr);
	fs_ops_count_lookup(fs, in->ino);
	fuse_reply_entry(req, &e);
}

void fs_ops_reply_attr(fuse_req_t req, const struct meta_inode *in)
{
	struct stat st;

	fs_ops_fill_stat(fs_of(req), in, &st);
	fuse_reply_attr(req, &st, fs_of(req)->timeout);
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
	/* with FUSE_CAP_DONT_MASK the kernel leaves the umask to us: a default
	 * ACL of the parent replaces it (meta_mknod) */
	uint32_t umask = fs_of(req)->dont_mask ? (uint32_t)ctx->umask : 0;

	if (fs_health_reserved(parent, name)) /* /.caskfs is taken (ops_health.c) */
		return -EEXIST;
	return meta_mknod(fs_of(req)->meta, parent, name, mode, umask, ctx->uid, ctx->gid,
			  (uint32_t)rdev, target, out);
}
