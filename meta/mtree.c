/*
 * mtree - the hash tree over the replicated records, for anti-entropy
 * (`caskfs sync`), shaped like the store's: 16-ary, STORE_TREE_DEPTH levels,
 * sums of leaves mod 2^64, so equal namespaces have equal roots. It is not
 * stored: it is built from a scan of the three replicated tables when first
 * asked for after a change, and kept until the next one. docs/FORMAT.md
 * ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "meta_i.h"
#include "store/xxh_i.h"

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

int meta_tree_children(struct meta *m, const uint8_t *path, int depth, struct store_tree_node *self,
		       struct store_tree_node children[16])
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
			for (uint32_t b = first + (uint32_t)k * span;
			     b < first + (uint32_t)(k + 1) * span; b++) {
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
			rc = fn(arg, t->blob + it->off, it->len, &it->version, it->leaf,
				it->deleted);
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
