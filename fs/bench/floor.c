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

#define FLOOR_TIMEOUT 86400.0 /* seconds, as caskfs's attribute and entry timeouts */
#define FLOOR_ZEROS (1u << 20)

struct floor_entry;

struct floor_inode {
	mode_t mode;
	uid_t uid;
	gid_t gid;
	nlink_t nlink;
	off_t size;
	struct timespec atime, mtime, ctime;
	struct floor_entry *first, *last; /* a directory's entries, oldest first */
	char *target;			  /* a symlink's */
};

struct floor_entry {
	uint64_t parent, ino;
	uint64_t pos;			   /* its readdir position: grows with each new entry */
	struct floor_entry *next;	   /* in its hash bucket */
	struct floor_entry *prev_sib, *next_sib; /* in its directory */
	char name[];			   /* NUL-terminated */
};

struct floor {
	pthread_mutex_t mu; /* protects everything below */
	struct floor_inode *inodes; /* by ino; 0 unused, 1 the root */
	uint64_t ninodes, capinodes;
	struct floor_entry **buckets;
	size_t nbuckets, nentries;
	uint64_t next_pos; /* the next entry's readdir position (3 and up) */
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

/* With fl->mu held: ent (its parent, ino and name set) goes into the empty
 * slot and at the end of its directory. */
static void floor_link_entry(struct floor *fl, struct floor_entry **slot, struct floor_entry *ent)
{
	struct floor_inode *dir = &fl->inodes[ent->parent];

	ent->next = *slot;
	*slot = ent;
	ent->pos = fl->next_pos++;
	ent->next_sib = NULL;
	ent->prev_sib = dir->last;
	if (dir->last)
		dir->last->next_sib = ent;
	else
		dir->first = ent;
	dir->last = ent;
	if (++fl->nentries > fl->nbuckets)
		floor_grow(fl);
}

/* With fl->mu held: takes the entry in *slot out of its bucket and directory. */
static struct floor_entry *floor_unlink_entry(struct floor *fl, struct floor_entry **slot)
{
	struct floor_entry *ent = *slot;
	struct floor_inode *dir = &fl->inodes[ent->parent];

	*slot = ent->next;
	if (ent->prev_sib)
		ent->prev_sib->next_sib = ent->next_sib;
	else
		dir->first = ent->next_sib;
	if (ent->next_sib)
		ent->next_sib->prev_sib = ent->prev_sib;
	else
		dir->last = ent->prev_sib;
	fl->nentries--;
	return ent;
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

/* With fl->mu held: the directory changed now. */
static void floor_touch_dir(struct floor *fl, uint64_t dir)
{
	clock_gettime(CLOCK_REALTIME, &fl->inodes[dir].mtime);
	fl->inodes[dir].ctime = fl->inodes[dir].mtime;
}

/* A new name parent/name for ino (0: a new inode of mode, a symlink to
 * target when it is not NULL): its entry, or an errno. */
static int floor_make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      const char *target, uint64_t ino, struct fuse_entry_param *e)
{
	struct floor *fl = floor_of(req);
	size_t len = strlen(name);
	char *copy = NULL;
	int rc = 0;

	if (len > 255)
		return ENAMETOOLONG;
	struct floor_entry *ent = malloc(sizeof(*ent) + len + 1);
	if (!ent || (target && !(copy = strdup(target)))) {
		free(ent);
		return ENOMEM;
	}
	pthread_mutex_lock(&fl->mu);
	struct floor_entry **slot = floor_slot(fl, parent, name);
	if (!floor_valid(fl, parent) || !S_ISDIR(fl->inodes[parent].mode))
		rc = ENOENT;
	else if (*slot)
		rc = EEXIST;
	else if (ino && (!floor_valid(fl, ino) || S_ISDIR(fl->inodes[ino].mode)))
		rc = ino && floor_valid(fl, ino) ? EPERM : ENOENT;
	else if (!ino && (ino = floor_new_inode(fl, req, mode)) == 0)
		rc = ENOMEM;
	else if (copy) {
		fl->inodes[ino].target = copy;
		fl->inodes[ino].size = (off_t)strlen(copy);
		copy = NULL;
	} else if (mode == 0) { /* a hard link to ino */
		fl->inodes[ino].nlink++;
		clock_gettime(CLOCK_REALTIME, &fl->inodes[ino].ctime);
	}
	if (rc == 0) {
		ent->parent = parent;
		ent->ino = ino;
		memcpy(ent->name, name, len + 1);
		floor_link_entry(fl, slot, ent);
		if (S_ISDIR(mode))
			fl->inodes[parent].nlink++;
		floor_touch_dir(fl, parent);
		floor_entry_param(fl, ino, e);
	}
	pthread_mutex_unlock(&fl->mu);
	if (rc)
		free(ent);
	free(copy);
	return rc;
}

static void floor_reply_make(fuse_req_t req, int rc, const struct fuse_entry_param *e)
{
	if (rc)
		fuse_reply_err(req, rc);
	else
		fuse_reply_entry(req, e);
}

static void floor_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;

	floor_reply_make(req, floor_make(req, parent, name, S_IFDIR | (mode & 07777), NULL, 0, &e),
			 &e);
}

static void floor_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			dev_t rdev)
{
	struct fuse_entry_param e;

	(void)rdev;
	floor_reply_make(req, floor_make(req, parent, name, mode, NULL, 0, &e), &e);
}

static void floor_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	floor_reply_make(req, floor_make(req, parent, name, S_IFLNK | 0777, link, 0, &e), &e);
}

static void floor_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct fuse_entry_param e;

	floor_reply_make(req, floor_make(req, newparent, newname, 0, NULL, ino, &e), &e);
}

static void floor_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct floor *fl = floor_of(req);
	char target[PATH_MAX];
	bool ok;

	pthread_mutex_lock(&fl->mu);
	ok = floor_valid(fl, ino) && fl->inodes[ino].target;
	if (ok)
		snprintf(target, sizeof(target), "%s", fl->inodes[ino].target);
	pthread_mutex_unlock(&fl->mu);
	if (ok)
		fuse_reply_readlink(req, target);
	else
		fuse_reply_err(req, EINVAL);
}

static void floor_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			 struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int rc;

	/* as caskfs: the kernel then makes files with MKNOD and opens them,
	 * learning from the first OPEN to send none */
	if (floor_of(req)->no_open) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	rc = floor_make(req, parent, name, S_IFREG | (mode & 07777), NULL, 0, &e);
	if (rc) {
		fuse_reply_err(req, rc);
		return;
	}
	fi->fh = 0;
	fuse_reply_create(req, &e, fi);
}

/* unlink and rmdir: drop the name (not the inode: it lives as long as the mount). */
static void floor_remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct floor *fl = floor_of(req);
	struct floor_entry *gone = NULL;
	int rc = ENOENT;

	pthread_mutex_lock(&fl->mu);
	struct floor_entry **slot = floor_slot(fl, parent, name);
	if (*slot) {
		struct floor_inode *in = &fl->inodes[(*slot)->ino];
		if (dir && !S_ISDIR(in->mode))
			rc = ENOTDIR;
		else if (!dir && S_ISDIR(in->mode))
			rc = EISDIR;
		else if (dir && in->first)
			rc = ENOTEMPTY;
		else
			rc = 0;
	}
	if (rc == 0) {
		gone = floor_unlink_entry(fl, slot);
		struct floor_inode *in = &fl->inodes[gone->ino];
		if (dir) {
			fl->inodes[parent].nlink--;
			in->nlink = 0;
		} else if (in->nlink > 0) {
			in->nlink--;
		}
		floor_touch_dir(fl, parent);
	}
	pthread_mutex_unlock(&fl->mu);
	free(gone);
	fuse_reply_err(req, rc);
}

static void floor_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	floor_remove_name(req, parent, name, false);
}

static void floor_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	floor_remove_name(req, parent, name, true);
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
	struct floor_entry **to = floor_slot(fl, newparent, newname);
	if (!*from || !floor_valid(fl, newparent))
		rc = ENOENT;
	else if ((flags & RENAME_NOREPLACE) && *to)
		rc = EEXIST;
	else if (*to && S_ISDIR(fl->inodes[(*to)->ino].mode) && fl->inodes[(*to)->ino].first)
		rc = ENOTEMPTY;
	if (rc == 0 && *from != *to) {
		if (*to)
			replaced = floor_unlink_entry(fl, to);
		from = floor_slot(fl, parent, name); /* the chain may have moved */
		moved = floor_unlink_entry(fl, from);
		ent->parent = newparent;
		ent->ino = moved->ino;
		memcpy(ent->name, newname, len + 1);
		floor_link_entry(fl, floor_slot(fl, newparent, newname), ent);
		if (replaced && fl->inodes[replaced->ino].nlink > 0)
			fl->inodes[replaced->ino].nlink--;
		floor_touch_dir(fl, parent);
		floor_touch_dir(fl, newparent);
		ent = NULL;
	}
	pthread_mutex_unlock(&fl->mu);
	free(ent);
	free(moved);
	free(replaced);
	fuse_reply_err(req, rc);
}

static void floor_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if (fs_session_no_opendir()) {
		fuse_reply_err(req, ENOSYS); /* as caskfs: no OPENDIR from now on */
		return;
	}
	fi->cache_readdir = 1; /* as caskfs */
	fi->keep_cache = 1;
	fuse_reply_open(req, fi);
}

/* readdir and readdirplus: "." and ".." at positions 1 and 2, then the
 * entries after position off, as many as fit in size. */
static void floor_list(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct floor *fl = floor_of(req);
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_mutex_lock(&fl->mu);
	if (!floor_valid(fl, ino) || !S_ISDIR(fl->inodes[ino].mode)) {
		pthread_mutex_unlock(&fl->mu);
		free(buf);
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	struct floor_entry *e = fl->inodes[ino].first;
	for (uint64_t pos = 1;; pos++) {
		const char *name = pos == 1 ? "." : "..";
		uint64_t child = 0;
		if (pos > 2) {
			while (e && e->pos <= (uint64_t)off)
				e = e->next_sib;
			if (!e)
				break;
			name = e->name;
			child = e->ino;
			pos = e->pos;
			e = e->next_sib;
		} else if ((off_t)pos <= off) {
			continue;
		}
		struct fuse_entry_param ep;
		memset(&ep, 0, sizeof(ep));
		if (child)
			floor_entry_param(fl, child, &ep);
		else
			ep.attr.st_mode = S_IFDIR;
		ep.attr.st_ino = child ? child : ino;
		size_t n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &ep,
							 (off_t)pos)
				: fuse_add_direntry(req, buf + used, size - used, name, &ep.attr,
						    (off_t)pos);
		if (n > size - used)
			break;
		used += n;
	}
	pthread_mutex_unlock(&fl->mu);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void floor_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			  struct fuse_file_info *fi)
{
	(void)fi;
	floor_list(req, ino, size, off, false);
}

static void floor_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			      struct fuse_file_info *fi)
{
	(void)fi;
	floor_list(req, ino, size, off, true);
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
	.mknod = floor_mknod,
	.symlink = floor_symlink,
	.link = floor_link,
	.readlink = floor_readlink,
	.unlink = floor_unlink,
	.rmdir = floor_rmdir,
	.rename = floor_rename,
	.opendir = floor_opendir,
	.readdir = floor_readdir,
	.readdirplus = floor_readdirplus,
	.open = floor_open,
	.create = floor_create,
	.read = floor_read,
	.write = floor_write,
	.flush = floor_flush,
	.release = floor_release,
	.fsync = floor_ok,
	.getxattr = floor_getxattr,
};

int fs_floor_serve(const char *mountpoint, int ready_fd, _Atomic uint64_t *requests,
		   enum fs_uring_mode uring)
{
	struct floor fl = {
		.mu = PTHREAD_MUTEX_INITIALIZER, .ninodes = 2, .capinodes = 1024, .nbuckets = 1024,
		.next_pos = 3
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
	rc = fs_session_loop(se, requests, uring);
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
	for (uint64_t i = 0; fl.inodes && i < fl.ninodes; i++)
		free(fl.inodes[i].target);
	free(fl.inodes);
	return rc;
}
