/*
 * test_htree - the hash tree through store.h: equal content written in any
 * order gives equal trees, one change shows, a node is the sum of its
 * children, buckets list exactly their keys, and reopen keeps the tree. The
 * tree over a set of leaves sums exactly those; a key forgotten leaves the
 * tree and the counters, writes nothing, and is garbage for compaction.
 */
#include <errno.h>

#include "testutil.h"

#define KEYS 3000

struct item {
	char key[32];
	int klen;
	struct store_version v;
	uint8_t val[40];
	bool tomb;
};

static void make_items(struct item *it)
{
	for (int i = 0; i < KEYS; i++) {
		it[i].klen = sprintf(it[i].key, "obj-%d", i);
		it[i].v.stamp = 1000 + (uint64_t)i * 7;
		it[i].v.node = 1 + (uint32_t)(i % 3);
		tu_fill(it[i].val, sizeof(it[i].val), (uint64_t)i);
		it[i].tomb = i % 17 == 0;
	}
}

static struct store *load(const char *dir, const struct item *it, uint64_t order_seed)
{
	struct store_options o;
	struct store *s;
	int idx[KEYS];
	uint64_t rng = order_seed;

	tu_options(&o, NULL);
	o.segment_size = 32 * 1024;
	assert_int_equal(store_open(dir, &o, &s), 0);
	for (int i = 0; i < KEYS; i++)
		idx[i] = i;
	for (int i = KEYS - 1; i > 0; i--) { /* shuffle */
		int j = (int)(tu_rand(&rng) % (uint64_t)(i + 1)), t = idx[i];
		idx[i] = idx[j];
		idx[j] = t;
	}
	for (int n = 0; n < KEYS; n++) {
		const struct item *x = &it[idx[n]];
		assert_int_equal(
		    store_apply(s, x->key, (size_t)x->klen, x->val, sizeof(x->val), &x->v, x->tomb),
		    0);
	}
	return s;
}

static void assert_trees_equal(struct store *a, struct store *b, int depth, uint8_t *path)
{
	struct store_tree_node sa, sb, ca[16], cb[16];

	assert_int_equal(store_tree_children(a, path, depth, &sa, ca), 0);
	assert_int_equal(store_tree_children(b, path, depth, &sb, cb), 0);
	assert_int_equal(sa.hash, sb.hash);
	assert_int_equal(sa.count, sb.count);
	uint64_t sum = 0, cnt = 0;
	for (int i = 0; i < 16; i++) {
		assert_int_equal(ca[i].hash, cb[i].hash);
		assert_int_equal(ca[i].count, cb[i].count);
		sum += ca[i].hash;
		cnt += ca[i].count;
	}
	assert_int_equal(sum, sa.hash);
	assert_int_equal(cnt, sa.count);
	if (depth < 2) {
		for (int i = 0; i < 16; i++) {
			path[depth] = (uint8_t)i;
			assert_trees_equal(a, b, depth + 1, path);
		}
	}
}

static void test_order_independent(void **state)
{
	(void)state;
	static struct item it[KEYS];
	char *d1 = tu_tmpdir(), *d2 = tu_tmpdir();
	struct store *a, *b;
	struct store_stats sa, sb;
	uint8_t path[STORE_TREE_DEPTH] = { 0 };

	make_items(it);
	a = load(d1, it, 1);
	b = load(d2, it, 2);
	store_stats(a, &sa);
	store_stats(b, &sb);
	assert_int_equal(sa.tree_root, sb.tree_root);
	assert_int_equal(sa.tombstones, KEYS / 17 + 1);
	assert_trees_equal(a, b, 0, path);

	/* one change on b: roots differ, and exactly one leaf path differs */
	struct store_version newer = { .stamp = 999999, .node = 1 };
	assert_int_equal(store_apply(b, "obj-5", 5, "changed", 7, &newer, false), 0);
	store_stats(b, &sb);
	assert_true(sa.tree_root != sb.tree_root);
	struct store_tree_node ca[16], cb[16];
	assert_int_equal(store_tree_children(a, NULL, 0, NULL, ca), 0);
	assert_int_equal(store_tree_children(b, NULL, 0, NULL, cb), 0);
	int differ = 0;
	for (int i = 0; i < 16; i++)
		differ += ca[i].hash != cb[i].hash;
	assert_int_equal(differ, 1);
	/* the same change on a: equal again */
	assert_int_equal(store_apply(a, "obj-5", 5, "changed", 7, &newer, false), 0);
	store_stats(a, &sa);
	assert_int_equal(sa.tree_root, sb.tree_root);

	/* a reopened store has the same tree */
	uint64_t root = sa.tree_root;
	store_close(a);
	struct store_options o;
	tu_options(&o, NULL);
	o.segment_size = 32 * 1024;
	assert_int_equal(store_open(d1, &o, &a), 0);
	store_stats(a, &sa);
	assert_int_equal(sa.tree_root, root);
	assert_trees_equal(a, b, 0, path);
	store_close(a);
	store_close(b);
	tu_rmdir(d1);
	tu_rmdir(d2);
}

struct bucket_acc {
	uint64_t prefix;
	int n, bad;
	uint64_t leaf_sum;
};

static int bucket_cb(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	struct bucket_acc *a = arg;

	if (store_key_hash(key, klen) >> 48 != a->prefix)
		a->bad++;
	a->n++;
	a->leaf_sum += store_tree_leaf(key, klen, &m->version, m->value_hash, m->tombstone);
	return 0;
}

static int all_cb(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	int *counts = arg;

	(void)m;
	counts[store_key_hash(key, klen) >> 48]++;
	return 0;
}

/* Each leaf bucket lists exactly its keys, and their leaves sum to the node. */
static void test_buckets(void **state)
{
	(void)state;
	static struct item it[KEYS];
	static int counts[65536];
	char *d = tu_tmpdir();
	struct store *s;

	make_items(it);
	s = load(d, it, 3);
	memset(counts, 0, sizeof(counts));
	assert_int_equal(store_scan(s, "", 0, true, all_cb, counts), 0);
	for (uint64_t b = 0; b < 65536; b += 97) {
		uint8_t path[4] = { (uint8_t)(b >> 12), (uint8_t)(b >> 8 & 15),
				    (uint8_t)(b >> 4 & 15), (uint8_t)(b & 15) };
		struct bucket_acc acc = { .prefix = b };
		struct store_tree_node self, ch[16];

		assert_int_equal(store_tree_bucket(s, path, bucket_cb, &acc), 0);
		assert_int_equal(acc.bad, 0);
		assert_int_equal(acc.n, counts[b]);
		assert_int_equal(store_tree_children(s, path, 3, &self, ch), 0);
		assert_int_equal(ch[b & 15].count, (uint64_t)counts[b]);
		assert_int_equal(ch[b & 15].hash, acc.leaf_sum);
	}
	uint8_t bad[4] = { 16, 0, 0, 0 };
	struct bucket_acc acc = { 0 };
	assert_int_equal(store_tree_bucket(s, bad, bucket_cb, &acc), -EINVAL);
	struct store_tree_node ch[16];
	assert_int_equal(store_tree_children(s, bad, 4, NULL, ch), -EINVAL);
	store_close(s);
	tu_rmdir(d);
}

static void test_masked_and_forget(void **state)
{
	(void)state;
	static struct item it[KEYS];
	static uint64_t mask[65536 / 64];
	char *d = tu_tmpdir();
	struct store *s;
	struct store_tree_node self, ch[16], all[16], leaves[256];
	struct store_stats st;

	make_items(it);
	s = load(d, it, 5);
	/* every third leaf: each child sums its leaves in the set, and no others */
	memset(mask, 0, sizeof(mask));
	for (uint32_t b = 0; b < 65536; b += 3)
		mask[b >> 6] |= 1ull << (b & 63);
	uint8_t path[3] = { 7, 0, 0 };
	assert_int_equal(store_tree_children_in(s, path, 1, mask, &self, ch), 0);
	assert_int_equal(store_tree_leaves(s, 7u << 12, 256, leaves), 0);
	uint64_t hash = 0, count = 0;
	for (uint32_t l = 0; l < 256; l++) {
		uint32_t b = (7u << 12) + l;
		if (b % 3 == 0) {
			hash += leaves[l].hash;
			count += leaves[l].count;
		}
	}
	/* child 0 of node 7 covers leaves 7 << 12 .. + 256 */
	assert_int_equal(ch[0].hash, hash);
	assert_int_equal(ch[0].count, count);
	uint64_t sum = 0;
	for (int k = 0; k < 16; k++)
		sum += ch[k].hash;
	assert_int_equal(self.hash, sum);
	assert_int_equal(store_tree_children_in(s, path, 0, NULL, &self, all), 0);
	assert_int_equal(store_tree_children(s, path, 0, &self, ch), 0);
	assert_memory_equal(all, ch, sizeof(ch));
	assert_int_equal(store_tree_leaves(s, 65530, 7, leaves), -EINVAL);

	/* forget one live key: only with its version; it leaves tree and counts */
	const struct item *x = &it[1];
	struct store_version other = { x->v.stamp + 1, x->v.node };
	store_stats(s, &st);
	uint64_t keys = st.keys, root = st.tree_root, appended = st.appended;
	assert_int_equal(store_forget(s, x->key, (size_t)x->klen, &other), STORE_STALE);
	assert_int_equal(store_forget(s, x->key, (size_t)x->klen, &x->v), 0);
	assert_int_equal(store_forget(s, x->key, (size_t)x->klen, &x->v), -ENOENT);
	struct store_meta m;
	assert_int_equal(store_stat(s, x->key, (size_t)x->klen, &m), -ENOENT);
	assert_false(m.tombstone);
	store_stats(s, &st);
	assert_int_equal(st.keys, keys - 1);
	assert_int_not_equal(st.tree_root, root);
	assert_int_equal(st.appended, appended); /* nothing written */
	/* an older copy is taken again afterwards (the owners decide, not this node) */
	assert_int_equal(
	    store_apply(s, x->key, (size_t)x->klen, x->val, sizeof(x->val), &x->v, false), 0);
	store_stats(s, &st);
	assert_int_equal(st.tree_root, root);
	store_close(s);
	tu_rmdir(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_buckets),
		cmocka_unit_test(test_masked_and_forget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
