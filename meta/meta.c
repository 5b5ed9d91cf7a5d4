/*
 * meta - the namespace operations on LMDB. Each operation is one write
 * transaction built from a few helpers (get/put an inode, an entry, the local
 * counters), so it commits whole or not at all. The one idea: replicated
 * records (inodes, entries, xattrs) are stamped registers and removed entries
 * stay as tombstones; what can be derived (link counts, a directory's parent,
 * orphans awaiting their last close) lives in local tables, never replicated.
 * Schema: docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"
#include "store/endian.h"
#include "store/xxh_i.h"

#define MAP_SIZE (1ull << 38)

static int init_root(struct meta *m, MDB_txn *txn, void *arg)
{
	uint64_t next;
	MDB_val key, val;
	MDB_cursor *c;
	bool created;
	int rc;

	(void)arg;
	rc = meta_dir_ensure(m, txn, META_ROOT_INO, 0755, &created);
	if (rc == 0 && created)
		rc = meta_count_put(m, txn, META_ROOT_INO, 1, 0);
	if (rc == 0 && created)
		rc = meta_parent_put(m, txn, META_ROOT_INO, META_ROOT_INO);
	if (rc)
		return rc;
	if (meta_state_read(m, txn, "next_ino", &next) == -ENOENT) {
		rc = meta_state_write(m, txn, "next_ino", ((uint64_t)m->node << META_INO_NODE_SHIFT) | 2);
		if (rc)
			return rc;
	}
	/* No process holds files open across a restart: orphans can go. */
	rc = mdb_cursor_open(txn, m->orphans, &c);
	if (rc)
		return meta_errno(rc);
	while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
		uint64_t ino = meta_get_be64(key.mv_data);
		mdb_cursor_close(c);
		rc = meta_orphan_purge(m, txn, ino);
		if (rc)
			return rc;
		rc = mdb_cursor_open(txn, m->orphans, &c);
		if (rc)
			return meta_errno(rc);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

int meta_open(const char *dir, uint32_t node_id, struct store_clock *clock, struct meta **out)
{
	struct meta *m;
	MDB_txn *txn;
	char path[4096];
	int rc;

	if (!dir || !clock || node_id == 0 || node_id > 0xFFFF)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->node = node_id;
	m->clock = clock;
	snprintf(path, sizeof(path), "%s/meta", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		fprintf(stderr, "caskfs: cannot create %s: %s\n", path, strerror(errno));
		free(m);
		return rc;
	}
	rc = mdb_env_create(&m->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(m->env, 12);
	if (rc == 0)
		rc = mdb_env_set_mapsize(m->env, MAP_SIZE);
	if (rc == 0)
		rc = mdb_env_open(m->env, path, MDB_NOSYNC | MDB_NOTLS, 0644);
	if (rc == 0)
		rc = mdb_txn_begin(m->env, NULL, 0, &txn);
	if (rc) {
		fprintf(stderr, "caskfs: cannot open the namespace in %s: %s\n", path,
			mdb_strerror(rc));
		mdb_env_close(m->env);
		free(m);
		return meta_errno(rc);
	}
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = { { "inodes", &m->inodes },	{ "entries", &m->entries },
		    { "xattrs", &m->xattrs },	{ "counts", &m->counts },
		    { "parents", &m->parents }, { "orphans", &m->orphans },
		    { "state", &m->state },	{ "outbox", &m->outbox } };
	for (size_t i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++)
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
	if (rc == 0) {
		/* the outbox continues after its last record */
		MDB_cursor *c;
		MDB_val k, v;
		rc = mdb_cursor_open(txn, m->outbox, &c);
		if (rc == 0) {
			if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
				m->outbox_seq = meta_get_be64(k.mv_data);
			mdb_cursor_close(c);
		}
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	rc = meta_errno(rc);
	if (rc == 0)
		rc = meta_txn_write(m, init_root, NULL);
	if (rc == 0)
		rc = meta_sync(m);
	if (rc) {
		fprintf(stderr, "caskfs: cannot initialise the namespace in %s: %s\n", path,
			strerror(-rc));
		mdb_env_close(m->env);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	mdb_env_sync(m->env, 1);
	mdb_env_close(m->env);
	meta_tree_free(m);
	free(m);
}

struct tally {
	uint64_t ino;
	int32_t links, subdirs;
};

struct tallies {
	struct tally *t;
	size_t n, cap;
};

static int tally_add(struct tallies *ts, uint64_t ino, int links, int subdirs)
{
	if (ts->n == ts->cap) {
		size_t cap = ts->cap ? ts->cap * 2 : 1024;
		struct tally *n = realloc(ts->t, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ts->t = n;
		ts->cap = cap;
	}
	ts->t[ts->n++] = (struct tally){ ino, links, subdirs };
	return 0;
}

static int cmp_tally(const void *a, const void *b)
{
	uint64_t x = ((const struct tally *)a)->ino, y = ((const struct tally *)b)->ino;
	return x < y ? -1 : x > y;
}

static const struct tally *tally_find(const struct tallies *ts, uint64_t ino)
{
	size_t lo = 0, hi = ts->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ts->t[mid].ino < ino)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ts->n && ts->t[lo].ino == ino ? &ts->t[lo] : NULL;
}

struct verify_args {
	bool repair;
	meta_problem_fn fn;
	void *arg;
	uint64_t problems, fixed;
};

static void report(struct verify_args *va, uint64_t ino, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct verify_args *va, uint64_t ino, const char *fmt, ...)
{
	char what[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	va->problems++;
	if (va->fn)
		va->fn(va->arg, ino, what);
}

static int do_verify(struct meta *m, MDB_txn *txn, void *arg)
{
	struct verify_args *va = arg;
	struct tallies ts = { 0 };
	MDB_cursor *c;
	MDB_val key, val;
	int rc = meta_errno(mdb_cursor_open(txn, m->entries, &c));

	if (rc)
		return rc;
	/* what the live entries say: links of each child, subdirectories of each parent */
	for (int g = mdb_cursor_get(c, &key, &val, MDB_FIRST); g == 0 && rc == 0;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct meta_dirent d;
		if (key.mv_size < 17 || meta_dirent_decode(val.mv_data, val.mv_size, &d) < 0 ||
		    d.deleted)
			continue;
		uint64_t parent = meta_get_be64(key.mv_data);
		struct meta_inode in = { 0 };
		if (meta_inode_get(m, txn, d.child, false, &in) == -ENOENT) {
			report(va, parent, "entry '%.*s' names inode %" PRIu64 ", which is missing",
			       (int)(key.mv_size - 16), (const char *)key.mv_data + 16, d.child);
			continue;
		}
		meta_inode_release(&in);
		rc = tally_add(&ts, d.child, 1, 0);
		if (rc == 0 && S_ISDIR(d.type))
			rc = tally_add(&ts, parent, 0, 1);
	}
	mdb_cursor_close(c);
	if (rc)
		goto out;
	qsort(ts.t, ts.n, sizeof(*ts.t), cmp_tally);
	size_t w = 0; /* sum the runs of one inode */
	for (size_t i = 0; i < ts.n; i++) {
		if (w && ts.t[w - 1].ino == ts.t[i].ino) {
			ts.t[w - 1].links += ts.t[i].links;
			ts.t[w - 1].subdirs += ts.t[i].subdirs;
		} else {
			ts.t[w++] = ts.t[i];
		}
	}
	ts.n = w;
	/* every inode against it */
	uint64_t *orphans = NULL;
	size_t norphans = 0;
	rc = meta_errno(mdb_cursor_open(txn, m->inodes, &c));
	for (int g = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &key, &val, MDB_FIRST); g == 0 && rc == 0;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		if (key.mv_size != 8)
			continue;
		uint64_t ino = meta_get_be64(key.mv_data);
		const struct tally *t = tally_find(&ts, ino);
		int32_t links = (t ? t->links : 0) + (ino == META_ROOT_INO ? 1 : 0);
		int32_t subdirs = t ? t->subdirs : 0;
		uint32_t hl, hs;
		if (meta_count_get(m, txn, ino, &hl, &hs) < 0)
			hl = hs = 0;
		MDB_val ok = { 8, key.mv_data }, ov;
		bool orphan = mdb_get(txn, m->orphans, &ok, &ov) == 0;
		if ((int32_t)hl != links || (int32_t)hs != subdirs) {
			report(va, ino, "link count %u and %u subdirectories, the entries say %d and %d",
			       hl, hs, links, subdirs);
			if (va->repair && meta_count_put(m, txn, ino, (uint32_t)links, (uint32_t)subdirs) == 0)
				va->fixed++;
		}
		if (links == 0 && !orphan) {
			report(va, ino, "no name leads to this inode (an orphan)");
			uint64_t *n = realloc(orphans, (norphans + 1) * sizeof(*n));
			if (n) {
				orphans = n;
				orphans[norphans++] = ino;
			}
		}
	}
	if (!rc)
		mdb_cursor_close(c);
	/* orphans are kept: they go to /lost+found, named by their inode number */
	for (size_t i = 0; va->repair && rc == 0 && i < norphans; i++) {
		struct meta_inode in = { 0 };
		char name[32];
		if (meta_inode_get(m, txn, orphans[i], false, &in) < 0)
			continue;
		snprintf(name, sizeof(name), "inode-%016llx", (unsigned long long)orphans[i]);
		struct meta_dirent d = { .child = orphans[i], .type = in.mode & S_IFMT };
		meta_inode_release(&in);
		rc = meta_lost_found_ensure(m, txn);
		if (rc == 0)
			rc = meta_entry_put(m, txn, META_LOST_FOUND_INO, name, d.child, d.type);
		if (rc == 0)
			rc = meta_entry_account(m, txn, META_LOST_FOUND_INO, d.child, d.type, 1);
		if (rc == 0)
			va->fixed++;
	}
	free(orphans);
out:
	free(ts.t);
	return rc;
}

int meta_verify(struct meta *m, bool repair, meta_problem_fn fn, void *arg, uint64_t *problems,
		uint64_t *fixed)
{
	struct verify_args va = { .repair = repair, .fn = fn, .arg = arg };
	int rc;

	if (repair) {
		rc = meta_txn_write(m, do_verify, &va);
	} else {
		MDB_txn *txn;
		rc = meta_txn_read(m, &txn);
		if (rc == 0) {
			rc = do_verify(m, txn, &va);
			mdb_txn_abort(txn);
		}
	}
	*problems = va.problems;
	*fixed = va.fixed;
	return rc;
}
