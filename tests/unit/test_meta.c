/*
 * test_meta - the LMDB namespace through meta.h: creating every kind of node,
 * lookups and the errno of each failing case, link counts, rename in all its
 * forms, hard links, attributes and sparse chunk maps, ACLs kept in step
 * with the mode, the version 1 inode record, large directories listed by
 * position, xattrs, orphans, and everything surviving a reopen.
 */
#include <errno.h>
#include <sys/stat.h>

#include "testutil.h"
#include "meta/meta.h"
#include "meta/record_i.h"

struct fixture {
	char *dir;
	struct store_clock clock;
	struct meta *m;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->dir = tu_tmpdir();
	assert_int_equal(meta_open(f->dir, 7, &f->clock, &f->m), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	meta_close(f->m);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fixture *f)
{
	meta_close(f->m);
	assert_int_equal(meta_open(f->dir, 7, &f->clock, &f->m), 0);
}

static uint64_t mk(struct meta *m, uint64_t parent, const char *name, uint32_t mode)
{
	struct meta_inode in = { 0 };

	assert_int_equal(meta_mknod(m, parent, name, mode, 0, 1000, 100, 0, NULL, &in), 0);
	meta_inode_release(&in);
	return in.ino;
}

static uint32_t nlink_of(struct meta *m, uint64_t ino)
{
	struct meta_inode in = { 0 };

	assert_int_equal(meta_getattr(m, ino, false, &in), 0);
	meta_inode_release(&in);
	return in.nlink;
}

static int lookup_rc(struct meta *m, uint64_t parent, const char *name, uint64_t *ino)
{
	struct meta_inode in = { 0 };
	int rc = meta_lookup(m, parent, name, &in);

	meta_inode_release(&in);
	if (ino)
		*ino = rc == 0 ? in.ino : 0;
	return rc;
}

static void test_create_lookup(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	struct meta_inode in = { 0 };
	char longname[300];

	assert_int_equal(meta_getattr(m, META_ROOT_INO, false, &in), 0);
	assert_true(S_ISDIR(in.mode));
	assert_int_equal(in.nlink, 2);

	uint64_t file = mk(m, META_ROOT_INO, "photo.jpg", S_IFREG | 0644);
	assert_int_equal(file >> 48, 7); /* node id in the high bits */
	uint64_t dir = mk(m, META_ROOT_INO, "album", S_IFDIR | 0755);
	assert_int_equal(
	    meta_mknod(m, META_ROOT_INO, "link", S_IFLNK | 0777, 0, 0, 0, 0, "album/photo.jpg", &in),
	    0);
	assert_string_equal(in.target, "album/photo.jpg");
	assert_int_equal(in.size, 15);
	meta_inode_release(&in);

	uint64_t got;
	assert_int_equal(lookup_rc(m, META_ROOT_INO, "photo.jpg", &got), 0);
	assert_int_equal(got, file);
	assert_int_equal(meta_lookup(m, META_ROOT_INO, "link", &in), 0);
	assert_string_equal(in.target, "album/photo.jpg");
	assert_int_equal(in.uid, 0);
	meta_inode_release(&in);
	assert_int_equal(nlink_of(m, META_ROOT_INO), 3);
	assert_int_equal(nlink_of(m, dir), 2);
	assert_int_equal(nlink_of(m, file), 1);

	/* failing cases */
	assert_int_equal(meta_mknod(m, META_ROOT_INO, "album", S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL),
			 -EEXIST);
	assert_int_equal(meta_mknod(m, file, "x", S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL), -ENOTDIR);
	assert_int_equal(meta_mknod(m, 999999, "x", S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL), -ENOENT);
	memset(longname, 'n', 256);
	longname[256] = '\0';
	assert_int_equal(
	    meta_mknod(m, META_ROOT_INO, longname, S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL),
	    -ENAMETOOLONG);
	longname[255] = '\0';
	assert_int_equal(
	    meta_mknod(m, META_ROOT_INO, longname, S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL), 0);
	assert_int_equal(lookup_rc(m, META_ROOT_INO, longname, NULL), 0);
	assert_int_equal(lookup_rc(m, META_ROOT_INO, "nothing", NULL), -ENOENT);
	assert_int_equal(lookup_rc(m, file, "x", NULL), -ENOTDIR);
	assert_int_equal(meta_mknod(m, META_ROOT_INO, "a/b", S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL),
			 -EINVAL);
	/* everything is there after a reopen */
	reopen(f);
	assert_int_equal(lookup_rc(f->m, META_ROOT_INO, "photo.jpg", &got), 0);
	assert_int_equal(got, file);
	assert_int_equal(nlink_of(f->m, META_ROOT_INO), 3);
	uint64_t next = mk(f->m, META_ROOT_INO, "after-reopen", S_IFREG | 0600);
	assert_true(next > file);
}

static void test_setgid_dir(void **state)
{
	struct fixture *f = *state;
	struct meta_inode attr = { .mode = 02775, .gid = 50 }, in = { 0 };
	uint64_t shared = mk(f->m, META_ROOT_INO, "shared", S_IFDIR | 0775);

	assert_int_equal(meta_setattr(f->m, shared, META_SET_MODE | META_SET_GID, &attr, NULL), 0);
	assert_int_equal(meta_mknod(f->m, shared, "f", S_IFREG | 0644, 0, 1000, 100, 0, NULL, &in), 0);
	assert_int_equal(in.gid, 50);
	assert_int_equal(in.uid, 1000);
	assert_int_equal(meta_mknod(f->m, shared, "d", S_IFDIR | 0755, 0, 1000, 100, 0, NULL, &in), 0);
	assert_int_equal(in.gid, 50);
	assert_true(in.mode & S_ISGID);
}

static void test_unlink_rmdir(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	uint64_t dir = mk(m, META_ROOT_INO, "d", S_IFDIR | 0755);
	uint64_t file = mk(m, dir, "f", S_IFREG | 0644);

	assert_int_equal(meta_rmdir(m, META_ROOT_INO, "d"), -ENOTEMPTY);
	assert_int_equal(meta_unlink(m, META_ROOT_INO, "d"), -EISDIR);
	assert_int_equal(meta_rmdir(m, dir, "f"), -ENOTDIR);
	assert_int_equal(meta_unlink(m, dir, "missing"), -ENOENT);
	assert_int_equal(meta_unlink(m, file, "x"), -ENOTDIR);
	assert_int_equal(meta_unlink(m, dir, "f"), 0);
	assert_int_equal(lookup_rc(m, dir, "f", NULL), -ENOENT);
	/* unlinked but maybe open: the inode stays until forgotten */
	struct meta_inode in = { 0 };
	assert_int_equal(meta_getattr(m, file, false, &in), 0);
	assert_int_equal(in.nlink, 0);
	assert_int_equal(meta_forget(m, file), 0);
	assert_int_equal(meta_getattr(m, file, false, &in), -ENOENT);
	/* forgetting a linked inode does nothing */
	uint64_t kept = mk(m, dir, "kept", S_IFREG | 0644);
	assert_int_equal(meta_forget(m, kept), 0);
	assert_int_equal(nlink_of(m, kept), 1);
	assert_int_equal(meta_unlink(m, dir, "kept"), 0);
	assert_int_equal(nlink_of(m, META_ROOT_INO), 3);
	assert_int_equal(meta_rmdir(m, META_ROOT_INO, "d"), 0);
	assert_int_equal(nlink_of(m, META_ROOT_INO), 2);
	assert_int_equal(lookup_rc(m, META_ROOT_INO, "d", NULL), -ENOENT);
	/* a name can be used again after removal */
	uint64_t again = mk(m, META_ROOT_INO, "d", S_IFREG | 0644);
	assert_true(again != dir);
	/* orphans left open at a crash are gone after reopen */
	assert_int_equal(meta_unlink(m, META_ROOT_INO, "d"), 0);
	reopen(f);
	assert_int_equal(meta_getattr(f->m, again, false, &in), -ENOENT);
	assert_int_equal(meta_getattr(f->m, kept, false, &in), -ENOENT);
}

static void test_rename(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	uint64_t a = mk(m, META_ROOT_INO, "a", S_IFDIR | 0755);
	uint64_t b = mk(m, META_ROOT_INO, "b", S_IFDIR | 0755);
	uint64_t x = mk(m, a, "x", S_IFREG | 0644);
	uint64_t y = mk(m, b, "y", S_IFREG | 0644);
	uint64_t sub = mk(m, a, "sub", S_IFDIR | 0755);
	uint64_t got;

	/* plain move across directories */
	assert_int_equal(meta_rename(m, a, "x", b, "x2", 0), 0);
	assert_int_equal(lookup_rc(m, a, "x", NULL), -ENOENT);
	assert_int_equal(lookup_rc(m, b, "x2", &got), 0);
	assert_int_equal(got, x);
	/* over an existing file: atomic replace, the old inode loses its link */
	assert_int_equal(meta_rename(m, b, "x2", b, "y", 0), 0);
	assert_int_equal(lookup_rc(m, b, "y", &got), 0);
	assert_int_equal(got, x);
	assert_int_equal(nlink_of(m, y), 0);
	/* NOREPLACE */
	uint64_t z = mk(m, b, "z", S_IFREG | 0644);
	assert_int_equal(meta_rename(m, b, "y", b, "z", META_RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(meta_rename(m, b, "y", b, "w", META_RENAME_NOREPLACE), 0);
	/* EXCHANGE, also of a directory and a file across parents */
	assert_int_equal(meta_rename(m, b, "w", b, "z", META_RENAME_EXCHANGE), 0);
	assert_int_equal(lookup_rc(m, b, "w", &got), 0);
	assert_int_equal(got, z);
	assert_int_equal(lookup_rc(m, b, "z", &got), 0);
	assert_int_equal(got, x);
	assert_int_equal(meta_rename(m, b, "w", b, "none", META_RENAME_EXCHANGE), -ENOENT);
	assert_int_equal(meta_rename(m, a, "sub", b, "w", META_RENAME_EXCHANGE), 0);
	assert_int_equal(lookup_rc(m, b, "w", &got), 0);
	assert_int_equal(got, sub);
	assert_int_equal(lookup_rc(m, a, "sub", &got), 0);
	assert_int_equal(got, z);
	assert_int_equal(nlink_of(m, a), 2);
	assert_int_equal(nlink_of(m, b), 3);
	assert_int_equal(meta_rename(m, b, "w", a, "sub", META_RENAME_EXCHANGE), 0);
	/* directories: moved, type mismatches, into itself, over a non-empty one */
	assert_int_equal(meta_rename(m, a, "sub", b, "z", 0), -ENOTDIR);
	assert_int_equal(meta_rename(m, b, "z", a, "sub", 0), -EISDIR);
	assert_int_equal(meta_rename(m, META_ROOT_INO, "a", sub, "loop", 0), -EINVAL);
	assert_int_equal(meta_rename(m, META_ROOT_INO, "a", a, "self", 0), -EINVAL);
	uint64_t full = mk(m, b, "full", S_IFDIR | 0755);
	mk(m, full, "inside", S_IFREG | 0644);
	assert_int_equal(meta_rename(m, a, "sub", b, "full", 0), -ENOTEMPTY);
	uint64_t empty = mk(m, b, "empty", S_IFDIR | 0755);
	assert_int_equal(nlink_of(m, b), 4);
	assert_int_equal(meta_rename(m, a, "sub", b, "empty", 0), 0);
	assert_int_equal(nlink_of(m, empty), 0);
	assert_int_equal(nlink_of(m, a), 2);
	assert_int_equal(nlink_of(m, b), 4);
	assert_int_equal(lookup_rc(m, b, "empty", &got), 0);
	assert_int_equal(got, sub);
	/* moving the directory keeps its parent link right: now it can't move into b's child */
	assert_int_equal(meta_rename(m, META_ROOT_INO, "b", sub, "b", 0), -EINVAL);
	/* renaming onto itself, or onto another name of the same inode, changes nothing */
	assert_int_equal(meta_rename(m, b, "z", b, "z", 0), 0);
	struct meta_inode in = { 0 };
	assert_int_equal(meta_link(m, x, a, "x-again", &in), 0);
	meta_inode_release(&in);
	assert_int_equal(meta_rename(m, a, "x-again", b, "z", 0), 0);
	assert_int_equal(lookup_rc(m, a, "x-again", NULL), 0);
	assert_int_equal(nlink_of(m, x), 2);
	assert_int_equal(
	    meta_rename(m, b, "z", b, "q", META_RENAME_NOREPLACE | META_RENAME_EXCHANGE), -EINVAL);
	assert_int_equal(meta_rename(m, b, "nope", b, "q", 0), -ENOENT);
	reopen(f);
	assert_int_equal(lookup_rc(f->m, b, "empty", &got), 0);
	assert_int_equal(got, sub);
	assert_int_equal(nlink_of(f->m, b), 4);
}

static void test_link(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	struct meta_inode in = { 0 };
	uint64_t dir = mk(m, META_ROOT_INO, "d", S_IFDIR | 0755);
	uint64_t file = mk(m, META_ROOT_INO, "f", S_IFREG | 0644);

	assert_int_equal(meta_link(m, file, dir, "f2", &in), 0);
	assert_int_equal(in.nlink, 2);
	meta_inode_release(&in);
	assert_int_equal(nlink_of(m, file), 2);
	assert_int_equal(meta_link(m, file, dir, "f2", NULL), -EEXIST);
	assert_int_equal(meta_link(m, dir, META_ROOT_INO, "d2", NULL), -EPERM);
	assert_int_equal(meta_link(m, 12345, dir, "n", NULL), -ENOENT);
	assert_int_equal(meta_unlink(m, META_ROOT_INO, "f"), 0);
	assert_int_equal(nlink_of(m, file), 1);
	assert_int_equal(meta_forget(m, file), 0);
	assert_int_equal(lookup_rc(m, dir, "f2", NULL), 0);
}

static void test_setattr_content(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	struct meta_inode in = { 0 }, attr = { 0 };
	uint64_t file = mk(m, META_ROOT_INO, "f", S_IFREG | 0644);
	uint64_t dir = mk(m, META_ROOT_INO, "d", S_IFDIR | 0755);
	struct meta_chunk ch[3];

	for (int i = 0; i < 3; i++) {
		ch[i].idx = (uint32_t)i;
		memset(ch[i].key, i + 1, META_CHUNK_KEY);
		ch[i].len = META_CHUNK_SIZE;
	}
	ch[2].len = 100;
	assert_int_equal(meta_set_content(m, file, 2 * META_CHUNK_SIZE + 100, NULL, ch, 3, &in), 0);
	assert_int_equal(in.size, 2 * META_CHUNK_SIZE + 100);
	assert_int_equal(in.allocated, 2 * META_CHUNK_SIZE + META_BLOCK);
	assert_int_equal(meta_getattr(m, file, true, &in), 0);
	assert_int_equal(in.nchunks, 3);
	assert_int_equal(in.chunks[2].len, 100);
	assert_int_equal(in.chunks[1].key[0], 2);
	struct timespec before = in.ctime;
	meta_inode_release(&in);

	/* truncate down into the second chunk, then up again: a hole, no entry */
	attr.size = META_CHUNK_SIZE + 10;
	assert_int_equal(meta_setattr(m, file, META_SET_SIZE, &attr, NULL), 0);
	assert_int_equal(meta_getattr(m, file, true, &in), 0);
	assert_int_equal(in.nchunks, 2);
	assert_int_equal(in.chunks[1].len, 10);
	meta_inode_release(&in);
	attr.size = 5 * META_CHUNK_SIZE;
	assert_int_equal(meta_setattr(m, file, META_SET_SIZE, &attr, NULL), 0);
	assert_int_equal(meta_getattr(m, file, true, &in), 0);
	assert_int_equal(in.nchunks, 2);
	assert_int_equal(in.size, 5 * META_CHUNK_SIZE);
	assert_int_equal(in.chunks[1].len, 10);
	assert_int_equal(in.allocated, META_CHUNK_SIZE + META_BLOCK);
	assert_true(in.ctime.tv_sec > before.tv_sec ||
		    (in.ctime.tv_sec == before.tv_sec && in.ctime.tv_nsec >= before.tv_nsec));
	meta_inode_release(&in);
	/* a new map: slot 3 only */
	ch[0].idx = 3;
	memset(ch[0].key, 9, META_CHUNK_KEY);
	assert_int_equal(meta_set_content(m, file, 5 * META_CHUNK_SIZE, NULL, ch, 1, NULL), 0);
	assert_int_equal(meta_getattr(m, file, true, &in), 0);
	assert_int_equal(in.nchunks, 1);
	assert_int_equal(in.chunks[0].idx, 3);
	assert_int_equal(in.chunks[0].key[0], 9);
	meta_inode_release(&in);
	assert_int_equal(meta_set_content(m, file, 10, NULL, ch, 1, NULL), -EFBIG);
	/* out of order, or a slot twice: refused */
	ch[1].idx = 3;
	assert_int_equal(meta_set_content(m, file, 5 * META_CHUNK_SIZE, NULL, ch, 2, NULL), -EINVAL);
	ch[1].idx = 1;
	assert_int_equal(meta_set_content(m, file, 5 * META_CHUNK_SIZE, NULL, ch, 2, NULL), -EINVAL);
	/* the largest file, and one byte more */
	attr.size = META_FILE_MAX;
	assert_int_equal(meta_setattr(m, file, META_SET_SIZE, &attr, NULL), 0);
	attr.size = META_FILE_MAX + 1;
	assert_int_equal(meta_setattr(m, file, META_SET_SIZE, &attr, NULL), -EFBIG);
	attr.size = 999999999999999ull;
	assert_int_equal(meta_setattr(m, file, META_SET_SIZE, &attr, NULL), -EFBIG);
	attr.size = 5 * META_CHUNK_SIZE;
	assert_int_equal(meta_setattr(m, file, META_SET_SIZE, &attr, NULL), 0);

	/* chmod, chown, times with UTIME_NOW and explicit values */
	attr.mode = 0600;
	attr.uid = 33;
	attr.gid = 34;
	attr.atime.tv_sec = 1000;
	attr.atime.tv_nsec = 123456789;
	attr.mtime.tv_nsec = UTIME_NOW;
	assert_int_equal(meta_setattr(m, file,
				      META_SET_MODE | META_SET_UID | META_SET_GID | META_SET_ATIME |
					  META_SET_MTIME,
				      &attr, &in),
			 0);
	assert_int_equal(in.mode, S_IFREG | 0600);
	assert_int_equal(in.uid, 33);
	assert_int_equal(in.gid, 34);
	assert_int_equal(in.atime.tv_sec, 1000);
	assert_int_equal(in.atime.tv_nsec, 123456789);
	assert_true(in.mtime.tv_sec > 1000000000);
	meta_inode_release(&in);
	assert_int_equal(meta_setattr(m, dir, META_SET_SIZE, &attr, NULL), -EISDIR);
	assert_int_equal(meta_set_content(m, dir, 0, NULL, NULL, 0, NULL), -EISDIR);
	assert_int_equal(meta_setattr(m, 424242, META_SET_MODE, &attr, NULL), -ENOENT);
	reopen(f);
	assert_int_equal(meta_getattr(f->m, file, true, &in), 0);
	assert_int_equal(in.atime.tv_nsec, 123456789);
	assert_int_equal(in.chunks[0].key[0], 9);
	meta_inode_release(&in);
}

struct listing {
	int n;
	int limit;
	uint64_t last_pos;
	char seen[20000];
};

static int collect(void *arg, const char *name, uint64_t ino, uint32_t type, uint64_t next)
{
	struct listing *l = arg;
	int i;

	(void)ino;
	if (l->limit && l->n >= l->limit)
		return 1;
	assert_true(next > l->last_pos);
	l->last_pos = next;
	assert_true(S_ISREG(type));
	assert_int_equal(sscanf(name, "file-%d", &i), 1);
	assert_int_equal(l->seen[i], 0);
	l->seen[i] = 1;
	l->n++;
	return 0;
}

static void test_readdir_large(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	uint64_t dir = mk(m, META_ROOT_INO, "big", S_IFDIR | 0755);
	char name[64];
	static struct listing l;

	for (int i = 0; i < 20000; i++) {
		sprintf(name, "file-%d", i);
		assert_int_equal(meta_mknod(m, dir, name, S_IFREG | 0644, 0, 0, 0, 0, NULL, NULL), 0);
	}
	for (int i = 0; i < 20000; i += 2) {
		sprintf(name, "file-%d", i);
		assert_int_equal(meta_unlink(m, dir, name), 0);
	}
	/* list in pages of 100, resuming from the last position each time */
	memset(&l, 0, sizeof(l));
	uint64_t pos = 0;
	for (;;) {
		int before = l.n;
		l.limit = before + 100;
		assert_true(meta_readdir(m, dir, pos, collect, &l) >= 0);
		if (l.n == before)
			break;
		pos = l.last_pos;
	}
	assert_int_equal(l.n, 10000);
	for (int i = 1; i < 20000; i += 2)
		assert_int_equal(l.seen[i], 1);
	assert_int_equal(meta_rmdir(m, META_ROOT_INO, "big"), -ENOTEMPTY);
	struct meta_stats st;
	assert_int_equal(meta_stats(m, &st), 0);
	assert_int_equal(st.tombstones, 10000);
	assert_true(st.entries >= 10001);
	assert_int_equal(meta_readdir(m, 987654, 0, collect, &l), -ENOENT);
}

static void test_xattrs(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	uint64_t file = mk(m, META_ROOT_INO, "f", S_IFREG | 0644);
	char buf[256], big[META_XATTR_SIZE_MAX + 1];

	assert_int_equal(meta_getxattr(m, file, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(meta_setxattr(m, file, "user.a", "hello", 5, 0), 0);
	assert_int_equal(meta_setxattr(m, file, "user.a", "x", 1, META_XATTR_CREATE), -EEXIST);
	assert_int_equal(meta_setxattr(m, file, "user.b", "x", 1, META_XATTR_REPLACE), -ENODATA);
	assert_int_equal(meta_setxattr(m, file, "user.b", "", 0, META_XATTR_CREATE), 0);
	assert_int_equal(meta_getxattr(m, file, "user.a", NULL, 0), 5);
	assert_int_equal(meta_getxattr(m, file, "user.a", buf, 2), -ERANGE);
	assert_int_equal(meta_getxattr(m, file, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(meta_getxattr(m, file, "user.b", buf, sizeof(buf)), 0);
	assert_int_equal(meta_listxattr(m, file, NULL, 0), 14);
	assert_int_equal(meta_listxattr(m, file, buf, 5), -ERANGE);
	assert_int_equal(meta_listxattr(m, file, buf, sizeof(buf)), 14);
	assert_memory_equal(buf, "user.a\0user.b\0", 14);
	memset(big, 'v', sizeof(big));
	assert_int_equal(meta_setxattr(m, file, "user.big", big, sizeof(big), 0), -E2BIG);
	assert_int_equal(meta_setxattr(m, file, "user.big", big, META_XATTR_SIZE_MAX, 0), 0);
	assert_int_equal(meta_removexattr(m, file, "user.a"), 0);
	assert_int_equal(meta_removexattr(m, file, "user.a"), -ENODATA);
	assert_int_equal(meta_getxattr(m, file, "user.a", buf, sizeof(buf)), -ENODATA);
	assert_int_equal(meta_setxattr(m, file, "user.a", "again", 5, META_XATTR_CREATE), 0);
	assert_int_equal(meta_setxattr(m, 55555, "user.a", "x", 1, 0), -ENOENT);
	reopen(f);
	assert_int_equal(meta_getxattr(f->m, file, "user.a", buf, sizeof(buf)), 5);
	assert_memory_equal(buf, "again", 5);
	assert_int_equal(meta_getxattr(f->m, file, "user.big", NULL, 0), META_XATTR_SIZE_MAX);
	/* an unlinked file's xattrs go with it */
	assert_int_equal(meta_unlink(f->m, META_ROOT_INO, "f"), 0);
	assert_int_equal(meta_forget(f->m, file), 0);
	assert_int_equal(meta_listxattr(f->m, file, NULL, 0), -ENOENT);
	uint64_t other = mk(f->m, META_ROOT_INO, "g", S_IFREG | 0644);
	assert_int_equal(meta_listxattr(f->m, other, NULL, 0), 0);
}

/* An ACL as the kernel passes it: version 2, then (le16 tag, le16 perm, le32 id). */
static size_t acl_bytes(uint8_t *b, int n, const unsigned (*e)[3])
{
	b[0] = 2;
	b[1] = b[2] = b[3] = 0;
	for (int i = 0; i < n; i++) {
		uint8_t *q = b + 4 + 8 * i;
		q[0] = (uint8_t)e[i][0];
		q[1] = (uint8_t)(e[i][0] >> 8);
		q[2] = (uint8_t)e[i][1];
		q[3] = 0;
		q[4] = (uint8_t)e[i][2];
		q[5] = (uint8_t)(e[i][2] >> 8);
		q[6] = q[7] = 0;
	}
	return 4 + 8 * (size_t)n;
}

static uint32_t mode_of(struct meta *m, uint64_t ino)
{
	struct meta_inode in = { 0 };

	assert_int_equal(meta_getattr(m, ino, false, &in), 0);
	meta_inode_release(&in);
	return in.mode;
}

/* ACLs and the mode kept in step: an access ACL sets the group bits from its
 * mask, chmod rewrites the mask, an ACL equal to the mode is not kept, a
 * default ACL is inherited (the umask then unused) and masked by the create
 * mode, and a directory passes its default on. */
static void test_acls(void **state)
{
	struct fixture *f = *state;
	struct meta *m = f->m;
	uint64_t file = mk(m, META_ROOT_INO, "f", S_IFREG | 0640);
	uint64_t dir = mk(m, META_ROOT_INO, "d", S_IFDIR | 0755);
	const unsigned rx_nobody[][3] = { { 1, 6, 0 }, { 2, 5, 65534 }, { 4, 4, 0 }, { 0x10, 5, 0 },
					  { 0x20, 0, 0 } };
	const unsigned plain[][3] = { { 1, 7, 0 }, { 4, 0, 0 }, { 0x20, 0, 0 } };
	uint8_t acl[64], got[64];
	size_t len = acl_bytes(acl, 5, rx_nobody);
	struct meta_inode attr = { .mode = 0750 }, in = { 0 };

	assert_int_equal(meta_setxattr(m, file, META_ACL_ACCESS, acl, len, 0), 0);
	assert_int_equal(mode_of(m, file), S_IFREG | 0650);
	assert_int_equal(meta_setattr(m, file, META_SET_MODE, &attr, NULL), 0);
	assert_int_equal(meta_getxattr(m, file, META_ACL_ACCESS, got, sizeof(got)), (ssize_t)len);
	assert_int_equal(got[4 + 8 * 3 + 2], 5); /* mask r-x */
	assert_int_equal(got[4 + 8 * 0 + 2], 7); /* owner rwx */
	assert_int_equal(got[4 + 8 * 2 + 2], 4); /* the group entry untouched */
	/* an ACL that says no more than the mode: the mode changes, no xattr stays */
	assert_int_equal(meta_setxattr(m, file, META_ACL_ACCESS, acl, acl_bytes(acl, 3, plain), 0), 0);
	assert_int_equal(mode_of(m, file), S_IFREG | 0700);
	assert_int_equal(meta_getxattr(m, file, META_ACL_ACCESS, got, sizeof(got)), -ENODATA);
	/* malformed: refused, nothing changes */
	acl[0] = 1;
	assert_int_equal(meta_setxattr(m, file, META_ACL_ACCESS, acl, 28, 0), -EINVAL);
	assert_int_equal(meta_setxattr(m, file, META_ACL_DEFAULT, acl, 28, 0), -EACCES);
	/* inheritance */
	len = acl_bytes(acl, 5, rx_nobody);
	acl[4 + 2] = 7;	       /* u::rwx */
	acl[4 + 8 * 3 + 2] = 7; /* m::rwx */
	assert_int_equal(meta_setxattr(m, dir, META_ACL_DEFAULT, acl, len, 0), 0);
	assert_int_equal(meta_mknod(m, dir, "new", S_IFREG | 0666, 022, 0, 0, 0, NULL, &in), 0);
	assert_int_equal(in.mode, S_IFREG | 0660); /* mask & mode; the umask not applied */
	meta_inode_release(&in);
	assert_int_equal(meta_getxattr(m, in.ino, META_ACL_ACCESS, got, sizeof(got)), (ssize_t)len);
	assert_int_equal(meta_getxattr(m, in.ino, META_ACL_DEFAULT, got, sizeof(got)), -ENODATA);
	assert_int_equal(meta_mknod(m, dir, "sub", S_IFDIR | 0777, 022, 0, 0, 0, NULL, &in), 0);
	assert_int_equal(in.mode, S_IFDIR | 0770);
	meta_inode_release(&in);
	assert_int_equal(meta_getxattr(m, in.ino, META_ACL_DEFAULT, got, sizeof(got)), (ssize_t)len);
	assert_memory_equal(got, acl, len);
	/* elsewhere the umask applies and no ACL appears */
	assert_int_equal(meta_mknod(m, META_ROOT_INO, "plain", S_IFREG | 0666, 022, 0, 0, 0, NULL,
				    &in), 0);
	assert_int_equal(in.mode, S_IFREG | 0644);
	meta_inode_release(&in);
	assert_int_equal(meta_listxattr(m, in.ino, NULL, 0), 0);
}

/* An inode record of version 1 (a dense grid, holes as zero keys), as
 * written before maps went sparse, still reads: its stored slots only. */
static void test_inode_record_v1(void **state)
{
	FILE *fp = fopen(CASKFS_SRCDIR "/tests/data/golden/meta/inode-v1.rec", "rb");
	uint8_t buf[512];
	size_t n;
	struct meta_inode in = { 0 };

	(void)state;
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_int_equal(n, 148);
	assert_int_equal(meta_inode_decode(buf, n, true, &in), 0);
	assert_int_equal(in.size, 2 * META_CHUNK_SIZE + 100);
	assert_int_equal(in.mode, S_IFREG | 0644);
	assert_int_equal(in.nchunks, 2);
	assert_int_equal(in.chunks[0].idx, 0);
	assert_int_equal(in.chunks[0].key[0], 0xa1);
	assert_int_equal(in.chunks[1].idx, 2);
	assert_int_equal(in.chunks[1].len, 100);
	assert_int_equal(in.allocated, META_CHUNK_SIZE + META_BLOCK);
	meta_inode_release(&in);
	assert_int_equal(meta_inode_decode(buf, n, false, &in), 0);
	assert_int_equal(in.nchunks, 2);
	assert_null(in.chunks);
	/* cut short anywhere: refused, never read past the end */
	for (size_t cut = 0; cut < n; cut++)
		assert_int_equal(meta_inode_decode(buf, cut, true, &in), -EBADMSG);
}

/* Inode numbers are reserved in blocks: unique across reopens and failed
 * creates, in this node's range, counting up. */
static void test_inode_numbers(void **state)
{
	struct fixture *f = *state;
	uint64_t seen[2600];
	int n = 0;
	char name[32];

	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 800; i++) {
			snprintf(name, sizeof(name), "r%d-%d", round, i);
			seen[n++] = mk(f->m, META_ROOT_INO, name, S_IFREG | 0644);
			/* a create that fails takes no number anyone sees */
			struct meta_inode in = { 0 };
			if (i % 100 == 0)
				assert_int_equal(meta_mknod(f->m, META_ROOT_INO, name, S_IFREG | 0644, 0,
							    0, 0, 0, NULL, &in),
						 -EEXIST);
		}
		reopen(f); /* a restart continues after the reservation */
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(seen[i] >> 48, 7);
		if (i > 0)
			assert_true(seen[i] > seen[i - 1]);
	}
	for (int i = 0; i < n; i++) {
		struct meta_inode in = { 0 };
		assert_int_equal(meta_getattr(f->m, seen[i], false, &in), 0);
		meta_inode_release(&in);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inode_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setgid_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlink_rmdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_link, setup, teardown),
		cmocka_unit_test_setup_teardown(test_setattr_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readdir_large, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xattrs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acls, setup, teardown),
		cmocka_unit_test(test_inode_record_v1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
