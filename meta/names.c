/*
 * names - the local index from an inode to the live entries that name it
 * (the `names` table: be64 child, then the entry's key). It is derived from
 * the entries and never replicated: meta_entry_store keeps it in step with
 * every write of an entry record, and a namespace written before it existed
 * gets it built once at open. With it, apply finds the other names of an
 * object (rebind.c) and a conflict copy finds its file's name without a scan
 * of every entry. docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "meta_i.h"

#define BUILT "names_built"

int meta_names_each(struct meta *m, MDB_txn *txn, uint64_t child, meta_names_fn fn, void *arg)
{
	MDB_cursor *c;
	uint8_t k[8], *keys = NULL;
	MDB_val key = { 8, k }, val;
	size_t used = 0, cap = 0;
	int rc = mdb_cursor_open(txn, m->names, &c), stop = 0;

	if (rc)
		return meta_errno(rc);
	/* the keys first, each as u16 length then bytes: fn may write, which
	 * a cursor does not survive */
	meta_be64(k, child);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if (key.mv_size < 8 + 17 || meta_get_be64(key.mv_data) != child)
			break;
		size_t n = key.mv_size - 8;
		if (used + 2 + n > cap) {
			size_t ncap = cap ? cap * 2 : 1024;
			uint8_t *p = realloc(keys, ncap);
			if (!p) {
				rc = ENOMEM;
				break;
			}
			keys = p;
			cap = ncap;
		}
		keys[used] = (uint8_t)(n >> 8);
		keys[used + 1] = (uint8_t)n;
		memcpy(keys + used + 2, (const uint8_t *)key.mv_data + 8, n);
		used += 2 + n;
	}
	mdb_cursor_close(c);
	if (rc == ENOMEM) {
		free(keys);
		return -ENOMEM;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		free(keys);
		return meta_errno(rc);
	}
	for (size_t off = 0; off < used && !stop;) {
		MDB_val e = { (size_t)keys[off] << 8 | keys[off + 1], keys + off + 2 };
		stop = fn(arg, &e);
		off += 2 + e.mv_size;
	}
	free(keys);
	return stop;
}

int meta_names_build(struct meta *m, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val key, val, empty = { 0, "" };
	uint64_t built;
	int rc = meta_state_read(m, txn, BUILT, &built);

	if (rc != -ENOENT)
		return rc;
	if ((rc = mdb_cursor_open(txn, m->entries, &c)) != 0)
		return meta_errno(rc);
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		uint8_t nk[8 + META_KEY_MAX];
		struct meta_dirent d;
		if (key.mv_size < 17 || key.mv_size > META_KEY_MAX ||
		    meta_dirent_decode(val.mv_data, val.mv_size, &d) != 0 || d.deleted)
			continue;
		meta_be64(nk, d.child);
		memcpy(nk + 8, key.mv_data, key.mv_size);
		MDB_val n = { 8 + key.mv_size, nk };
		if ((rc = mdb_put(txn, m->names, &n, &empty, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return meta_errno(rc);
	return meta_state_write(m, txn, BUILT, 1);
}

int meta_names_rebuild(struct meta *m, MDB_txn *txn)
{
	MDB_val key = { strlen(BUILT), BUILT };
	int rc = mdb_drop(txn, m->names, 0);

	if (rc == 0)
		rc = mdb_del(txn, m->state, &key, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return meta_errno(rc);
	return meta_names_build(m, txn);
}
