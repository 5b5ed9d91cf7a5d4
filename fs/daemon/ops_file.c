/*
 * ops_file - the operations on a file's content: setattr (a size, and times
 * with writes still buffered), open and create, read and write, flush and
 * release, copy_file_range, lseek, fsync. They go through the file states of
 * file.c; a request holds its state's reference for as long as it runs.
 * Why files are not opened per descriptor: docs/DESIGN-NOTES.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* SEEK_DATA, SEEK_HOLE */
#include <stdlib.h>
#include <string.h>

#include "ops_i.h"

/* The state a request on ino works on: its handle's (a created file), or
 * one taken for the request; drop it with put_file. */
static int get_file(struct fs *fs, fuse_ino_t ino, const struct fuse_file_info *fi,
		    struct fs_file **f)
{
	if (fi && fi->fh) {
		*f = (struct fs_file *)(uintptr_t)fi->fh;
		return 0;
	}
	return fs_file_get(fs, ino, f);
}

static void put_file(struct fs *fs, const struct fuse_file_info *fi, struct fs_file *f)
{
	if (!(fi && fi->fh))
		fs_file_put(fs, f);
}

static int do_setattr(fuse_req_t req, struct fs *fs, fuse_ino_t ino, struct stat *attr,
		      int to_set, struct fuse_file_info *fi, struct meta_inode *out)
{
	struct meta_inode a = { 0 };
	unsigned mask = 0;
	int rc = 0;

	struct fs_file *pending = fs_file_find(fs, ino); /* buffered writes */
	if (to_set & FUSE_SET_ATTR_SIZE) {
		struct fs_file *f;

		rc = get_file(fs, ino, fi, &f);
		if (rc == 0) {
			struct meta_inode in = { 0 };
			rc = meta_getattr(fs->meta, ino, false, &in);
			if (rc == 0 && !S_ISREG(in.mode))
				rc = S_ISDIR(in.mode) ? -EISDIR : -EINVAL;
			meta_inode_release(&in);
			if (rc == 0)
				rc = fs_file_truncate(fs, f, (uint64_t)attr->st_size, NULL);
			put_file(fs, fi, f);
		}
		if (rc)
			goto out;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		mask |= META_SET_MODE;
		a.mode = attr->st_mode;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		mask |= META_SET_UID;
		a.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		mask |= META_SET_GID;
		a.gid = attr->st_gid;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		mask |= META_SET_ATIME;
		a.atime = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			a.atime.tv_nsec = UTIME_NOW;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		mask |= META_SET_MTIME;
		a.mtime = attr->st_mtim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			a.mtime.tv_nsec = UTIME_NOW;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		mask |= META_SET_CTIME;
		a.ctime = attr->st_ctim;
	}
	/* an mtime set after an fsync must not be undone by its journal
	 * record's after a crash: that record is committed first */
	if ((mask & META_SET_MTIME) && pending)
		rc = fs_file_unjournal(fs, pending);
	if (rc == 0 && mask && pending)
		rc = fs_file_setattr(fs, pending, mask, &a);
	else if (mask)
		rc = meta_setattr(fs->meta, ino, mask, &a, NULL);
	/* KILLPRIV_V2: a truncation by a caller without CAP_FSETID (the flag), or a chown */
	if (rc == 0 && fs_session_killpriv_v2() && !(to_set & FUSE_SET_ATTR_MODE) &&
	    (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)))
		rc = fs_killpriv(fs, req, ino,
				 !(to_set & FUSE_SET_ATTR_KILL_SUID) && fuse_req_ctx(req)->uid == 0,
				 false);
	if (rc == 0)
		rc = meta_getattr(fs->meta, ino, false, out);
out:
	if (pending)
		fs_file_put(fs, pending);
	return rc;
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	struct meta_inode in = { 0 };
	int rc = fs_health_ino(ino) ? -EPERM : do_setattr(req, fs_of(req), ino, attr, to_set, fi, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fs_ops_reply_attr(req, &in);
	meta_inode_release(&in);
}

/*
 * Files are not opened per descriptor: the kernel is told to send no OPEN
 * (and no RELEASE) for them, keeps their cached pages across opens, and
 * requests on them carry no handle (see file.c). Replicated changes
 * invalidate those pages (invalidate.c). Only a kernel without that support
 * gets a handle here, and its cached pages are dropped at each open.
 */
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_file *f;
	int rc;

	if (fs_health_ino(ino)) {
		fs_health_open(req, ino, fi);
		return;
	}
	if (fs_of(req)->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	rc = fs_file_get(fs_of(req), ino, &f);
	/* that kernel leaves O_TRUNC to us (atomic O_TRUNC): it moves mtime and ctime */
	if (rc == 0 && (fi->flags & O_TRUNC)) {
		rc = fs_file_truncate(fs_of(req), f, 0, NULL);
		if (rc)
			fs_file_put(fs_of(req), f);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fi->fh = (uintptr_t)f;
	/* a read-only descriptor cannot leave anything to commit at close */
	fi->noflush = (fi->flags & O_ACCMODE) == O_RDONLY;
	if (fuse_reply_open(req, fi) != 0)
		fs_file_close(fs_of(req), f);
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct meta_inode in = { 0 };
	struct fuse_entry_param e;
	struct fs_file *f = NULL;
	int rc;

	/* Without OPEN the kernel sends no RELEASE, but it learns that only
	 * from an OPEN answered ENOSYS, and a created file is never opened: on
	 * a fresh mount every create + close would cost a RELEASE. Answered
	 * ENOSYS, CREATE turns into MKNOD and an open of the new file, for
	 * this create and every later one: the same requests, and the first
	 * open teaches the kernel. */
	if (fs->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	rc = fs_ops_make(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, &in);
	if (rc == 0)
		rc = fs_file_get(fs, in.ino, &f);
	if (rc) {
		fuse_reply_err(req, -rc);
		meta_inode_release(&in);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = in.ino;
	e.attr_timeout = e.entry_timeout = fs->timeout;
	fs_ops_fill_stat(fs, &in, &e.attr);
	meta_inode_release(&in);
	fi->fh = (uintptr_t)f;
	fs_ops_count_lookup(fs, in.ino);
	if (fuse_reply_create(req, &e, fi) != 0 && f)
		fs_file_close(fs, f);
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char *ring, *buf;
	struct fs_file *f;
	ssize_t n;

	if (fs_health_ino(ino)) {
		fs_health_read(req, ino, size, off);
		return;
	}
	ring = fs_session_reply_buffer(size); /* io_uring: no copy of the answer */
	buf = ring ? ring : malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = get_file(fs, ino, fi, &f);
	if (n == 0) {
		n = fs_file_read(fs, f, buf, size, (uint64_t)off);
		put_file(fs, fi, f);
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	if (!ring)
		free(buf);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f;
	ssize_t n = fs_health_ino(ino) ? -EPERM : get_file(fs, ino, fi, &f);

	if (n == 0) {
		n = fs_file_write(fs, f, buf, size, (uint64_t)off);
		put_file(fs, fi, f);
	}
	if (n > 0 && fs_session_request_kills_suidgid())
		fs_killpriv(fs, req, ino, false, true); /* KILLPRIV_V2: no CAP_FSETID */
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * With no OPEN there is no per-descriptor state to complete at close, and a
 * FLUSH at every close (read-only ones too) would cost a round trip each:
 * the first one commits and answers ENOSYS, and the kernel sends no more.
 * Buffered writes are committed by a rename or truncation, FORGET, or the
 * committer (file.c), and made durable by fsync (file_sync.c), which
 * reports a failed commit.
 */
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	int rc = 0;

	(void)ino;
	if (fi->fh)
		rc = fs_file_commit(fs, (struct fs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, rc ? -rc : fs->no_open ? ENOSYS : 0);
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fi->fh)
		fuse_reply_err(req,
			       -fs_file_close(fs_of(req), (struct fs_file *)(uintptr_t)fi->fh));
	else
		fuse_reply_err(req, 0);
}

void fs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			   struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct fs *fs = fs_of(req);
	struct fs_file *in, *out;
	ssize_t n = -EINVAL;

	if (flags == 0 && (n = get_file(fs, ino_in, fi_in, &in)) == 0) {
		n = get_file(fs, ino_out, fi_out, &out);
		if (n == 0) {
			n = fs_file_copy(fs, in, (uint64_t)off_in, out, (uint64_t)off_out, len);
			put_file(fs, fi_out, out);
		}
		put_file(fs, fi_in, in);
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	struct fs_file *f;
	int64_t r;

	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	r = get_file(fs_of(req), ino, fi, &f);
	if (r == 0) {
		r = fs_file_seek(f, (uint64_t)off, whence);
		put_file(fs_of(req), fi, f);
	}
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, (off_t)r);
}

/* fs_file_fsync: the file's writes through the fsync journal when it can
 * take them; with no state, what was committed is synced (log first). */
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = fi && fi->fh ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
	int rc;

	(void)datasync;
	if (f) {
		rc = fs_file_fsync(fs, f);
	} else if ((f = fs_file_find(fs, ino))) {
		rc = fs_file_fsync(fs, f);
		fs_file_put(fs, f);
	} else {
		rc = fs_sync_all(fs);
	}
	fuse_reply_err(req, -rc);
}

void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -fs_sync_all(fs_of(req)));
}

void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		     struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f;
	int rc = off < 0 || len <= 0 ? -EINVAL : get_file(fs, ino, fi, &f);

	if (rc == 0) {
		rc = fs_file_fallocate(fs, f, mode, (uint64_t)off, (uint64_t)len);
		put_file(fs, fi, f);
	}
	fuse_reply_err(req, -rc);
}
