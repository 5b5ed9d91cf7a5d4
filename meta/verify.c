/*
 * verify - fsck of the namespace: the link and subdirectory counts of every
 * inode against what the live entries say, entries naming missing inodes,
 * inodes no name leads to that are not known orphans, the names table
 * against the live entries, and one rename left under two names (two live
 * entries of one binding, rebind.c). With repair, the
 * counts are rewritten and such inodes linked into /lost+found, in the same
 * write transaction as the check. docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

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

/* A live entry's object and binding (rebind.c): two alike are one rename
 * left under two names. */
struct bound {
	uint64_t child, stamp;
	uint32_t node;
};

static int cmp_bound(const void *a, const void *b)
{
	const struct bound *x = a, *y = b;

	if (x->child != y->child)
		return x->child < y->child ? -1 : 1;
	if (x->stamp != y->stamp)
		return x->stamp < y->stamp ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
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
	struct bound *bs = NULL;
	size_t nbs = 0, capbs = 0;
	uint64_t names = 0;
	bool names_bad = false;
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
		if (nbs == capbs) {
			size_t cap = capbs ? capbs * 2 : 1024;
			struct bound *n = realloc(bs, cap * sizeof(*n));
			if (!n) {
				rc = -ENOMEM;
				break;
			}
			bs = n;
			capbs = cap;
		}
		struct store_version b = meta_dirent_binding(&d);
		bs[nbs++] = (struct bound){ d.child, b.stamp, b.node };
		/* the names table must list it */
		uint8_t nk[8 + META_KEY_MAX];
		MDB_val nkey = { 8 + key.mv_size, nk }, nv;
		meta_be64(nk, d.child);
		if (key.mv_size <= META_KEY_MAX)
			memcpy(nk + 8, key.mv_data, key.mv_size);
		if (key.mv_size > META_KEY_MAX || mdb_get(txn, m->names, &nkey, &nv) != 0) {
			report(va, d.child, "entry '%.*s' is missing from the names table",
			       (int)(key.mv_size - 16), (const char *)key.mv_data + 16);
			names_bad = true;
		} else {
			names++;
		}
		rc = tally_add(&ts, d.child, 1, 0);
		if (rc == 0 && S_ISDIR(d.type))
			rc = tally_add(&ts, parent, 0, 1);
	}
	mdb_cursor_close(c);
	if (rc)
		goto out;
	if (nbs)
		qsort(bs, nbs, sizeof(*bs), cmp_bound);
	for (size_t i = 1; i < nbs; i++)
		if (cmp_bound(&bs[i - 1], &bs[i]) == 0)
			report(va, bs[i].child,
			       "two names from one rename (binding %016" PRIx64 "/%u)", bs[i].stamp,
			       bs[i].node);
	MDB_stat nst;
	if (mdb_stat(txn, m->names, &nst) == 0 && nst.ms_entries != names) {
		report(va, 0,
		       "the names table has %zu rows, the live entries it lists are %" PRIu64,
		       nst.ms_entries, names);
		names_bad = true;
	}
	/* the table is derived: built again from the entries */
	if (names_bad && va->repair && (rc = meta_names_rebuild(m, txn)) != 0)
		goto out;
	if (names_bad && va->repair)
		va->fixed++;
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
	for (int g = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &key, &val, MDB_FIRST);
	     g == 0 && rc == 0; g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
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
			report(va, ino,
			       "link count %u and %u subdirectories, the entries say %d and %d", hl,
			       hs, links, subdirs);
			if (va->repair &&
			    meta_count_put(m, txn, ino, (uint32_t)links, (uint32_t)subdirs) == 0)
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
	free(bs);
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
