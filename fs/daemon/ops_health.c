/*
 * ops_health - /.caskfs/, the mount's health as files: status (what `caskfs
 * status DATA_DIR` prints), status.json (its --json), peers and conflicts
 * (the kept conflict copies). The directory is not in the namespace: it is
 * found by name at the root and never listed there, read-only (0555, files
 * 0444). The one idea: every LOOKUP of a file hands out a new inode number
 * with a snapshot made then, so each open reads fresh text, though the
 * kernel sends no OPEN (and so cannot be told direct_io) and keeps a file's
 * pages. Numbers: node 0, bit 46 (meta never hands those out; docs/FORMAT.md).
 * docs/USAGE.md ("Health you can cat").
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_i.h"

#define KIND_BITS 3
#define SNAPSHOTS 32		/* recent snapshots kept; older ones are made again */
#define SNAPSHOT_MAX (4u << 20) /* a file's text is cut here */

static const char *const names[FS_HEALTH_KINDS + 1] = { NULL, "status", "status.json", "peers",
							 "conflicts" };

struct snapshot {
	uint64_t ino; /* 0: free */
	char *text;
	size_t len;
};

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot snaps[SNAPSHOTS]; /* protected by snap_mu */
static _Atomic uint64_t next_gen = 1;

bool fs_health_ino(uint64_t ino)
{
	return (ino >> 46) == 1;
}

static int kind_of(uint64_t ino)
{
	return (int)(ino & ((1u << KIND_BITS) - 1));
}

static void peer_line(void *arg, const char *addr, bool self, bool up, uint64_t hints)
{
	fprintf(arg, "%s %s %llu\n", addr, self ? "self" : up ? "up" : "down",
		(unsigned long long)hints);
}

/* The text of kind, made now: malloc'd into *text (*len bytes), or NULL
 * (nothing to say, or no memory). */
static void make_text(struct fs *fs, int kind, char **text, size_t *len)
{
	FILE *f = open_memstream(text, len);

	if (!f) {
		*text = NULL;
		*len = 0;
		return;
	}
	if (kind == FS_HEALTH_STATUS || kind == FS_HEALTH_JSON)
		fs_status_report(f, fs->data_dir, kind == FS_HEALTH_JSON, NULL);
	else if (kind == FS_HEALTH_PEERS)
		cluster_peers(fs->node.cluster, peer_line, f);
	else
		fs_health_conflicts(fs, f);
	if (fclose(f) != 0) {
		free(*text);
		*text = NULL;
		*len = 0;
	}
	if (*len > SNAPSHOT_MAX)
		*len = SNAPSHOT_MAX;
}

/* Makes (again, when missing) the snapshot of ino and tells its length. */
static size_t snapshot(struct fs *fs, uint64_t ino, bool fresh)
{
	struct snapshot *s = &snaps[(ino >> KIND_BITS) % SNAPSHOTS];
	char *text;
	size_t len;

	pthread_mutex_lock(&snap_mu);
	if (!fresh && s->ino == ino) {
		len = s->len;
		pthread_mutex_unlock(&snap_mu);
		return len;
	}
	pthread_mutex_unlock(&snap_mu);
	make_text(fs, kind_of(ino), &text, &len);
	pthread_mutex_lock(&snap_mu);
	free(s->text);
	s->ino = ino;
	s->text = text;
	s->len = text ? len : 0;
	len = s->len;
	pthread_mutex_unlock(&snap_mu);
	return len;
}

static void fill_attr(struct fs *fs, uint64_t ino, size_t size, struct stat *st)
{
	(void)fs;
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = ino == FS_HEALTH_DIR_INO ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = ino == FS_HEALTH_DIR_INO ? 2 : 1;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (st->st_size + 511) / 512;
	clock_gettime(CLOCK_REALTIME, &st->st_mtim);
	st->st_atim = st->st_ctim = st->st_mtim;
}

bool fs_health_reserved(uint64_t parent, const char *name)
{
	return fs_health_ino(parent) || (parent == META_ROOT_INO && strcmp(name, FS_HEALTH_NAME) == 0);
}

bool fs_health_lookup(fuse_req_t req, uint64_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct fuse_entry_param e;

	if (!fs_health_reserved(parent, name))
		return false;
	memset(&e, 0, sizeof(e));
	if (parent == META_ROOT_INO) {
		e.ino = FS_HEALTH_DIR_INO;
		e.attr_timeout = e.entry_timeout = fs->timeout;
		fill_attr(fs, e.ino, 0, &e.attr);
		fuse_reply_entry(req, &e);
		return true;
	}
	for (int k = 1; parent == FS_HEALTH_DIR_INO && k <= FS_HEALTH_KINDS; k++) {
		if (strcmp(name, names[k]) != 0)
			continue;
		/* a new number each time: an inode the kernel holds no pages of */
		e.ino = FS_HEALTH_DIR_INO | atomic_fetch_add(&next_gen, 1) << KIND_BITS | (uint64_t)k;
		fill_attr(fs, e.ino, snapshot(fs, e.ino, true), &e.attr);
		fuse_reply_entry(req, &e); /* timeouts 0: every open looks it up again */
		return true;
	}
	fuse_reply_err(req, ENOENT);
	return true;
}

void fs_health_forget(uint64_t ino)
{
	struct snapshot *s = &snaps[(ino >> KIND_BITS) % SNAPSHOTS];

	pthread_mutex_lock(&snap_mu);
	if (s->ino == ino) {
		free(s->text);
		memset(s, 0, sizeof(*s));
	}
	pthread_mutex_unlock(&snap_mu);
}

void fs_health_getattr(fuse_req_t req, uint64_t ino)
{
	struct fs *fs = fs_of(req);
	struct stat st;

	if (ino != FS_HEALTH_DIR_INO && (kind_of(ino) < 1 || kind_of(ino) > FS_HEALTH_KINDS)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(fs, ino, ino == FS_HEALTH_DIR_INO ? 0 : snapshot(fs, ino, false), &st);
	fuse_reply_attr(req, &st, ino == FS_HEALTH_DIR_INO ? fs->timeout : 0);
}

void fs_health_open(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	fi->direct_io = 1; /* a kernel that still sends OPEN: no page cache */
	fi->keep_cache = 0;
	fuse_reply_open(req, fi);
}

void fs_health_read(fuse_req_t req, uint64_t ino, size_t size, off_t off)
{
	struct fs *fs = fs_of(req);
	struct snapshot *s = &snaps[(ino >> KIND_BITS) % SNAPSHOTS];

	if (ino == FS_HEALTH_DIR_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	snapshot(fs, ino, false);
	pthread_mutex_lock(&snap_mu);
	if (s->ino != ino || off < 0 || (size_t)off >= s->len)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_buf(req, s->text + off,
			       size < s->len - (size_t)off ? size : s->len - (size_t)off);
	pthread_mutex_unlock(&snap_mu);
}

void fs_health_readdir(fuse_req_t req, uint64_t ino, size_t size, off_t off, bool plus)
{
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	if (!buf || ino != FS_HEALTH_DIR_INO) {
		fuse_reply_err(req, buf ? ENOTDIR : ENOMEM);
		free(buf);
		return;
	}
	for (int k = (int)off; k < FS_HEALTH_KINDS + 2; k++) {
		const char *name = k == 0 ? "." : k == 1 ? ".." : names[k - 1];
		struct fuse_entry_param e;
		size_t n;

		memset(&e, 0, sizeof(e));
		e.attr.st_ino = k < 2 ? FS_HEALTH_DIR_INO : FS_HEALTH_DIR_INO | (uint64_t)(k - 1);
		e.attr.st_mode = k < 2 ? S_IFDIR : S_IFREG;
		/* readdirplus with no inode: the kernel takes no lookup, and the
		 * next open looks the name up (and gets a fresh snapshot) */
		n = plus ? fuse_add_direntry_plus(req, buf + used, size - used, name, &e, k + 1)
			 : fuse_add_direntry(req, buf + used, size - used, name, &e.attr, k + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static int conflict_line(void *arg, uint64_t parent, const char *name, uint64_t ino)
{
	void **a = arg;
	struct fs *fs = a[0];
	char dir[4096];

	if (meta_dir_path(fs->meta, parent, dir, sizeof(dir)) < 0)
		snprintf(dir, sizeof(dir), "?%016llx", (unsigned long long)parent);
	fprintf(a[1], "%s/%s\t%llu\n", dir, name, (unsigned long long)ino);
	return ferror((FILE *)a[1]) ? -EIO : 0;
}

void fs_health_conflicts(struct fs *fs, FILE *f)
{
	void *a[2] = { fs, f };

	meta_conflicts(fs->meta, conflict_line, a);
}
