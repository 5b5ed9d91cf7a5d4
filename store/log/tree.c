/*
 * tree - the hash tree as store.h shows it: a node and its 16 children, and
 * the keys of one leaf bucket. The one idea: a path is a run of nibbles of
 * the key hash from the root, so a leaf bucket is one contiguous range of
 * hashes, which the keydir (ordered by hash prefix) lists without a full
 * scan. Used by anti-entropy (docs/PROTOCOL.md, `get @PATH`); the masked form
 * sums only the leaf buckets of a set (the buckets two nodes both own), so two
 * nodes compare exactly what they share (docs/REPLICATION.md).
 */
#include <errno.h>
#include <string.h>

#include "store_i.h"

static int path_index(const uint8_t *path, int depth, uint64_t *index)
{
	uint64_t idx = 0;

	if (depth < 0 || depth > STORE_TREE_DEPTH || (depth && !path))
		return -EINVAL;
	for (int i = 0; i < depth; i++) {
		if (path[i] > 15)
			return -EINVAL;
		idx = idx << 4 | path[i];
	}
	*index = idx;
	return 0;
}

int store_tree_children(struct store *s, const uint8_t *path, int depth,
			struct store_tree_node *self, struct store_tree_node children[16])
{
	uint64_t idx;

	if (depth >= STORE_TREE_DEPTH || path_index(path, depth, &idx) < 0)
		return -EINVAL;
	pthread_rwlock_rdlock(&s->lock);
	if (self)
		*self = store_htree_node(s->tree, depth, idx);
	for (int i = 0; i < 16; i++)
		children[i] = store_htree_node(s->tree, depth + 1, idx << 4 | (uint64_t)i);
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

int store_tree_bucket(struct store *s, const uint8_t path[STORE_TREE_DEPTH], store_scan_fn fn,
		      void *arg)
{
	struct store_snapshot sn = { .tombstones = true };
	uint64_t idx, lo, hi;
	const int shift = 64 - 4 * STORE_TREE_DEPTH;

	if (path_index(path, STORE_TREE_DEPTH, &idx) < 0)
		return -EINVAL;
	lo = idx << shift;
	hi = lo | ((1ull << shift) - 1);
	pthread_rwlock_rdlock(&s->lock);
	store_kd_range(s->kd, lo, hi, store_snapshot_add, &sn);
	pthread_rwlock_unlock(&s->lock);
	return store_snapshot_walk(&sn, fn, arg);
}

static bool leaf_in(const uint64_t *mask, uint64_t leaf)
{
	return !mask || (mask[leaf >> 6] >> (leaf & 63) & 1);
}

int store_tree_children_in(struct store *s, const uint8_t *path, int depth, const uint64_t *mask,
			   struct store_tree_node *self, struct store_tree_node children[16])
{
	uint64_t idx;

	if (!mask)
		return store_tree_children(s, path, depth, self, children);
	if (depth >= STORE_TREE_DEPTH || path_index(path, depth, &idx) < 0)
		return -EINVAL;
	/* each child covers span leaves, from idx's first leaf on */
	const int below = STORE_TREE_DEPTH - depth - 1;
	const uint64_t span = 1ull << (4 * below);
	struct store_tree_node sum = { 0, 0 };

	pthread_rwlock_rdlock(&s->lock);
	const struct store_tree_node *leaves = store_htree_level(s->tree, STORE_TREE_DEPTH);
	for (int k = 0; k < 16; k++) {
		uint64_t first = ((idx << 4) | (uint64_t)k) << (4 * below);
		struct store_tree_node n = { 0, 0 };
		for (uint64_t l = first; l < first + span; l++) {
			if ((l & 63) == 0 && l + 64 <= first + span && mask[l >> 6] == 0) {
				l += 63; /* a whole word of leaves outside the set */
				continue;
			}
			if (leaf_in(mask, l)) {
				n.hash += leaves[l].hash;
				n.count += leaves[l].count;
			}
		}
		children[k] = n;
		sum.hash += n.hash;
		sum.count += n.count;
	}
	pthread_rwlock_unlock(&s->lock);
	if (self)
		*self = sum;
	return 0;
}

int store_tree_leaves(struct store *s, uint32_t first, uint32_t count, struct store_tree_node *out)
{
	const uint64_t leaves_total = 1ull << (4 * STORE_TREE_DEPTH);

	if ((uint64_t)first + count > leaves_total)
		return -EINVAL;
	pthread_rwlock_rdlock(&s->lock);
	memcpy(out, store_htree_level(s->tree, STORE_TREE_DEPTH) + first, count * sizeof(*out));
	pthread_rwlock_unlock(&s->lock);
	return 0;
}
