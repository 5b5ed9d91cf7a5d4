/*
 * dir - listing a directory. Entries are keyed by (parent, position, name)
 * with the position a hash of the name, so a directory is one range of the
 * entries table in position order and readdir resumes at a position without
 * counting: listing any size is linear. Removed entries stay as tombstones
 * and are skipped. docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "meta_i.h"

int meta_dir_empty(struct meta *m, MDB_txn *txn, uint64_t ino)
{
	MDB_cursor *c;
	uint8_t k[16];
	MDB_val key = { 16, k }, val;
	int rc = mdb_cursor_open(txn, m->entries, &c);

	if (rc)
		return meta_errno(rc);
	meta_be64(k, ino);
	meta_be64(k + 8, 0);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct meta_dirent d;
		if (key.mv_size < 16 || meta_get_be64(key.mv_data) != ino)
			break;
		if (meta_dirent_decode(val.mv_data, val.mv_size, &d) == 0 && !d.deleted) {
			mdb_cursor_close(c);
			return -ENOTEMPTY;
		}
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

int meta_readdir(struct meta *m, uint64_t ino, uint64_t pos, meta_readdir_fn fn, void *arg)
{
	struct meta_inode dir = { 0 };
	MDB_txn *txn;
	MDB_cursor *c;
	uint8_t k[16];
	MDB_val key = { 16, k }, val;
	char name[META_NAME_MAX + 1];
	int rc = meta_txn_read(m, &txn);

	if (rc)
		return rc;
	rc = meta_dir_get(m, txn, ino, &dir);
	if (rc == 0)
		rc = meta_errno(mdb_cursor_open(txn, m->entries, &c));
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	meta_be64(k, ino);
	meta_be64(k + 8, pos);
	int g, stop = 0;
	for (g = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); g == 0;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct meta_dirent d;
		size_t nlen = key.mv_size - 16;

		if (key.mv_size < 17 || nlen > META_NAME_MAX || meta_get_be64(key.mv_data) != ino)
			break;
		if (meta_dirent_decode(val.mv_data, val.mv_size, &d) < 0 || d.deleted)
			continue;
		memcpy(name, (const uint8_t *)key.mv_data + 16, nlen);
		name[nlen] = '\0';
		stop = fn(arg, name, d.child, d.type,
			  meta_get_be64((const uint8_t *)key.mv_data + 8) + 1);
		if (stop)
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (stop)
		return stop;
	return g == 0 || g == MDB_NOTFOUND ? 0 : meta_errno(g);
}
