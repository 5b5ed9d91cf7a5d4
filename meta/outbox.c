/*
 * outbox - what this node has to push to its peers: every replicated record
 * a local change writes is also appended, in the same transaction, to the
 * outbox under a growing seq (table.c, meta_outbox_add); the pusher reads it
 * in order and trims what every peer acknowledged, whose seqs it keeps in
 * the state table. docs/REPLICATION.md, docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>

#include "meta_i.h"
#include "store/endian.h"

void meta_set_replication(struct meta *m, bool on)
{
	m->replicate = on;
}

int meta_outbox_read(struct meta *m, uint64_t after, int max, meta_outbox_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	int rc = meta_txn_read(m, &txn), n = 0;

	if (rc)
		return rc;
	rc = meta_errno(mdb_cursor_open(txn, m->outbox, &c));
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	meta_be64(k, after + 1);
	for (int g = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); g == 0 && n < max;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8)
			continue;
		rc = fn(arg, meta_get_be64(key.mv_data), val.mv_data, val.mv_size);
		if (rc)
			break;
		n++;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc < 0 ? rc : n;
}

static int do_trim(struct meta *m, MDB_txn *txn, void *arg)
{
	uint64_t upto = *(uint64_t *)arg;
	MDB_cursor *c;
	MDB_val key, val;
	int rc = mdb_cursor_open(txn, m->outbox, &c);

	if (rc)
		return meta_errno(rc);
	while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
		if (key.mv_size == 8 && meta_get_be64(key.mv_data) > upto)
			break;
		if ((rc = mdb_cursor_del(c, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return rc == 0 || rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

int meta_outbox_trim(struct meta *m, uint64_t upto)
{
	return meta_txn_write(m, do_trim, &upto);
}

void meta_outbox_state(struct meta *m, uint64_t *last, uint64_t *pending)
{
	MDB_txn *txn;
	MDB_stat st;

	*last = m->outbox_seq;
	*pending = 0;
	if (meta_txn_read(m, &txn) == 0) {
		if (mdb_stat(txn, m->outbox, &st) == 0)
			*pending = st.ms_entries;
		mdb_txn_abort(txn);
	}
}

int meta_state_get(struct meta *m, const char *name, uint64_t *v)
{
	MDB_txn *txn;
	MDB_val key = { strlen(name), (void *)name }, val;
	int rc = meta_txn_read(m, &txn);

	if (rc)
		return rc;
	rc = meta_errno(mdb_get(txn, m->state, &key, &val));
	if (rc == 0)
		*v = val.mv_size == 8 ? get_le64(val.mv_data) : 0;
	mdb_txn_abort(txn);
	return rc;
}

struct state_args {
	const char *name;
	uint64_t v;
};

static int do_state_put(struct meta *m, MDB_txn *txn, void *arg)
{
	struct state_args *a = arg;

	return meta_state_write(m, txn, a->name, a->v);
}

int meta_state_put(struct meta *m, const char *name, uint64_t v)
{
	struct state_args a = { name, v };

	if (strlen(name) > 200)
		return -EINVAL;
	return meta_txn_write(m, do_state_put, &a);
}
