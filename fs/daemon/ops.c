/*
 * ops - the FUSE low-level operations. Each request is a do_x() that returns
 * 0 or a negative errno and fills what the reply needs; the wrapper sends
 * exactly one fuse_reply_* for it. Names and attributes come from the
 * namespace (meta/), bytes from open-file states (file.c) over chunks.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h> /* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include <sys/statvfs.h>

#include "daemon_i.h"
#include "ops_i.h"

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static bool timespec_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

static void fill_stat(struct fs *fs, const struct meta_inode *in, struct stat *st)
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
static void count_lookup(struct fs *fs, uint64_t ino)
{
	if (fs_nlookup_add(&fs->lookups, ino) < 0)
		fprintf(stderr, "caskfs: inode %llu: out of memory for its lookup count\n",
			(unsigned long long)ino);
}

static void reply_entry(fuse_req_t req, const struct meta_inode *in)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = in->ino;
	e.attr_timeout = fs->timeout;
	e.entry_timeout = fs->timeout;
	fill_stat(fs, in, &e.attr);
	count_lookup(fs, in->ino);
	fuse_reply_entry(req, &e);
}

static void reply_attr(fuse_req_t req, const struct meta_inode *in)
{
	struct stat st;

	fill_stat(fs_of(req), in, &st);
	fuse_reply_attr(req, &st, fs_of(req)->timeout);
}

/* Replies an entry for in, or the error; releases in. */
static void finish_entry(fuse_req_t req, int rc, struct meta_inode *in)
{
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_entry(req, in);
	meta_inode_release(in);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* cached pages stay until this mount or a replicated change drops them
	 * (op_open): no attribute round trip at every open */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	fs->no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;
	/* no OPEN carries O_TRUNC to us: the kernel sends it as a SETATTR */
	if (fs->no_open)
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* Off unless asked for: with it every close drops the inode's block
	 * count, so nginx's fstat after each open costs a GETATTR round trip
	 * (0.38x of native against 1.0x); see docs/DESIGN-NOTES.md. */
	if (fs->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = META_CHUNK_SIZE;
	conn->max_readahead = META_CHUNK_SIZE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct meta_inode in = { 0 };
	int rc = meta_lookup(fs_of(req)->meta, parent, name, &in);

	if (rc == -ENOENT) {
		/* a negative entry the kernel may keep: names created or renamed
		 * through this mount replace it themselves */
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_of(req)->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	finish_entry(req, rc, &in);
}

static void forget_one(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	/* once the kernel holds no lookup (and so no descriptor) of it, writes
	 * still buffered are committed, and an unlinked inode goes */
	if (fs_nlookup_forget(&fs->lookups, ino, nlookup) && fs_file_forget(fs, ino))
		meta_forget(fs->meta, ino);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct meta_inode in = { 0 };
	int rc = meta_getattr(fs_of(req)->meta, ino, false, &in);

	(void)fi;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_attr(req, &in);
	meta_inode_release(&in);
}

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

static int do_setattr(struct fs *fs, fuse_ino_t ino, struct stat *attr, int to_set,
		      struct fuse_file_info *fi, struct meta_inode *out)
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
	if (mask && pending)
		rc = fs_file_setattr(fs, pending, mask, &a);
	else if (mask)
		rc = meta_setattr(fs->meta, ino, mask, &a, NULL);
	if (rc == 0)
		rc = meta_getattr(fs->meta, ino, false, out);
out:
	if (pending)
		fs_file_put(fs, pending);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct meta_inode in = { 0 };
	int rc = do_setattr(fs_of(req), ino, attr, to_set, fi, &in);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_attr(req, &in);
	meta_inode_release(&in);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct meta_inode in = { 0 };
	int rc = meta_getattr(fs_of(req)->meta, ino, false, &in);

	if (rc == 0 && !in.target)
		rc = -EINVAL;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, in.target);
	meta_inode_release(&in);
}

static int do_make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		   const char *target, struct meta_inode *out)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return meta_mknod(fs_of(req)->meta, parent, name, mode, ctx->uid, ctx->gid, (uint32_t)rdev,
			  target, out);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct meta_inode in = { 0 };

	finish_entry(req, do_make(req, parent, name, mode, rdev, NULL, &in), &in);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct meta_inode in = { 0 };

	finish_entry(req, do_make(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, &in), &in);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct meta_inode in = { 0 };

	finish_entry(req, do_make(req, parent, name, S_IFLNK | 0777, 0, link, &in), &in);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -meta_unlink(fs_of(req)->meta, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -meta_rmdir(fs_of(req)->meta, parent, name));
}

/*
 * Commits the buffered writes of the file parent/name, if any. A rename
 * waits for it: written to a temporary name and renamed over the target
 * (how editors and rsync replace files), the content reaches the namespace
 * and its outbox before the rename does, so no other mount sees the target
 * name lead to a file whose content has not arrived.
 */
static int commit_named(struct fs *fs, fuse_ino_t parent, const char *name)
{
	struct meta_inode in = { 0 };
	struct fs_file *f;
	int rc = meta_lookup(fs->meta, parent, name, &in);

	meta_inode_release(&in);
	if (rc)
		return rc == -ENOENT ? 0 : rc; /* the rename reports it */
	if (!(f = fs_file_find(fs, in.ino)))
		return 0;
	rc = fs_file_commit(fs, f);
	fs_file_put(fs, f);
	return rc;
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int rc = -EINVAL;

	if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) == 0 &&
	    (rc = commit_named(fs_of(req), parent, name)) == 0 &&
	    (!(flags & RENAME_EXCHANGE) || (rc = commit_named(fs_of(req), newparent, newname)) == 0))
		rc = meta_rename(fs_of(req)->meta, parent, name, newparent, newname,
				 ((flags & RENAME_NOREPLACE) ? META_RENAME_NOREPLACE : 0) |
				     ((flags & RENAME_EXCHANGE) ? META_RENAME_EXCHANGE : 0));
	fuse_reply_err(req, -rc);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct meta_inode in = { 0 };

	finish_entry(req, meta_link(fs_of(req)->meta, ino, newparent, newname, &in), &in);
}

/*
 * Files are not opened per descriptor: the kernel is told to send no OPEN
 * (and no RELEASE) for them, keeps their cached pages across opens, and
 * requests on them carry no handle (see file.c). Replicated changes
 * invalidate those pages (invalidate.c). Only a kernel without that support
 * gets a handle here, and its cached pages are dropped at each open.
 */
static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_file *f;
	int rc;

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

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
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
	rc = do_make(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, &in);
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
	fill_stat(fs, &in, &e.attr);
	meta_inode_release(&in);
	fi->fh = (uintptr_t)f;
	count_lookup(fs, in.ino);
	if (fuse_reply_create(req, &e, fi) != 0 && f)
		fs_file_close(fs, f);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char *buf = malloc(size ? size : 1);
	struct fs_file *f;
	ssize_t n;

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
	free(buf);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f;
	ssize_t n = get_file(fs, ino, fi, &f);

	if (n == 0) {
		n = fs_file_write(fs, f, buf, size, (uint64_t)off);
		put_file(fs, fi, f);
	}
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/*
 * With no OPEN there is no per-descriptor state to complete at close, and a
 * FLUSH at every close (read-only ones too) would cost a round trip each:
 * the first one commits and answers ENOSYS, and the kernel sends no more.
 * Buffered writes are committed by fsync, a rename or truncation, FORGET, or
 * the committer (file.c); fsync reports a failed commit.
 */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	int rc = 0;

	(void)ino;
	if (fi->fh)
		rc = fs_file_commit(fs, (struct fs_file *)(uintptr_t)fi->fh);
	fuse_reply_err(req, rc ? -rc : fs->no_open ? ENOSYS : 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fi->fh)
		fuse_reply_err(req, -fs_file_close(fs_of(req), (struct fs_file *)(uintptr_t)fi->fh));
	else
		fuse_reply_err(req, 0);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
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

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
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

/* Log first, then the namespace: metadata never names a chunk not on disk. */
static int sync_all(struct fs *fs)
{
	int rc = store_sync(fs->store);

	return rc ? rc : meta_sync(fs->meta);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct fs_file *f = fi && fi->fh ? (struct fs_file *)(uintptr_t)fi->fh : NULL;
	int rc = 0;

	(void)datasync;
	if (f) {
		rc = fs_file_commit(fs, f);
	} else if ((f = fs_file_find(fs, ino))) {
		rc = fs_file_commit(fs, f);
		fs_file_put(fs, f);
	}
	fuse_reply_err(req, -(rc ? rc : sync_all(fs)));
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -sync_all(fs_of(req)));
}

struct dirbuf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	bool plus; /* readdirplus: entries carry attributes and count as lookups */
};

static int add_entry(void *arg, const char *name, uint64_t ino, uint32_t type, uint64_t next)
{
	struct dirbuf *d = arg;
	struct stat st;
	size_t n;

	memset(&st, 0, sizeof(st));
	st.st_ino = ino;
	st.st_mode = type;
	if (!d->plus) {
		n = fuse_add_direntry(d->req, d->buf + d->used, d->size - d->used, name, &st,
				      (off_t)next);
	} else {
		struct fs *fs = fs_of(d->req);
		struct fuse_entry_param e;
		struct meta_inode in = { 0 };

		memset(&e, 0, sizeof(e));
		e.attr = st;
		/* "." and ".." carry no inode: the kernel takes no lookup for them */
		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			if (meta_getattr(fs->meta, ino, false, &in) != 0)
				return 0; /* removed meanwhile: leave it out */
			fill_stat(fs, &in, &e.attr);
			meta_inode_release(&in);
			e.ino = ino;
			e.attr_timeout = e.entry_timeout = fs->timeout;
		}
		n = fuse_add_direntry_plus(d->req, d->buf + d->used, d->size - d->used, name, &e,
					   (off_t)next);
	}
	if (n > d->size - d->used)
		return 1;
	d->used += n;
	if (d->plus && strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
		count_lookup(fs_of(d->req), ino); /* the kernel takes each entry it is sent */
	return 0;
}

static void list_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct dirbuf d = { req, malloc(size ? size : 1), size, 0, plus };
	int rc = 0;

	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* positions 1 and 2 are "." and ".."; names start at 4 (meta_name_pos) */
	if (off < 1 && add_entry(&d, ".", ino, S_IFDIR, 1))
		goto send;
	if (off < 2 && add_entry(&d, "..", ino, S_IFDIR, 2))
		goto send;
	rc = meta_readdir(fs_of(req)->meta, ino, off < 3 ? 3 : (uint64_t)off, add_entry, &d);
send:
	if (rc < 0)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	/* the kernel keeps listings; it drops them itself when this mount changes
	 * the directory */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	list_dir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	list_dir(req, ino, size, off, true);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	(void)ino;
	if (statvfs(fs_of(req)->data_dir, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	sv.f_namemax = META_NAME_MAX;
	fuse_reply_statfs(req, &sv);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fuse_reply_err(req, -meta_setxattr(fs_of(req)->meta, ino, name, value, size, flags));
}

/* Answers getxattr and listxattr: a size query (size 0) gets the length, a
 * read the bytes; both ask the namespace through query, into a buffer of size. */
static void reply_xattr(fuse_req_t req, size_t size,
			ssize_t (*query)(struct fs *fs, fuse_ino_t ino, const char *name, char *buf,
					 size_t cap),
			fuse_ino_t ino, const char *name)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = query(fs_of(req), ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static ssize_t query_get(struct fs *fs, fuse_ino_t ino, const char *name, char *buf, size_t cap)
{
	return meta_getxattr(fs->meta, ino, name, buf, cap);
}

static ssize_t query_list(struct fs *fs, fuse_ino_t ino, const char *name, char *buf, size_t cap)
{
	(void)name;
	return meta_listxattr(fs->meta, ino, buf, cap);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	reply_xattr(req, size, query_get, ino, name);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	reply_xattr(req, size, query_list, ino, NULL);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -meta_removexattr(fs_of(req)->meta, ino, name));
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.symlink = op_symlink,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.copy_file_range = op_copy_file_range,
	.lseek = op_lseek,
};
