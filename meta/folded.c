/*
 * folded - which fsync journal records an inode's committed content already
 * holds: a local table (be64 ino -> le64 seq) written in the transaction
 * that commits the content (meta_set_contents with jseq), so the journal's
 * replay at mount (fs/daemon/journal_replay.c) skips exactly the records
 * the namespace has caught up with. docs/FORMAT.md ("Fsync journal").
 */
#include <errno.h>
#include <lmdb.h>

#include "meta_i.h"
#include "store/endian.h"

int meta_folded_get(struct meta *m, uint64_t ino, uint64_t *seq)
{
	MDB_txn *txn;
	MDB_val val;
	int rc = meta_txn_read(m, &txn);

	*seq = 0;
	if (rc)
		return rc;
	rc = meta_u64_get(txn, m->folded, ino, &val);
	if (rc == 0 && val.mv_size == 8)
		*seq = get_le64(val.mv_data);
	else if (rc == 0)
		rc = -EBADMSG;
	mdb_txn_abort(txn);
	return rc;
}

int meta_folded_max(struct meta *m, uint64_t *max)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = meta_txn_read(m, &txn);

	*max = 0;
	if (rc)
		return rc;
	rc = mdb_cursor_open(txn, m->folded, &c);
	if (rc == 0) {
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
			if (v.mv_size == 8 && get_le64(v.mv_data) > *max)
				*max = get_le64(v.mv_data);
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

static int do_prune(struct meta *m, MDB_txn *txn, void *arg)
{
	uint64_t below = *(const uint64_t *)arg;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, m->folded, &c);

	if (rc)
		return meta_errno(rc);
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
		if (v.mv_size != 8 || get_le64(v.mv_data) < below)
			if ((rc = mdb_cursor_del(c, 0)) != 0)
				break;
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

int meta_folded_prune(struct meta *m, uint64_t below)
{
	return meta_txn_write(m, do_prune, &below);
}
