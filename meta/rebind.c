/*
 * rebind - one object renamed to two names on two nodes apart ends under one
 * name. Every entry record carries the binding it continues (record.c: a
 * rename's new entry takes its source's binding; a create, link or mkdir
 * starts a new one), so a hard link (a new binding) is told apart from a
 * rename. When an entry from a peer becomes live here, the other live
 * entries of the same object with the same binding are renames made
 * without each other: the one with the later version keeps its name, and
 * each other becomes a tombstone of version (its stamp, its node |
 * META_DERIVED_NODE), newer than that entry and older than any later write
 * at its name. That is a pure function of the losing record, so every node
 * writes the same tombstone whatever the order the records arrive in, and
 * none is pushed. docs/REPLICATION.md ("Renames made apart").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

struct settle {
	struct meta *m;
	MDB_txn *txn;
	const MDB_val *key;	      /* the entry just stored */
	const struct meta_dirent *nd; /* its record */
	struct store_version bind;
	bool lost; /* nd itself lost to a later rename */
	struct meta_change *chg;
	int rc;
};

/* The tombstone that replaces d, a rename that lost (see above). */
static void tombstone_of(const struct meta_dirent *d, uint8_t out[META_DIRENT_SIZE])
{
	struct meta_dirent t = { .version = { d->version.stamp,
					      d->version.node | META_DERIVED_NODE },
				 .deleted = true,
				 .type = d->type,
				 .prev = d->version };

	meta_dirent_encode(&t, out);
}

static void name_at(const MDB_val *key, char name[META_NAME_MAX + 1])
{
	size_t n = key->mv_size - 16;

	memcpy(name, (const char *)key->mv_data + 16, n);
	name[n] = '\0';
}

static int settle_one(void *arg, const MDB_val *ek)
{
	struct settle *s = arg;
	struct meta_dirent d;
	uint8_t b[META_DIRENT_SIZE];
	MDB_val val, t = { sizeof(b), b };
	int rc;

	if (ek->mv_size == s->key->mv_size &&
	    memcmp(ek->mv_data, s->key->mv_data, ek->mv_size) == 0)
		return 0;
	if ((rc = mdb_get(s->txn, s->m->entries, (MDB_val *)ek, &val)) != 0) {
		s->rc = rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
		return s->rc ? 1 : 0;
	}
	if (meta_dirent_decode(val.mv_data, val.mv_size, &d) != 0 || d.deleted ||
	    d.child != s->nd->child) {
		return 0;
	}
	struct store_version bind = meta_dirent_binding(&d);
	if (store_version_cmp(&bind, &s->bind) != 0)
		return 0; /* another binding: a hard link, it stays */
	if (store_version_cmp(&d.version, &s->nd->version) > 0) {
		s->lost = true; /* the one here is the later rename */
		return 0;
	}
	/* the one here lost: its name goes, as it does on every node */
	tombstone_of(&d, b);
	if ((rc = meta_entry_store(s->m, s->txn, ek, &t)) != 0 ||
	    (rc = meta_entry_account(s->m, s->txn, meta_get_be64(ek->mv_data), d.child, d.type,
				     -1)) != 0) {
		s->rc = rc;
		return 1;
	}
	/* not logged: the same happens to the source of every rename that
	 * arrives before the source's own tombstone, and nothing is lost */
	if (!s->chg->conflict_parent) {
		s->chg->conflict_parent = meta_get_be64(ek->mv_data);
		s->chg->conflict_ino = d.child;
		name_at(ek, s->chg->conflict_name);
	}
	return 0;
}

int meta_rebind_settle(struct meta *m, MDB_txn *txn, const MDB_val *key,
		       const struct meta_dirent *nd, struct meta_change *chg)
{
	struct settle s = { m, txn, key, nd, meta_dirent_binding(nd), false, chg, 0 };
	uint8_t b[META_DIRENT_SIZE];
	MDB_val t = { sizeof(b), b };
	int rc;

	if (nd->deleted)
		return 0;
	/* every older one goes first; then, when a later one is here, nd */
	if ((rc = meta_names_each(m, txn, nd->child, settle_one, &s)) < 0)
		return rc;
	if (s.rc)
		return s.rc;
	if (!s.lost)
		return 0;
	tombstone_of(nd, b);
	return (rc = meta_entry_store(m, txn, key, &t)) != 0 ? rc : 1;
}
