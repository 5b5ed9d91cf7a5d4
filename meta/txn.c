/*
 * txn - how every namespace operation runs: inside one LMDB transaction, a
 * write transaction committed whole or not at all (so a rename, link or
 * unlink is seen whole), and the mapping of LMDB's codes to errnos, done
 * here once. The environment runs with MDB_NOSYNC: durability is meta_sync(),
 * which the caller orders after the store's sync. docs/FORMAT.md
 * ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>

#include "meta_i.h"

int meta_errno(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return 0;
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_KEYEXIST:
		return -EEXIST;
	case MDB_MAP_FULL:
		return -ENOSPC;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
	case MDB_VERSION_MISMATCH:
		return -EBADMSG;
	default:
		return rc > 0 ? -rc : -EIO;
	}
}

int meta_txn_write(struct meta *m, meta_txn_fn fn, void *arg)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(m->env, NULL, 0, &txn);

	if (rc)
		return meta_errno(rc);
	m->ino_reserved = false;
	rc = fn(m, txn, arg);
	if (rc)
		mdb_txn_abort(txn);
	else
		rc = meta_errno(mdb_txn_commit(txn));
	if (rc && m->ino_reserved)
		m->ino_next = m->ino_end = 0; /* not written: read it again */
	return rc;
}

int meta_txn_read(struct meta *m, MDB_txn **txn)
{
	return meta_errno(mdb_txn_begin(m->env, NULL, MDB_RDONLY, txn));
}

uint64_t meta_last_txn(struct meta *m)
{
	MDB_envinfo info;

	return mdb_env_info(m->env, &info) == 0 ? (uint64_t)info.me_last_txnid : 0;
}

int meta_sync(struct meta *m)
{
	return meta_errno(mdb_env_sync(m->env, 1));
}
