/*
 * rename - rename in all its forms (over an existing target, NOREPLACE,
 * EXCHANGE) and hard links, each one write transaction: entries, link counts
 * and directory parents change together or not at all. A directory may not
 * move into itself: the parents table is walked up from the target. A
 * renamed entry carries the binding of the one it replaces (its origin), so
 * that replicas tell a rename from a hard link (rebind.c).
 * docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

struct rename_args {
	uint64_t parent, newparent;
	const char *name, *newname;
	unsigned flags;
};

/* -EINVAL when dir is ancestor (or self) of start. */
static int check_not_ancestor(struct meta *m, MDB_txn *txn, uint64_t dir, uint64_t start)
{
	uint64_t cur = start;

	for (int depth = 0; depth < 100000; depth++) {
		uint64_t up;
		if (cur == dir)
			return -EINVAL;
		if (cur == META_ROOT_INO)
			return 0;
		int rc = meta_parent_get(m, txn, cur, &up);
		if (rc)
			return rc == -ENOENT ? 0 : rc;
		cur = up;
	}
	return -ELOOP;
}

/* Moves directory ino from parent `from` to `to` in the local tables. */
static int move_dir(struct meta *m, MDB_txn *txn, uint64_t ino, uint64_t from, uint64_t to)
{
	int rc = 0;

	if (from != to) {
		rc = meta_count_add(m, txn, from, 0, -1, NULL);
		if (rc == 0)
			rc = meta_count_add(m, txn, to, 0, 1, NULL);
	}
	return rc ? rc : meta_parent_put(m, txn, ino, to);
}

static int do_rename(struct meta *m, MDB_txn *txn, void *arg)
{
	struct rename_args *a = arg;
	struct meta_inode p = { 0 }, np = { 0 }, src = { 0 }, dst = { 0 };
	struct meta_dirent sd, dd;
	struct timespec t = meta_now();
	bool have_dst;
	int rc;

	rc = meta_inode_get(m, txn, a->parent, false, &p);
	if (rc == 0)
		rc = meta_inode_get(m, txn, a->newparent, false, &np);
	meta_inode_release(&p);
	meta_inode_release(&np);
	if (rc == 0 && (!S_ISDIR(p.mode) || !S_ISDIR(np.mode)))
		rc = -ENOTDIR;
	if (rc == 0)
		rc = meta_entry_get(m, txn, a->parent, a->name, &sd);
	if (rc == 0)
		rc = meta_inode_get(m, txn, sd.child, true, &src);
	if (rc)
		goto out;
	rc = meta_entry_get(m, txn, a->newparent, a->newname, &dd);
	if (rc && rc != -ENOENT)
		goto out;
	have_dst = rc == 0;
	rc = 0;
	if (have_dst)
		rc = meta_inode_get(m, txn, dd.child, true, &dst);
	if (rc)
		goto out;

	if (a->flags & META_RENAME_EXCHANGE) {
		if (!have_dst) {
			rc = -ENOENT;
			goto out;
		}
		if (S_ISDIR(src.mode))
			rc = check_not_ancestor(m, txn, src.ino, a->newparent);
		if (rc == 0 && S_ISDIR(dst.mode))
			rc = check_not_ancestor(m, txn, dst.ino, a->parent);
		/* each name moves the other's binding (rebind.c) */
		struct store_version sb = meta_dirent_binding(&sd), db = meta_dirent_binding(&dd);
		if (rc == 0)
			rc = meta_entry_move(m, txn, a->parent, a->name, dst.ino, dst.mode, &db);
		if (rc == 0)
			rc = meta_entry_move(m, txn, a->newparent, a->newname, src.ino, src.mode,
					     &sb);
		if (rc == 0 && S_ISDIR(src.mode))
			rc = move_dir(m, txn, src.ino, a->parent, a->newparent);
		if (rc == 0 && S_ISDIR(dst.mode))
			rc = move_dir(m, txn, dst.ino, a->newparent, a->parent);
		if (rc == 0) {
			src.ctime = dst.ctime = t;
			rc = meta_inode_put(m, txn, &src);
		}
		if (rc == 0)
			rc = meta_inode_put(m, txn, &dst);
		goto times;
	}
	if (have_dst && (a->flags & META_RENAME_NOREPLACE)) {
		rc = -EEXIST;
		goto out;
	}
	if (S_ISDIR(src.mode)) {
		rc = check_not_ancestor(m, txn, src.ino, a->newparent);
		if (rc)
			goto out;
	}
	if (have_dst) {
		if (dst.ino == src.ino)
			goto out; /* two names of one inode: nothing to do */
		if (S_ISDIR(src.mode) && !S_ISDIR(dst.mode))
			rc = -ENOTDIR;
		else if (!S_ISDIR(src.mode) && S_ISDIR(dst.mode))
			rc = -EISDIR;
		else if (S_ISDIR(dst.mode))
			rc = meta_dir_empty(m, txn, dst.ino);
		if (rc == 0 && S_ISDIR(dst.mode)) {
			rc = meta_count_add(m, txn, a->newparent, 0, -1, NULL);
			if (rc == 0)
				rc = meta_u64_del(txn, m->parents, dst.ino);
		}
		if (rc == 0)
			rc = meta_link_drop(m, txn, &dst, t);
		if (rc)
			goto out;
	}
	/* the new name continues the old one's binding: a peer that renamed
	 * the same binding elsewhere keeps only the later name (rebind.c) */
	struct store_version sb = meta_dirent_binding(&sd);
	rc = meta_entry_move(m, txn, a->newparent, a->newname, src.ino, src.mode, &sb);
	if (rc == 0)
		rc = meta_entry_put(m, txn, a->parent, a->name, 0, src.mode);
	if (rc == 0 && S_ISDIR(src.mode))
		rc = move_dir(m, txn, src.ino, a->parent, a->newparent);
	if (rc == 0) {
		src.ctime = t;
		rc = meta_inode_put(m, txn, &src);
	}
times:
	if (rc == 0)
		rc = meta_dir_touch(m, txn, a->parent, t);
	if (rc == 0 && a->newparent != a->parent)
		rc = meta_dir_touch(m, txn, a->newparent, t);
out:
	meta_inode_release(&src);
	meta_inode_release(&dst);
	return rc;
}

int meta_rename(struct meta *m, uint64_t parent, const char *name, uint64_t newparent,
		const char *newname, unsigned flags)
{
	struct rename_args a = { parent, newparent, name, newname, flags };
	int rc = meta_name_check(name);

	if (flags & ~(META_RENAME_NOREPLACE | META_RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & META_RENAME_NOREPLACE) && (flags & META_RENAME_EXCHANGE))
		return -EINVAL;
	if (rc == 0)
		rc = meta_name_check(newname);
	if (rc)
		return rc;
	if (parent == newparent && strcmp(name, newname) == 0) {
		struct meta_inode in = { 0 };
		rc = meta_lookup(m, parent, name, &in);
		meta_inode_release(&in);
		if (rc == 0 && (flags & META_RENAME_NOREPLACE))
			rc = -EEXIST;
		return rc;
	}
	return meta_txn_write(m, do_rename, &a);
}

struct link_args {
	uint64_t ino, newparent;
	const char *newname;
	struct meta_inode *out;
};

static int do_link(struct meta *m, MDB_txn *txn, void *arg)
{
	struct link_args *a = arg;
	struct meta_inode in = { 0 }, np = { 0 };
	struct meta_dirent d;
	struct timespec t = meta_now();
	int rc = meta_dir_get(m, txn, a->newparent, &np);

	if (rc == 0)
		rc = meta_inode_get(m, txn, a->ino, true, &in);
	if (rc == 0 && S_ISDIR(in.mode))
		rc = -EPERM;
	if (rc == 0) {
		rc = meta_entry_get(m, txn, a->newparent, a->newname, &d);
		rc = rc == 0 ? -EEXIST : rc == -ENOENT ? 0 : rc;
	}
	if (rc == 0)
		rc = meta_entry_put(m, txn, a->newparent, a->newname, in.ino, in.mode);
	if (rc == 0)
		rc = meta_count_add(m, txn, in.ino, 1, 0, &in.nlink);
	if (rc == 0)
		rc = meta_u64_del(txn, m->orphans, in.ino);
	if (rc == 0) {
		in.ctime = t;
		rc = meta_inode_put(m, txn, &in);
	}
	if (rc == 0)
		rc = meta_dir_touch(m, txn, a->newparent, t);
	if (rc == 0 && a->out) {
		free(in.chunks);
		in.chunks = NULL;
		in.nchunks = 0;
		*a->out = in;
		in.target = NULL;
	}
	meta_inode_release(&in);
	return rc;
}

int meta_link(struct meta *m, uint64_t ino, uint64_t newparent, const char *newname,
	      struct meta_inode *out)
{
	struct link_args a = { ino, newparent, newname, out };
	int rc = meta_name_check(newname);

	return rc ? rc : meta_txn_write(m, do_link, &a);
}
