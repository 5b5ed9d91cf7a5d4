/*
 * remove - unlink, rmdir and the end of an inode. Removing a name leaves a
 * tombstone (an older copy from a peer cannot bring it back); the inode whose
 * last link went becomes an orphan, still readable through open handles, and
 * is deleted when the kernel forgets it, or at the next open after a crash.
 * docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

struct remove_args {
	uint64_t parent;
	const char *name;
	bool dir;
};

static int do_remove(struct meta *m, MDB_txn *txn, void *arg)
{
	struct remove_args *a = arg;
	struct meta_inode parent = { 0 }, in = { 0 };
	struct meta_dirent d;
	struct timespec t = meta_now();
	int rc = meta_dir_get(m, txn, a->parent, &parent);

	if (rc)
		return rc;
	rc = meta_entry_get(m, txn, a->parent, a->name, &d);
	if (rc == 0)
		rc = meta_inode_get(m, txn, d.child, true, &in);
	if (rc == 0 && a->dir && !S_ISDIR(in.mode))
		rc = -ENOTDIR;
	if (rc == 0 && !a->dir && S_ISDIR(in.mode))
		rc = -EISDIR;
	if (rc == 0 && a->dir && in.ino == META_ROOT_INO)
		rc = -EBUSY;
	if (rc == 0 && a->dir)
		rc = meta_dir_empty(m, txn, in.ino);
	if (rc == 0)
		rc = meta_entry_put(m, txn, a->parent, a->name, 0, in.mode);
	if (rc == 0 && a->dir) {
		rc = meta_count_add(m, txn, a->parent, 0, -1, NULL);
		if (rc == 0)
			rc = meta_u64_del(txn, m->parents, in.ino);
	}
	if (rc == 0)
		rc = meta_link_drop(m, txn, &in, t);
	if (rc == 0)
		rc = meta_dir_touch(m, txn, a->parent, t);
	meta_inode_release(&in);
	return rc;
}

int meta_unlink(struct meta *m, uint64_t parent, const char *name)
{
	struct remove_args a = { parent, name, false };
	int rc = meta_name_check(name);

	return rc ? (rc == -EINVAL ? -ENOENT : rc) : meta_txn_write(m, do_remove, &a);
}

int meta_rmdir(struct meta *m, uint64_t parent, const char *name)
{
	struct remove_args a = { parent, name, true };
	int rc = meta_name_check(name);

	if (rc == -EINVAL)
		return name && strcmp(name, ".") == 0 ? -EINVAL : -ENOTEMPTY;
	return rc ? rc : meta_txn_write(m, do_remove, &a);
}

int meta_orphan_purge(struct meta *m, MDB_txn *txn, uint64_t ino)
{
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	int rc;

	meta_be64(k, ino);
	rc = meta_reserved_move(m, txn, &key, NULL);
	if (rc == 0)
		rc = meta_u64_del(txn, m->inodes, ino);
	if (rc == 0)
		rc = meta_u64_del(txn, m->counts, ino);
	if (rc == 0)
		rc = meta_u64_del(txn, m->orphans, ino);
	if (rc)
		return rc;
	rc = mdb_cursor_open(txn, m->xattrs, &c);
	if (rc)
		return meta_errno(rc);
	meta_be64(k, ino);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE)) {
		if (key.mv_size < 8 || meta_get_be64(key.mv_data) != ino)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc)
			break;
		meta_be64(k, ino);
		key.mv_size = 8;
		key.mv_data = k;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

static int do_forget(struct meta *m, MDB_txn *txn, void *arg)
{
	uint64_t ino = *(uint64_t *)arg;
	MDB_val val;

	if (meta_u64_get(txn, m->orphans, ino, &val) == -ENOENT)
		return 0;
	return meta_orphan_purge(m, txn, ino);
}

struct forget_many_args {
	const uint64_t *inos;
	size_t n;
};

static int do_forget_many(struct meta *m, MDB_txn *txn, void *arg)
{
	struct forget_many_args *a = arg;
	int rc = 0;

	for (size_t i = 0; i < a->n && rc == 0; i++)
		rc = do_forget(m, txn, (void *)&a->inos[i]);
	return rc;
}

int meta_forget_many(struct meta *m, const uint64_t *inos, size_t n)
{
	struct forget_many_args a = { inos, n };
	MDB_txn *txn;
	MDB_val val;
	bool orphans = false;
	int rc = meta_txn_read(m, &txn);

	/* as meta_forget: most are no orphans, and a read says so */
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !orphans && rc == 0; i++) {
		rc = meta_u64_get(txn, m->orphans, inos[i], &val);
		orphans = rc == 0;
		rc = rc == -ENOENT ? 0 : rc;
	}
	mdb_txn_abort(txn);
	if (rc || !orphans)
		return rc;
	return meta_txn_write(m, do_forget_many, &a);
}

int meta_forget(struct meta *m, uint64_t ino)
{
	MDB_txn *txn;
	MDB_val val;
	int rc = meta_txn_read(m, &txn);

	/* the kernel forgets every inode it drops from its cache (10,000 after
	 * `drop_caches` on a big directory): most are not orphans, and a read
	 * transaction says so without taking the writer's lock */
	if (rc)
		return rc;
	rc = meta_u64_get(txn, m->orphans, ino, &val);
	mdb_txn_abort(txn);
	if (rc == -ENOENT)
		return 0;
	return meta_txn_write(m, do_forget, &ino);
}
