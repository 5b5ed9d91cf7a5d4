/*
 * read - the read-only operations on inodes: getattr, lookup of a name, and
 * the scan of every inode (gc marks from it). Each runs in one read
 * transaction, so it sees the namespace at one instant and never waits for
 * the writer; link counts come from the local counts table. docs/FORMAT.md
 * ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>

#include "meta_i.h"

int meta_getattr(struct meta *m, uint64_t ino, bool chunks, struct meta_inode *out)
{
	MDB_txn *txn;
	int rc = meta_txn_read(m, &txn);

	if (rc)
		return rc;
	rc = meta_inode_get(m, txn, ino, chunks, out);
	if (rc == 0)
		meta_nlink_fill(m, txn, out);
	mdb_txn_abort(txn);
	return rc;
}

int meta_lookup(struct meta *m, uint64_t parent, const char *name, struct meta_inode *out)
{
	struct meta_inode p = { 0 };
	struct meta_dirent d;
	MDB_txn *txn;
	int rc = meta_name_check(name);

	if (rc)
		return rc == -EINVAL ? -ENOENT : rc;
	rc = meta_txn_read(m, &txn);
	if (rc)
		return rc;
	rc = meta_dir_get(m, txn, parent, &p);
	if (rc == 0)
		rc = meta_entry_get(m, txn, parent, name, &d);
	if (rc == 0)
		rc = meta_inode_get(m, txn, d.child, false, out);
	if (rc == 0)
		meta_nlink_fill(m, txn, out);
	mdb_txn_abort(txn);
	return rc;
}

int meta_scan_inodes(struct meta *m, meta_inode_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val key, val;
	int g, rc = meta_txn_read(m, &txn), stop = 0;

	if (rc)
		return rc;
	rc = meta_errno(mdb_cursor_open(txn, m->inodes, &c));
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	for (g = mdb_cursor_get(c, &key, &val, MDB_FIRST); g == 0 && !stop;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct meta_inode in = { 0 };
		if (key.mv_size != 8)
			continue;
		in.ino = meta_get_be64(key.mv_data);
		if (meta_inode_decode(val.mv_data, val.mv_size, true, &in) < 0) {
			fprintf(stderr, "caskfs: meta: inode %llu has a damaged record\n",
				(unsigned long long)in.ino);
			continue;
		}
		meta_nlink_fill(m, txn, &in);
		stop = fn(arg, &in);
		meta_inode_release(&in);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (stop)
		return stop;
	return g == 0 || g == MDB_NOTFOUND ? 0 : meta_errno(g);
}
