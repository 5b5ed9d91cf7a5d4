/*
 * lostfound - /lost+found, inode 2 on every node, where the entries of a
 * directory removed on another node are kept instead of being lost. The one
 * idea: a rescued entry gets a name derived only from where it was
 * (parent ino, name), so nodes that rescue it independently agree, and the
 * rescue is a local change replicated like any other. docs/REPLICATION.md.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

/* /lost+found: the same inode on every node, created by whoever needs it. */
int meta_lost_found_ensure(struct meta *m, MDB_txn *txn)
{
	struct meta_dirent d;
	bool created;
	int rc = meta_dir_ensure(m, txn, META_LOST_FOUND_INO, 0700, &created);

	if (rc)
		return rc;
	rc = meta_entry_get(m, txn, META_ROOT_INO, "lost+found", &d);
	if (rc == -ENOENT) {
		rc = meta_entry_put(m, txn, META_ROOT_INO, "lost+found", META_LOST_FOUND_INO,
				    S_IFDIR);
		if (rc == 0)
			rc = meta_count_add(m, txn, META_LOST_FOUND_INO, 1, 0, NULL);
		if (rc == 0)
			rc = meta_count_add(m, txn, META_ROOT_INO, 0, 1, NULL);
		if (rc == 0)
			rc = meta_parent_put(m, txn, META_LOST_FOUND_INO, META_ROOT_INO);
	}
	return rc;
}

/* The name an entry of directory parent gets in /lost+found: the same on
 * every node, so nodes that rescue it independently agree. */
static void lost_name(char *out, uint64_t parent, const char *name)
{
	snprintf(out, META_NAME_MAX + 1, "%016llx-%s", (unsigned long long)parent, name);
}

/* Moves the live entry parent/name (naming d) into /lost+found, as a local
 * change that is replicated like any other. */
int meta_lost_found_rescue(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name,
			   const struct meta_dirent *d)
{
	char lname[META_NAME_MAX + 1];
	struct meta_dirent old;
	int rc = meta_lost_found_ensure(m, txn);

	if (rc)
		return rc;
	lost_name(lname, parent, name);
	if (meta_entry_get(m, txn, META_LOST_FOUND_INO, lname, &old) == 0)
		rc = meta_entry_account(m, txn, META_LOST_FOUND_INO, old.child, old.type, -1);
	if (rc == 0)
		rc = meta_entry_put(m, txn, META_LOST_FOUND_INO, lname, d->child, d->type);
	if (rc == 0)
		rc = meta_entry_account(m, txn, META_LOST_FOUND_INO, d->child, d->type, 1);
	fprintf(stderr, "caskfs: meta: entry %s of removed directory %llu kept as /lost+found/%s\n",
		name, (unsigned long long)parent, lname);
	return rc;
}

/* A directory removed elsewhere while this node still has entries in it:
 * every live entry moves to /lost+found and gets a tombstone where it was. */
int meta_lost_found_rescue_children(struct meta *m, MDB_txn *txn, uint64_t dir)
{
	MDB_cursor *c;
	uint8_t k[META_KEY_MAX];
	MDB_val key = { 16, k }, val;
	int rc = 0;

	for (;;) {
		char name[META_NAME_MAX + 1];
		uint8_t found_key[META_KEY_MAX];
		size_t found_len = 0;
		struct meta_dirent d;
		bool found = false;
		rc = meta_errno(mdb_cursor_open(txn, m->entries, &c));
		if (rc)
			return rc;
		meta_be64(k, dir);
		meta_be64(k + 8, 0);
		key.mv_size = 16;
		key.mv_data = k;
		for (int g = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); g == 0;
		     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			if (key.mv_size < 17 || meta_get_be64(key.mv_data) != dir)
				break;
			if (meta_dirent_decode(val.mv_data, val.mv_size, &d) == 0 && !d.deleted) {
				size_t n = key.mv_size - 16;
				memcpy(name, (const uint8_t *)key.mv_data + 16, n);
				name[n] = 0;
				memcpy(found_key, key.mv_data, key.mv_size);
				found_len = key.mv_size;
				found = true;
				break;
			}
		}
		mdb_cursor_close(c);
		if (!found)
			return 0;
		rc = meta_lost_found_rescue(m, txn, dir, name, &d);
		/* the tombstone goes on the very key found, so the loop moves on */
		MDB_val fk = { found_len, found_key };
		if (rc == 0)
			rc = meta_entry_put_key(m, txn, &fk, 0, d.type, NULL);
		if (rc == 0)
			rc = meta_entry_account(m, txn, dir, d.child, d.type, -1);
		if (rc)
			return rc;
	}
}
