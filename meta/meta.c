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

/*
 * Built on demand from a scan of the replicated tables and kept until the
 * next write transaction: anti-entropy asks many questions of a namespace at
 * rest, and a scan of 100,000 records takes tens of milliseconds.
 */
struct mt_item {
	uint64_t khash; /* xxh3-64 of (table, key): its top 16 bits are the bucket */
	uint64_t leaf;	/* xxh3-64 of (table, key, value): equal records, equal leaves */
	struct store_version version;
	size_t off; /* (table, key) bytes in the blob */
	uint16_t len;
	bool deleted;
};

struct meta_tree {
	uint64_t txn; /* meta_last_txn() it was built at */
	struct mt_item *items;
	size_t n, cap;
	uint8_t *blob;
	size_t blen, bcap;
	uint64_t sum[1 << 16];
	uint32_t count[1 << 16];
};

static pthread_mutex_t tree_mu = PTHREAD_MUTEX_INITIALIZER;

static int mt_add(struct meta_tree *t, uint8_t table, const MDB_val *key, const MDB_val *val)
{
	struct store_version v;
	bool deleted;
	uint8_t tk[1 + META_KEY_MAX];

	if (meta_head_decode(val->mv_data, val->mv_size, &v, &deleted) < 0 ||
	    key->mv_size > META_KEY_MAX)
		return 0; /* a damaged record: fsck reports it */
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		struct mt_item *n = realloc(t->items, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->items = n;
		t->cap = cap;
	}
	if (t->blen + 1 + key->mv_size > t->bcap) {
		size_t cap = t->bcap ? t->bcap * 2 : 65536;
		while (cap < t->blen + 1 + key->mv_size)
			cap *= 2;
		uint8_t *n = realloc(t->blob, cap);
		if (!n)
			return -ENOMEM;
		t->blob = n;
		t->bcap = cap;
	}
	tk[0] = table;
	memcpy(tk + 1, key->mv_data, key->mv_size);
	struct mt_item *it = &t->items[t->n++];
	it->khash = XXH3_64bits(tk, 1 + key->mv_size);
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, tk, 1 + key->mv_size);
	XXH3_64bits_update(&st, val->mv_data, val->mv_size);
	it->leaf = XXH3_64bits_digest(&st);
	it->version = v;
	it->deleted = deleted;
	it->off = t->blen;
	it->len = (uint16_t)(1 + key->mv_size);
	memcpy(t->blob + t->blen, tk, 1 + key->mv_size);
	t->blen += 1 + key->mv_size;
	t->sum[it->khash >> 48] += it->leaf;
	t->count[it->khash >> 48]++;
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	uint64_t x = ((const struct mt_item *)a)->khash, y = ((const struct mt_item *)b)->khash;
	return x < y ? -1 : x > y;
}

/* The tree as of now, built if the namespace changed since. Called with
 * tree_mu held; the tree stays valid until tree_mu is released. */
static int mt_get(struct meta *m, struct meta_tree **out)
{
	uint64_t txn_id = meta_last_txn(m);
	struct meta_tree *t = m->tree;
	MDB_txn *txn;
	int rc;

	if (t && t->txn == txn_id) {
		*out = t;
		return 0;
	}
	if (!t && !(t = m->tree = calloc(1, sizeof(*t))))
		return -ENOMEM;
	t->n = t->blen = 0;
	memset(t->sum, 0, sizeof(t->sum));
	memset(t->count, 0, sizeof(t->count));
	if ((rc = meta_txn_read(m, &txn)) != 0)
		return rc;
	for (uint8_t table = META_TABLE_INODES; rc == 0 && table <= META_TABLE_XATTRS; table++) {
		MDB_cursor *c;
		MDB_val key, val;
		rc = meta_errno(mdb_cursor_open(txn, meta_table_dbi(m, table), &c));
		if (rc)
			break;
		for (int g = mdb_cursor_get(c, &key, &val, MDB_FIRST); g == 0 && rc == 0;
		     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
			/* an inode no name leads to is local business: each node
			 * drops it when its own kernel lets go */
			if (table != META_TABLE_ENTRIES && key.mv_size >= 8) {
				MDB_val ok = { 8, key.mv_data }, ov;
				if (mdb_get(txn, m->orphans, &ok, &ov) == 0)
					continue;
			}
			rc = mt_add(t, table, &key, &val);
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	if (rc) {
		t->txn = 0;
		return rc;
	}
	qsort(t->items, t->n, sizeof(*t->items), cmp_item);
	t->txn = txn_id;
	*out = t;
	return 0;
}

void meta_tree_free(struct meta *m)
{
	pthread_mutex_lock(&tree_mu);
	if (m->tree) {
		free(m->tree->items);
		free(m->tree->blob);
		free(m->tree);
		m->tree = NULL;
	}
	pthread_mutex_unlock(&tree_mu);
}

/* The number the first depth nibbles of path spell. -EINVAL for a nibble over 15. */
static int path_number(const uint8_t *path, int depth, uint32_t *out)
{
	uint32_t n = 0;

	for (int i = 0; i < depth; i++) {
		if (path[i] > 15)
			return -EINVAL;
		n = n << 4 | path[i];
	}
	*out = n;
	return 0;
}

int meta_tree_children(struct meta *m, const uint8_t *path, int depth,
		       struct store_tree_node *self, struct store_tree_node children[16])
{
	struct meta_tree *t;
	uint32_t base;
	int rc;

	if (depth < 0 || depth >= STORE_TREE_DEPTH)
		return -EINVAL;
	if (path_number(path, depth, &base) < 0)
		return -EINVAL;
	pthread_mutex_lock(&tree_mu);
	rc = mt_get(m, &t);
	if (rc == 0) {
		/* a child at depth+1 covers 16^(3-depth) leaf buckets */
		uint32_t span = 1u << (4 * (STORE_TREE_DEPTH - 1 - depth));
		uint32_t first = base << (4 * (STORE_TREE_DEPTH - depth));
		struct store_tree_node all = { 0, 0 };
		for (int k = 0; k < 16; k++) {
			children[k].hash = children[k].count = 0;
			for (uint32_t b = first + (uint32_t)k * span; b < first + (uint32_t)(k + 1) * span;
			     b++) {
				children[k].hash += t->sum[b];
				children[k].count += t->count[b];
			}
			all.hash += children[k].hash;
			all.count += children[k].count;
		}
		if (self)
			*self = all;
	}
	pthread_mutex_unlock(&tree_mu);
	return rc;
}

int meta_tree_bucket(struct meta *m, const uint8_t path[STORE_TREE_DEPTH], meta_bucket_fn fn,
		     void *arg)
{
	struct meta_tree *t;
	uint32_t bucket;
	int rc;

	if (path_number(path, STORE_TREE_DEPTH, &bucket) < 0)
		return -EINVAL;
	pthread_mutex_lock(&tree_mu);
	rc = mt_get(m, &t);
	if (rc == 0) {
		size_t lo = 0, hi = t->n;
		while (lo < hi) { /* the first item of the bucket */
			size_t mid = (lo + hi) / 2;
			if (t->items[mid].khash >> 48 < bucket)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (size_t i = lo; i < t->n && t->items[i].khash >> 48 == bucket && rc == 0; i++) {
			const struct mt_item *it = &t->items[i];
			rc = fn(arg, t->blob + it->off, it->len, &it->version, it->leaf, it->deleted);
		}
	}
	pthread_mutex_unlock(&tree_mu);
	return rc;
}

int meta_get_record(struct meta *m, const uint8_t *tk, size_t tklen, uint8_t **rec, size_t *len)
{
	MDB_txn *txn;
	MDB_val key = { tklen - 1, (void *)(tk + 1) }, val;
	int rc;

	*rec = NULL;
	if (tklen < 2 || tklen > 1 + META_KEY_MAX || tk[0] < META_TABLE_INODES ||
	    tk[0] > META_TABLE_XATTRS)
		return -EINVAL;
	if ((rc = meta_txn_read(m, &txn)) != 0)
		return rc;
	rc = meta_errno(mdb_get(txn, meta_table_dbi(m, tk[0]), &key, &val));
	if (rc == 0) {
		*len = META_WIRE_HEAD + key.mv_size + val.mv_size;
		*rec = malloc(*len);
		if (!*rec) {
			rc = -ENOMEM;
		} else {
			meta_wire_encode(*rec, tk[0], key.mv_data, key.mv_size, val.mv_data,
					 val.mv_size);
		}
	}
	mdb_txn_abort(txn);
	return rc;
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
