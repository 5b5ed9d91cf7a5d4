/*
 * floor - a FUSE filesystem that stores nothing: names, modes, sizes and
 * times in memory, reads return zeros, writes are counted and dropped.
 * `caskfs bench` runs its workloads on it beside caskfs and the native
 * directory, so the table shows in the same run what the kernel's FUSE
 * round trips alone cost on this machine: the floor under any FUSE
 * filesystem. It mounts, negotiates the connection and serves requests
 * through the very code caskfs does (fs/daemon/session.c), so the
 * difference to caskfs is our own work.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_i.h"
#include "fs/daemon/session_i.h"

#define FLOOR_TIMEOUT 1.0 /* seconds, as caskfs's attribute and entry timeouts */
#define FLOOR_ZEROS (1u << 20)

struct floor_inode {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	nlink_t nlink;
	off_t size;
	struct timespec atime, mtime, ctime;
};

struct floor_entry {
	uint64_t parent, ino;
	struct floor_entry *next;
	char name[]; /* NUL-terminated */
};

struct floor {
	pthread_mutex_t mu; /* protects everything below */
	struct floor_inode *inodes; /* by ino; 0 unused, 1 the root */
	uint64_t ninodes, capinodes;
	struct floor_entry **buckets;
	size_t nbuckets, nentries;
	bool no_open;
};

static const uint8_t floor_zeros[FLOOR_ZEROS];

static struct floor *floor_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static size_t floor_hash(uint64_t parent, const char *name)
{
	uint64_t h = parent * 0x9e3779b97f4a7c15ULL;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return (size_t)(h ^ (h >> 29));
}

/* With fl->mu held. The slot holding the entry (parent, name), or where it would go. */
static struct floor_entry **floor_slot(struct floor *fl, uint64_t parent, const char *name)
{
	struct floor_entry **e = &fl->buckets[floor_hash(parent, name) & (fl->nbuckets - 1)];

	while (*e && ((*e)->parent != parent || strcmp((*e)->name, name) != 0))
		e = &(*e)->next;
	return e;
}

/* With fl->mu held: doubles the buckets once there are as many entries. */
static void floor_grow(struct floor *fl)
{
	size_t n = fl->nbuckets * 2;
	struct floor_entry **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < fl->nbuckets; i++) {
		struct floor_entry *e = fl->buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			size_t at = floor_hash(e->parent, e->name) & (n - 1);
			e->next = b[at];
			b[at] = e;
		}
	}
	free(fl->buckets);
	fl->buckets = b;
	fl->nbuckets = n;
}

/* With fl->mu held: a new inode owned by the request's caller, or 0. */
static uint64_t floor_new_inode(struct floor *fl, fuse_req_t req, mode_t mode)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct timespec now;

	if (fl->ninodes == fl->capinodes) {
		uint64_t cap = fl->capinodes * 2;
		struct floor_inode *in = realloc(fl->inodes, cap * sizeof(*in));
		if (!in)
			return 0;
		fl->inodes = in;
		fl->capinodes = cap;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	fl->inodes[fl->ninodes] = (struct floor_inode){ .mode = mode & ~ctx->umask,
							.uid = ctx->uid,
							.gid = ctx->gid,
							.nlink = S_ISDIR(mode) ? 2 : 1,
							.atime = now,
							.mtime = now,
							.ctime = now };
	return fl->ninodes++;
}

/* With fl->mu held. */
static void floor_stat(const struct floor *fl, uint64_t ino, struct stat *st)
{
	const struct floor_inode *in = &fl->inodes[ino];

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_size = in->size;
	st->st_blksize = 1 << 20;
	st->st_blocks = (in->size + 511) / 512;
	st->st_atim = in->atime;
	st->st_mtim = in->mtime;
	st->st_ctim = in->ctime;
}

/* With fl->mu held. */
static void floor_entry_param(const struct floor *fl, uint64_t ino, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino;
	e->attr_timeout = FLOOR_TIMEOUT;
	e->entry_timeout = FLOOR_TIMEOUT;
	if (ino)
		floor_stat(fl, ino, &e->attr);
}

static bool floor_valid(const struct floor *fl, uint64_t ino)
{
	return ino > 0 && ino < fl->ninodes;
}

static void floor_init(void *userdata, struct fuse_conn_info *conn)
{
	struct floor *fl = userdata;

	/* what caskfs asks for, writeback cache off (its default) */
	fl->no_open = fs_session_init_conn(conn, false);
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct floor *fl = floor_of(req);
	struct fuse_entry_param e;

	pthread_mutex_lock(&fl->mu);
	struct floor_entry *found = *floor_slot(fl, parent, name);
	floor_entry_param(fl, found ? found->ino : 0, &e); /* 0: a negative entry */
	pthread_mutex_unlock(&fl->mu);
	fuse_reply_entry(req, &e);
}

static void floor_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	(void)ino;
	(void)nlookup;
	fuse_reply_none(req); /* inodes live as long as the mount */
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&fl->mu);
	bool ok = floor_valid(fl, ino);
	if (ok)
		floor_stat(fl, ino, &st);
	pthread_mutex_unlock(&fl->mu);
	if (ok)
		fuse_reply_attr(req, &st, FLOOR_TIMEOUT);
	else
		fuse_reply_err(req, ENOENT);
}

static void floor_set_time(struct timespec *t, const struct timespec *to, bool now)
{
	if (now)
		clock_gettime(CLOCK_REALTIME, t);
	else
		*t = *to;
}

static void floor_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			  struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);
	struct stat st;

	(void)fi;
	pthread_mutex_lock(&fl->mu);
	if (!floor_valid(fl, ino)) {
		pthread_mutex_unlock(&fl->mu);
		fuse_reply_err(req, ENOENT);
		return;
	}
	struct floor_inode *in = &fl->inodes[ino];
	if (to_set & FUSE_SET_ATTR_MODE)
		in->mode = (in->mode & S_IFMT) | (attr->st_mode & 07777);
	if (to_set & FUSE_SET_ATTR_UID)
		in->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		in->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_SIZE)
		in->size = attr->st_size;
	if (to_set & FUSE_SET_ATTR_ATIME)
		floor_set_time(&in->atime, &attr->st_atim, to_set & FUSE_SET_ATTR_ATIME_NOW);
	if (to_set & FUSE_SET_ATTR_MTIME)
		floor_set_time(&in->mtime, &attr->st_mtim, to_set & FUSE_SET_ATTR_MTIME_NOW);
	clock_gettime(CLOCK_REALTIME, &in->ctime);
	floor_stat(fl, ino, &st);
	pthread_mutex_unlock(&fl->mu);
	fuse_reply_attr(req, &st, FLOOR_TIMEOUT);
}

/* A new name for a new inode of mode: its entry (e->ino 0 on failure), or an errno. */
static int floor_make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_entry_param *e)
{
	struct floor *fl = floor_of(req);
	size_t len = strlen(name);
	int rc = 0;

	if (len > 255)
		return ENAMETOOLONG;
	struct floor_entry *ent = malloc(sizeof(*ent) + len + 1);
	if (!ent)
		return ENOMEM;
	pthread_mutex_lock(&fl->mu);
	struct floor_entry **slot = floor_slot(fl, parent, name);
	uint64_t ino = 0;
	if (!floor_valid(fl, parent) || !S_ISDIR(fl->inodes[parent].mode))
		rc = ENOENT;
	else if (*slot)
		rc = EEXIST;
	else if ((ino = floor_new_inode(fl, req, mode)) == 0)
		rc = ENOMEM;
	if (rc == 0) {
		ent->parent = parent;
		ent->ino = ino;
		ent->next = NULL;
		memcpy(ent->name, name, len + 1);
		*slot = ent;
		if (S_ISDIR(mode))
			fl->inodes[parent].nlink++;
		clock_gettime(CLOCK_REALTIME, &fl->inodes[parent].mtime);
		fl->inodes[parent].ctime = fl->inodes[parent].mtime;
		if (++fl->nentries > fl->nbuckets)
			floor_grow(fl);
		floor_entry_param(fl, ino, e);
	}
	pthread_mutex_unlock(&fl->mu);
	if (rc)
		free(ent);
	return rc;
}

static void floor_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;
	int rc = floor_make(req, parent, name, S_IFDIR | (mode & 07777), &e);

	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_entry(req, &e);
}

static void floor_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int rc = floor_make(req, parent, name, S_IFREG | (mode & 07777), &e);

	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	fi->fh = 0;
	fuse_reply_create(req, &e, fi);
}

/* unlink: drops the name (not the inode: it lives as long as the mount). */
static void floor_remove(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct floor *fl = floor_of(req);
	struct floor_entry *gone = NULL;

	pthread_mutex_lock(&fl->mu);
	struct floor_entry **slot = floor_slot(fl, parent, name);
	if (*slot) {
		gone = *slot;
		*slot = gone->next;
		fl->nentries--;
		if (S_ISDIR(fl->inodes[gone->ino].mode))
			fl->inodes[parent].nlink--;
		fl->inodes[gone->ino].nlink = 0;
	}
	pthread_mutex_unlock(&fl->mu);
	free(gone);
	fuse_reply_err(req, gone ? 0 : ENOENT);
}

static void floor_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
			 fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct floor *fl = floor_of(req);
	size_t len = strlen(newname);
	struct floor_entry *moved = NULL, *replaced = NULL;
	int rc = 0;

	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	struct floor_entry *ent = malloc(sizeof(*ent) + len + 1);
	if (!ent) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fl->mu);
	struct floor_entry **from = floor_slot(fl, parent, name);
	if (!*from)
		rc = ENOENT;
	else if ((flags & RENAME_NOREPLACE) && *floor_slot(fl, newparent, newname))
		rc = EEXIST;
	if (rc == 0) {
		moved = *from;
		*from = moved->next;
		struct floor_entry **to = floor_slot(fl, newparent, newname);
		replaced = *to;
		if (replaced)
			*to = replaced->next;
		else
			fl->nentries++;
		ent->parent = newparent;
		ent->ino = moved->ino;
		memcpy(ent->name, newname, len + 1);
		ent->next = *to;
		*to = ent;
		fl->nentries--;
		ent = NULL;
	}
	pthread_mutex_unlock(&fl->mu);
	free(ent);
	free(moved);
	free(replaced);
	fuse_reply_err(req, rc);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (floor_of(req)->no_open) {
		fuse_reply_err(req, ENOSYS); /* as caskfs: no OPEN and RELEASE from now on */
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);

	(void)fi;
	pthread_mutex_lock(&fl->mu);
	off_t end = floor_valid(fl, ino) ? fl->inodes[ino].size : 0;
	pthread_mutex_unlock(&fl->mu);
	if (off >= end)
		size = 0;
	else if ((off_t)size > end - off)
		size = (size_t)(end - off);
	fuse_reply_buf(req, (const char *)floor_zeros, size < FLOOR_ZEROS ? size : FLOOR_ZEROS);
}

static void floor_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	struct floor *fl = floor_of(req);

	(void)buf;
	(void)fi;
	pthread_mutex_lock(&fl->mu);
	if (floor_valid(fl, ino)) {
		struct floor_inode *in = &fl->inodes[ino];
		if (off + (off_t)size > in->size)
			in->size = off + (off_t)size;
		clock_gettime(CLOCK_REALTIME, &in->mtime);
		in->ctime = in->mtime;
	}
	pthread_mutex_unlock(&fl->mu);
	fuse_reply_write(req, size);
}

static void floor_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, ENOSYS); /* as caskfs: no FLUSH at later closes */
}

static void floor_ok(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void floor_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void floor_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	(void)ino;
	(void)name;
	(void)size;
	fuse_reply_err(req, ENODATA);
}

static const struct fuse_lowlevel_ops floor_ops = {
	.init = floor_init,
	.lookup = floor_lookup,
	.forget = floor_forget,
	.getattr = floor_getattr,
	.setattr = floor_setattr,
	.mkdir = floor_mkdir,
	.unlink = floor_remove,
	.rename = floor_rename,
	.open = floor_open,
	.create = floor_create,
	.read = floor_read,
	.write = floor_write,
	.flush = floor_flush,
	.release = floor_release,
	.fsync = floor_ok,
	.getxattr = floor_getxattr,
};

int fs_floor_serve(const char *mountpoint, int ready_fd)
{
	struct floor fl = {
		.mu = PTHREAD_MUTEX_INITIALIZER, .ninodes = 2, .capinodes = 1024, .nbuckets = 1024
	};
	struct fuse_session *se = NULL;
	int rc = -ENOMEM;

	fl.inodes = calloc(fl.capinodes, sizeof(*fl.inodes));
	fl.buckets = calloc(fl.nbuckets, sizeof(*fl.buckets));
	if (!fl.inodes || !fl.buckets)
		goto out;
	clock_gettime(CLOCK_REALTIME, &fl.inodes[1].mtime);
	fl.inodes[1] = (struct floor_inode){ .mode = S_IFDIR | 0755,
					     .uid = geteuid(), /* who runs the bench */
					     .gid = getegid(),
					     .nlink = 2,
					     .atime = fl.inodes[1].mtime,
					     .mtime = fl.inodes[1].mtime,
					     .ctime = fl.inodes[1].mtime };
	rc = fs_session_mount("caskfs-floor",
			      geteuid() == 0 ? "fsname=floor,subtype=caskfs-floor,"
					       "default_permissions,allow_other"
					     : "fsname=floor,subtype=caskfs-floor,"
					       "default_permissions",
			      &floor_ops, sizeof(floor_ops), &fl, mountpoint, &se);
	if (rc < 0)
		goto out;
	if (ready_fd >= 0) {
		(void)!write(ready_fd, "", 1);
		close(ready_fd);
	}
	rc = fs_session_loop(se, NULL);
	fuse_session_unmount(se);
out:
	fs_session_close(se);
	for (size_t i = 0; fl.buckets && i < fl.nbuckets; i++) {
		struct floor_entry *e = fl.buckets[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(fl.buckets);
	free(fl.inodes);
	return rc;
}
