/*
 * apply - a record from a peer replayed here. Each replicated record is a
 * last-writer-wins register: it is written when its version (stamp, node) is
 * newer than the local one, and the local tables derived from entries (link
 * counts, parents, orphans) follow; an entry whose directory is gone here is
 * kept under /lost+found. Input is untrusted: meta_apply checks every length
 * before the write. docs/REPLICATION.md, docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"
#include "store/endian.h"

/* Whether dir is a live directory here: its inode exists and a live entry
 * names it (the root always). */
static bool dir_live(struct meta *m, MDB_txn *txn, uint64_t dir)
{
	struct meta_inode in = { 0 };
	uint32_t links = 0, subdirs = 0;

	if (meta_dir_get(m, txn, dir, &in))
		return false;
	meta_count_get(m, txn, dir, &links, &subdirs);
	return dir == META_ROOT_INO || links > 0;
}

/* A record older than the local one: its content or object is kept when it
 * was written beside the local one. 1 kept (chg says where), 0, -errno. */
static int conflict_loser(struct meta *m, MDB_txn *txn, enum meta_table table, const MDB_val *key,
			  const MDB_val *cur, const MDB_val *val, struct meta_change *chg)
{
	struct meta_dirent l, r;
	int rc = 0;

	if (table == META_TABLE_INODES)
		rc = meta_conflict_inode(m, txn, meta_get_be64(key->mv_data), cur, val, false, chg);
	else if (table == META_TABLE_ENTRIES &&
		 meta_dirent_decode(cur->mv_data, cur->mv_size, &l) == 0 &&
		 meta_dirent_decode(val->mv_data, val->mv_size, &r) == 0) {
		char name[META_NAME_MAX + 1];
		memcpy(name, (const char *)key->mv_data + 16, key->mv_size - 16);
		name[key->mv_size - 16] = '\0';
		rc = meta_conflict_entry(m, txn, meta_get_be64(key->mv_data), name, &l, &r, false,
					 chg);
	}
	if (rc > 0) { /* report the new name as the change */
		chg->table = META_TABLE_ENTRIES;
		chg->parent = chg->conflict_parent;
		chg->ino = chg->conflict_ino;
		snprintf(chg->name, sizeof(chg->name), "%s", chg->conflict_name);
	}
	return rc;
}

/*
 * A peer's inode record (val) met the local one (cur) and one has the later
 * version, the other the later content (lineage.c): the merged record that
 * keeps both is written here, and pushed (peers that hold either one merge
 * to the same bytes). 1 handled (*applied: something changed, chg says
 * what), 0 not a merge, -errno.
 */
static int apply_merge(struct meta *m, MDB_txn *txn, const MDB_val *key, const MDB_val *cur,
		       const MDB_val *val, struct meta_change *chg, int *applied)
{
	uint8_t *mb;
	size_t ml;
	bool in_content;
	uint64_t ino = meta_get_be64(key->mv_data);
	uint32_t links, subdirs;
	int rc = meta_inode_merge(cur, val, &mb, &ml, &in_content);

	if (rc <= 0)
		return rc;
	bool same = ml == cur->mv_size && memcmp(mb, cur->mv_data, ml) == 0;
	bool theirs = ml == val->mv_size && memcmp(mb, val->mv_data, ml) == 0;
	MDB_val merged = { ml, mb };
	/* the content that loses is kept when it was written beside the other */
	int made = meta_conflict_inode(m, txn, ino, cur, val, in_content, chg);
	if ((rc = made) < 0 || same)
		goto out;
	store_clock_observe(m->clock, get_le64(mb + 8));
	if ((rc = meta_reserved_move(m, txn, key, &merged)) != 0 ||
	    (rc = meta_errno(mdb_put(txn, m->inodes, (MDB_val *)key, &merged, 0))) != 0 ||
	    (!theirs && (rc = meta_outbox_add(m, txn, META_TABLE_INODES, key, &merged)) != 0))
		goto out;
	if ((rc = meta_count_get(m, txn, ino, &links, &subdirs)) == 0 && links == 0 &&
	    ino != META_ROOT_INO)
		rc = meta_u64_put(txn, m->orphans, ino, "", 0);
out:
	free(mb);
	if (rc < 0)
		return rc;
	if (!same) {
		chg->table = META_TABLE_INODES;
		chg->ino = ino;
	} else if (made) { /* report the copy's new name as the change */
		chg->table = META_TABLE_ENTRIES;
		chg->parent = chg->conflict_parent;
		chg->ino = chg->conflict_ino;
		snprintf(chg->name, sizeof(chg->name), "%s", chg->conflict_name);
	}
	*applied = !same || made;
	return 1;
}

struct apply_args {
	const uint8_t *rec;
	size_t len;
	struct meta_change *chg;
	int applied;
	uint32_t mode; /* an inode record's mode, as meta_apply decoded it */
};

/*
 * A peer's inode record (mode, as meta_apply decoded it) must keep the type
 * of the inode it replaces: an inode never changes type, and one that did
 * (the root turned into a file) would leave every node with a tree it
 * cannot list. -EINVAL.
 */
static int check_inode(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, uint32_t mode)
{
	struct meta_inode now = { 0 };
	MDB_val cur;

	if (meta_get_be64(key->mv_data) == META_ROOT_INO && !S_ISDIR(mode))
		return -EINVAL;
	if (mdb_get(txn, dbi, (MDB_val *)key, &cur) == 0 &&
	    meta_inode_decode(cur.mv_data, cur.mv_size, false, &now) == 0) {
		meta_inode_release(&now);
		if ((now.mode & S_IFMT) != (mode & S_IFMT))
			return -EINVAL;
	}
	return 0;
}

static int do_apply(struct meta *m, MDB_txn *txn, void *arg)
{
	struct apply_args *a = arg;
	enum meta_table table = a->rec[0];
	size_t klen = get_le16(a->rec + 1);
	MDB_val key = { klen, (void *)(a->rec + META_WIRE_HEAD) };
	MDB_val val = { a->len - META_WIRE_HEAD - klen, (void *)(a->rec + META_WIRE_HEAD + klen) };
	MDB_dbi dbi = meta_table_dbi(m, table);
	struct store_version in_v, cur_v;
	struct meta_dirent old = { 0 }, nd = { 0 };
	bool had_old = false;
	MDB_val cur;
	int rc;

	if ((rc = meta_head_decode(val.mv_data, val.mv_size, &in_v, NULL)) < 0)
		return rc;
	if (table == META_TABLE_INODES && (rc = check_inode(txn, dbi, &key, a->mode)) < 0)
		return rc;
	memset(a->chg, 0, sizeof(*a->chg));
	rc = mdb_get(txn, dbi, &key, &cur);
	if (rc == 0 && table == META_TABLE_INODES &&
	    (rc = apply_merge(m, txn, &key, &cur, &val, a->chg, &a->applied)) != 0)
		return rc < 0 ? rc : 0;
	if (rc == 0) {
		if (meta_head_decode(cur.mv_data, cur.mv_size, &cur_v, NULL) == 0 &&
		    store_version_cmp(&in_v, &cur_v) <= 0) {
			/* as new or newer here; an older edit made beside it is kept
			 * (conflict.c), and that is a change to report */
			if (store_version_cmp(&in_v, &cur_v) < 0 &&
			    (rc = conflict_loser(m, txn, table, &key, &cur, &val, a->chg)) != 0)
				a->applied = rc > 0;
			return rc < 0 ? rc : 0;
		}
		if (table == META_TABLE_ENTRIES)
			had_old = meta_dirent_decode(cur.mv_data, cur.mv_size, &old) == 0;
		if (table == META_TABLE_INODES &&
		    (rc = meta_conflict_inode(m, txn, meta_get_be64(key.mv_data), &cur, &val, true,
					      a->chg)) < 0)
			return rc;
	} else if (rc != MDB_NOTFOUND) {
		return meta_errno(rc);
	}
	store_clock_observe(m->clock, in_v.stamp);
	a->chg->table = table;
	if (table != META_TABLE_ENTRIES) {
		uint32_t links, subdirs;
		a->chg->ino = meta_get_be64(key.mv_data);
		a->applied = 1;
		rc = table == META_TABLE_INODES ? meta_reserved_move(m, txn, &key, &val) : 0;
		if (rc == 0)
			rc = meta_errno(mdb_put(txn, dbi, &key, &val, 0));
		/* an inode before the entry that names it (or after the last one
		 * went) waits as an orphan */
		if (rc == 0 && table == META_TABLE_INODES &&
		    (rc = meta_count_get(m, txn, a->chg->ino, &links, &subdirs)) == 0 &&
		    links == 0 && a->chg->ino != META_ROOT_INO)
			rc = meta_u64_put(txn, m->orphans, a->chg->ino, "", 0);
		return rc;
	}
	uint64_t parent = meta_get_be64(key.mv_data);
	size_t nlen = klen - 16;
	memcpy(a->chg->name, (const uint8_t *)key.mv_data + 16, nlen);
	a->chg->name[nlen] = 0;
	a->chg->parent = parent;
	if ((rc = meta_dirent_decode(val.mv_data, val.mv_size, &nd)) < 0)
		return rc;
	a->chg->ino = nd.deleted ? 0 : nd.child;
	a->chg->old_child = had_old && !old.deleted ? old.child : 0;
	if ((rc = meta_entry_store(m, txn, &key, &val)) != 0)
		return rc;
	a->applied = 1;
	if (had_old && !old.deleted &&
	    (rc = meta_entry_account(m, txn, parent, old.child, old.type, -1)) != 0)
		return rc;
	if (nd.deleted) {
		/* /lost+found itself removed elsewhere: it comes back, entries and all */
		if (had_old && !old.deleted && old.child == META_LOST_FOUND_INO &&
		    parent == META_ROOT_INO && meta_dir_empty(m, txn, old.child) == -ENOTEMPTY)
			return meta_lost_found_ensure(m, txn);
		/* a directory removed elsewhere that still holds entries here */
		if (had_old && !old.deleted && S_ISDIR(old.type) &&
		    old.child != META_LOST_FOUND_INO &&
		    meta_dir_empty(m, txn, old.child) == -ENOTEMPTY)
			return meta_lost_found_rescue_children(m, txn, old.child);
		return 0;
	}
	/* the name was bound here to another object beside this one: kept */
	if (had_old && (rc = meta_conflict_entry(m, txn, parent, a->chg->name, &old, &nd, true,
						 a->chg)) < 0)
		return rc;
	/* the same object renamed elsewhere too: the later name stays */
	if ((rc = meta_rebind_settle(m, txn, &key, &nd, a->chg)) != 0) {
		if (rc > 0) /* this one lost: the name is a tombstone now */
			a->chg->ino = 0;
		return rc < 0 ? rc : 0;
	}
	if (!dir_live(m, txn, parent) && parent != META_LOST_FOUND_INO) {
		/* its directory is gone here: keep it visible under /lost+found */
		rc = meta_lost_found_rescue(m, txn, parent, a->chg->name, &nd);
		if (rc == 0)
			rc = meta_entry_put(m, txn, parent, a->chg->name, 0, nd.type);
		a->chg->ino = 0;
		return rc;
	}
	return meta_entry_account(m, txn, parent, nd.child, nd.type, 1);
}

int meta_apply(struct meta *m, const uint8_t *rec, size_t len, struct meta_change *chg)
{
	struct apply_args a = { rec, len, chg, 0, 0 };

	if (len < META_WIRE_HEAD + 16)
		return -EBADMSG;
	size_t klen = get_le16(rec + 1);
	if (META_WIRE_HEAD + klen + 16 > len)
		return -EBADMSG;
	switch (rec[0]) {
	case META_TABLE_INODES: {
		struct meta_inode in = { 0 };
		if (klen != 8 || meta_inode_decode(rec + META_WIRE_HEAD + klen,
						   len - META_WIRE_HEAD - klen, true, &in) < 0)
			return -EBADMSG;
		a.mode = in.mode;
		meta_inode_release(&in);
		break;
	}
	case META_TABLE_ENTRIES: {
		struct meta_dirent d;
		const char *name = (const char *)rec + META_WIRE_HEAD + 16;
		if (klen < 17 || klen > 16 + META_NAME_MAX ||
		    meta_dirent_decode(rec + META_WIRE_HEAD + klen, len - META_WIRE_HEAD - klen,
				       &d) < 0)
			return -EBADMSG;
		/* the key must be the one this node would make for the name */
		if (memchr(name, 0, klen - 16) || memchr(name, '/', klen - 16) ||
		    (klen - 16 <= 2 && !memcmp("..", name, klen - 16)) ||
		    meta_get_be64(rec + META_WIRE_HEAD + 8) != meta_name_pos(name, klen - 16))
			return -EBADMSG;
		break;
	}
	case META_TABLE_XATTRS:
		if (klen < 9 || klen > 8 + META_XATTR_NAME_MAX)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	int rc = meta_txn_write(m, do_apply, &a);
	return rc < 0 ? rc : a.applied;
}
