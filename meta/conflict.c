/*
 * conflict - the loser of a concurrent edit stays readable. When a peer's
 * record of a file meets a local one and the two contents were written
 * beside each other (neither's lineage includes the other: lineage.c), the
 * later still wins, and the other is kept as NAME.caskfs-conflict-NODE-STAMP
 * beside the file; when two nodes bound one name to two different objects at
 * once (a file against a directory, two creates), the loser object keeps the
 * same kind of name. The one idea: the kept copy is a pure function of the
 * losing record (its inode number from the file and the loser's run, its
 * name and versions from the loser's), so every node that sees the conflict
 * writes the same records and they converge whatever the order.
 * docs/REPLICATION.md ("Conflict copies").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "meta_i.h"
#include "store/endian.h"
#include "store/xxh_i.h"

#define MARK ".caskfs-conflict-"

/* NAME.caskfs-conflict-NODE-STAMP: NODE the loser's node id, STAMP the time
 * of its version (UTC, ms), with its clock's counter when not 0. NAME is cut
 * so the whole fits META_NAME_MAX. */
static void conflict_name(const char *name, const struct store_version *v,
			  char out[META_NAME_MAX + 1])
{
	char suffix[96], when[40];
	time_t sec = (time_t)((v->stamp >> 16) / 1000);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%S", &tm);
	int n = snprintf(suffix, sizeof(suffix), MARK "%u-%s.%03uZ", v->node, when,
			 (unsigned)((v->stamp >> 16) % 1000));
	if (v->stamp & 0xffff)
		snprintf(suffix + n, sizeof(suffix) - (size_t)n, "+%u", (unsigned)(v->stamp & 0xffff));
	size_t keep = strlen(name), room = META_NAME_MAX - strlen(suffix);
	snprintf(out, META_NAME_MAX + 1, "%.*s%s", (int)(keep < room ? keep : room), name, suffix);
}

/* The inode number of the copy of ino's content lost by run: node 0 and bit
 * 47 (docs/FORMAT.md: never handed out by a node), the rest a hash. */
static uint64_t copy_ino(uint64_t ino, const struct store_version *run)
{
	uint8_t b[20];

	put_le64(b, ino);
	put_le64(b + 8, run->stamp);
	put_le32(b + 16, run->node);
	return META_CONFLICT_INO_BIT | (XXH3_64bits(b, sizeof(b)) & (META_CONFLICT_INO_BIT - 1));
}

struct first_name {
	uint64_t *parent;
	char *name;
};

static int take_first(void *arg, const MDB_val *ek)
{
	struct first_name *f = arg;

	*f->parent = meta_get_be64(ek->mv_data);
	memcpy(f->name, (const char *)ek->mv_data + 16, ek->mv_size - 16);
	f->name[ek->mv_size - 16] = '\0';
	return 1;
}

/* The first live name of ino in key order (the same choice on every node
 * that has the same entries; the names table): 0 with *parent and name, or
 * -ENOENT. */
static int name_of(struct meta *m, MDB_txn *txn, uint64_t ino, uint64_t *parent, char *name)
{
	struct first_name f = { parent, name };
	int rc = meta_names_each(m, txn, ino, take_first, &f);

	return rc == 1 ? 0 : rc == 0 ? -ENOENT : rc;
}

/* Writes the entry parent/cname -> child of type under version v (the
 * loser's: the same on every node), unless a record is there already (the
 * same entry, or one a user wrote since: not undone). 1 written, 0 not. */
static int put_entry(struct meta *m, MDB_txn *txn, uint64_t parent, const char *cname,
		     uint64_t child, uint32_t type, const struct store_version *v)
{
	uint8_t k[META_KEY_MAX], b[META_DIRENT_SIZE];
	MDB_val key = { meta_key_dirent(k, parent, cname, strlen(cname)), k }, val;
	struct meta_dirent d = { .version = *v, .type = type & S_IFMT, .child = child };
	int rc = mdb_get(txn, m->entries, &key, &val);

	if (rc != MDB_NOTFOUND)
		return rc == 0 ? 0 : meta_errno(rc);
	meta_dirent_encode(&d, b);
	val.mv_size = sizeof(b);
	val.mv_data = b;
	if ((rc = meta_entry_store(m, txn, &key, &val)) != 0 ||
	    (rc = meta_outbox_add(m, txn, META_TABLE_ENTRIES, &key, &val)) != 0 ||
	    (rc = meta_entry_account(m, txn, parent, child, type, 1)) != 0)
		return rc;
	return 1;
}

static void note(struct meta_change *chg, uint64_t parent, const char *cname, uint64_t child)
{
	chg->conflict_parent = parent;
	chg->conflict_ino = child;
	snprintf(chg->conflict_name, sizeof(chg->conflict_name), "%s", cname);
}

/* Keeps the losing content x (its encoded record xv, xlen bytes) of file ino
 * as a conflict copy beside the file. 1 made or brought up to date, 0 not. */
static int keep_copy(struct meta *m, MDB_txn *txn, uint64_t ino, const uint8_t *xv, size_t xlen,
		     const struct meta_inode *x, struct meta_change *chg)
{
	char name[META_NAME_MAX + 1], cname[META_NAME_MAX + 1];
	uint64_t parent, copy = copy_ino(ino, &x->lineage.run);
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	struct store_version cv;
	bool newer = true;
	int rc = name_of(m, txn, ino, &parent, name);

	if (rc == -ENOENT) { /* no name here (yet): kept in /lost+found */
		parent = META_LOST_FOUND_INO;
		snprintf(name, sizeof(name), "%016llx", (unsigned long long)ino);
		rc = meta_lost_found_ensure(m, txn);
	}
	if (rc)
		return rc;
	conflict_name(name, &x->lineage.run, cname);
	/* a copy a user removed (or a name taken since) is left alone */
	uint8_t ek[META_KEY_MAX];
	MDB_val ekey = { meta_key_dirent(ek, parent, cname, strlen(cname)), ek }, ev;
	struct meta_dirent ed;
	rc = mdb_get(txn, m->entries, &ekey, &ev);
	if (rc == 0 && (meta_dirent_decode(ev.mv_data, ev.mv_size, &ed) != 0 || ed.deleted ||
			ed.child != copy))
		return 0;
	if (rc != 0 && rc != MDB_NOTFOUND)
		return meta_errno(rc);
	meta_be64(k, copy);
	rc = mdb_get(txn, m->inodes, &key, &val);
	if (rc == 0 && meta_head_decode(val.mv_data, val.mv_size, &cv, NULL) == 0)
		newer = store_version_cmp(&x->version, &cv) > 0;
	else if (rc != MDB_NOTFOUND && rc != 0)
		return meta_errno(rc);
	if (newer) { /* the loser's record itself: the same bytes on every node */
		val.mv_size = xlen;
		val.mv_data = (void *)xv;
		if ((rc = meta_errno(mdb_put(txn, m->inodes, &key, &val, 0))) != 0 ||
		    (rc = meta_outbox_add(m, txn, META_TABLE_INODES, &key, &val)) != 0)
			return rc;
		uint32_t links, subdirs; /* an orphan until its entry is written */
		if ((rc = meta_count_get(m, txn, copy, &links, &subdirs)) == 0 && links == 0)
			rc = meta_u64_put(txn, m->orphans, copy, "", 0);
		if (rc)
			return rc;
	}
	int made = put_entry(m, txn, parent, cname, copy, S_IFREG, &x->lineage.run);
	if (made < 0)
		return made;
	if (!made && !newer)
		return 0;
	note(chg, parent, cname, copy);
	fprintf(stderr,
		"caskfs: meta: file %016llx was changed on two nodes at once; node %u's "
		"version is kept as %s\n",
		(unsigned long long)ino, x->lineage.run.node, cname);
	return 1;
}

/* w (a record of file ino) wins: a copy kept of an earlier state of w's own
 * run (it had lost to another version before w's later state came) is that
 * run's content now under the file's name, and goes. Its entry gets a
 * tombstone of w's content version, the same on every node that sees w. */
static int drop_winner_copy(struct meta *m, MDB_txn *txn, uint64_t ino, const struct meta_inode *w,
			    struct meta_change *chg)
{
	uint64_t copy = copy_ino(ino, &w->lineage.run), parent;
	char name[META_NAME_MAX + 1];
	uint8_t k[META_KEY_MAX], b[META_DIRENT_SIZE];
	MDB_val key = { 8, k }, val;
	struct meta_dirent d, t = { .version = w->lineage.content, .deleted = true, .type = S_IFREG };
	int rc;

	meta_be64(k, copy);
	if ((rc = mdb_get(txn, m->inodes, &key, &val)) != 0)
		return rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
	if ((rc = name_of(m, txn, copy, &parent, name)) != 0)
		return rc == -ENOENT ? 0 : rc;
	if (!strstr(name, MARK)) /* renamed by a user: theirs now */
		return 0;
	key.mv_size = meta_key_dirent(k, parent, name, strlen(name));
	if ((rc = mdb_get(txn, m->entries, &key, &val)) != 0 ||
	    (rc = meta_dirent_decode(val.mv_data, val.mv_size, &d)) != 0)
		return rc > 0 ? meta_errno(rc) : rc;
	if (store_version_cmp(&t.version, &d.version) <= 0)
		return 0;
	t.prev = d.version;
	meta_dirent_encode(&t, b);
	val.mv_size = sizeof(b);
	val.mv_data = b;
	if ((rc = meta_entry_store(m, txn, &key, &val)) != 0 ||
	    (rc = meta_outbox_add(m, txn, META_TABLE_ENTRIES, &key, &val)) != 0 ||
	    (rc = meta_entry_account(m, txn, parent, copy, S_IFREG, -1)) != 0)
		return rc;
	note(chg, parent, name, copy);
	return 1;
}

int meta_conflict_inode(struct meta *m, MDB_txn *txn, uint64_t ino, const MDB_val *map_cur,
			const MDB_val *in, bool in_wins, struct meta_change *chg)
{
	struct meta_inode l = { 0 }, r = { 0 };
	/* the local record lives in the map, which the writes below may move */
	MDB_val local = { map_cur->mv_size, malloc(map_cur->mv_size ? map_cur->mv_size : 1) },
		*cur = &local;
	int rc = 0;

	if (!local.mv_data)
		return -ENOMEM;
	memcpy(local.mv_data, map_cur->mv_data, map_cur->mv_size);
	if (meta_inode_decode(cur->mv_data, cur->mv_size, false, &l) != 0 ||
	    meta_inode_decode(in->mv_data, in->mv_size, false, &r) != 0)
		goto out;
	if (in_wins && S_ISREG(r.mode) && meta_lineage_known(&r.lineage) &&
	    (rc = drop_winner_copy(m, txn, ino, &r, chg)) < 0)
		goto out;
	const struct meta_inode *w = in_wins ? &r : &l, *x = in_wins ? &l : &r;
	const MDB_val *xv = in_wins ? cur : in;
	if (!S_ISREG(l.mode) || !S_ISREG(r.mode) || !meta_lineage_known(&l.lineage) ||
	    !meta_lineage_known(&r.lineage) || meta_lineage_includes(&w->lineage, &x->lineage) ||
	    meta_content_same(cur->mv_data, cur->mv_size, in->mv_data, in->mv_size))
		goto out;
	rc = keep_copy(m, txn, ino, xv->mv_data, xv->mv_size, x, chg);
out:
	meta_inode_release(&l);
	meta_inode_release(&r);
	free(local.mv_data);
	return rc;
}

int meta_conflict_entry(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name,
			const struct meta_dirent *local, const struct meta_dirent *in, bool in_wins,
			struct meta_change *chg)
{
	const struct meta_dirent *x = in_wins ? local : in;
	char cname[META_NAME_MAX + 1];

	/* two live bindings of one name to two objects, neither written knowing
	 * the other (or anything newer at this name) */
	if (local->deleted || in->deleted || local->child == in->child ||
	    store_version_cmp(&in->prev, &local->version) >= 0 ||
	    store_version_cmp(&local->prev, &in->version) >= 0 || strstr(name, MARK))
		return 0;
	conflict_name(name, &x->version, cname);
	int made = put_entry(m, txn, parent, cname, x->child, x->type, &x->version);
	if (made > 0) {
		note(chg, parent, cname, x->child);
		fprintf(stderr,
			"caskfs: meta: %s was made on two nodes at once; node %u's is kept as %s\n",
			name, x->version.node, cname);
	}
	return made;
}

/* ---- what is kept ---- */

int meta_conflicts(struct meta *m, meta_conflict_fn fn, void *arg)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val key, val;
	int rc = meta_txn_read(m, &txn);

	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, m->entries, &c)) != 0) {
		mdb_txn_abort(txn);
		return meta_errno(rc);
	}
	for (rc = mdb_cursor_get(c, &key, &val, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		char name[META_NAME_MAX + 1];
		struct meta_dirent d;
		if (key.mv_size <= 16 || key.mv_size > 16 + META_NAME_MAX ||
		    meta_dirent_decode(val.mv_data, val.mv_size, &d) != 0 || d.deleted)
			continue;
		memcpy(name, (const char *)key.mv_data + 16, key.mv_size - 16);
		name[key.mv_size - 16] = '\0';
		if (!strstr(name, MARK))
			continue;
		if ((rc = fn(arg, meta_get_be64(key.mv_data), name, d.child)) != 0)
			break;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : rc > 0 ? rc : meta_errno(rc);
}

static int count_one(void *arg, uint64_t parent, const char *name, uint64_t child)
{
	(void)parent;
	(void)name;
	(void)child;
	(*(uint64_t *)arg)++;
	return 0;
}

uint64_t meta_conflict_count(struct meta *m)
{
	uint64_t txn = meta_last_txn(m), n = 0;

	if (txn && atomic_load(&m->conflicts_txn) == txn)
		return atomic_load(&m->conflicts);
	if (meta_conflicts(m, count_one, &n) < 0)
		return 0;
	atomic_store(&m->conflicts, n);
	atomic_store(&m->conflicts_txn, txn);
	return n;
}

int meta_dir_path(struct meta *m, uint64_t dir, char *buf, size_t cap)
{
	char tmp[4096], name[META_NAME_MAX + 1];
	size_t len = 0;
	MDB_txn *txn;
	int rc = meta_txn_read(m, &txn), depth = 0;

	if (rc)
		return rc;
	tmp[0] = '\0';
	/* by the entries themselves, not the local parents table: one scan a
	 * level, for a listing of conflicts, not a hot path */
	while (rc == 0 && dir != META_ROOT_INO && depth++ < 256) {
		uint64_t parent;
		if ((rc = name_of(m, txn, dir, &parent, name)) != 0)
			break;
		size_t nl = strlen(name);
		if (nl + 1 + len >= sizeof(tmp)) {
			rc = -ENAMETOOLONG;
			break;
		}
		memmove(tmp + nl + 1, tmp, len + 1);
		tmp[0] = '/';
		memcpy(tmp + 1, name, nl);
		len += nl + 1;
		dir = parent;
	}
	mdb_txn_abort(txn);
	if (rc == 0 && dir != META_ROOT_INO)
		rc = -ELOOP;
	if (rc == 0 && snprintf(buf, cap, "%s", len ? tmp : "") >= (int)cap)
		rc = -ENAMETOOLONG;
	return rc;
}
