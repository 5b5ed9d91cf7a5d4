/*
 * stats - counts of the namespace for `caskfs status` and /metrics: inodes,
 * live entries, the tombstones kept for replication, and the bytes of the
 * LMDB file in use. One read transaction; tombstones are counted by a scan.
 * docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "meta_i.h"

static uint64_t count_tombstones(MDB_txn *txn, MDB_dbi dbi)
{
	MDB_cursor *c;
	MDB_val key, val;
	uint64_t n = 0;

	if (mdb_cursor_open(txn, dbi, &c))
		return 0;
	for (int g = mdb_cursor_get(c, &key, &val, MDB_FIRST); g == 0;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT))
		if (val.mv_size >= 2 && (((const uint8_t *)val.mv_data)[1] & META_REC_DELETED))
			n++;
	mdb_cursor_close(c);
	return n;
}

int meta_stats(struct meta *m, struct meta_stats *st)
{
	MDB_txn *txn;
	MDB_stat s;
	MDB_envinfo info;
	int rc = meta_txn_read(m, &txn);

	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	if (mdb_stat(txn, m->inodes, &s) == 0)
		st->inodes = s.ms_entries;
	st->tombstones = count_tombstones(txn, m->entries) + count_tombstones(txn, m->xattrs);
	if (mdb_stat(txn, m->entries, &s) == 0)
		st->entries = s.ms_entries - (st->tombstones - count_tombstones(txn, m->xattrs));
	if (mdb_env_info(m->env, &info) == 0 && mdb_env_stat(m->env, &s) == 0)
		st->map_bytes = (uint64_t)(info.me_last_pgno + 1) * s.ms_psize;
	mdb_txn_abort(txn);
	return 0;
}

int meta_reserved(struct meta *m, uint64_t *bytes)
{
	MDB_txn *txn;
	int rc = meta_txn_read(m, &txn);

	if (rc)
		return rc;
	rc = meta_state_read(m, txn, "reserved", bytes);
	if (rc == -ENOENT) {
		*bytes = 0;
		rc = 0;
	}
	mdb_txn_abort(txn);
	return rc;
}
