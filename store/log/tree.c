/*
 * tree - the hash tree as store.h shows it: a node and its 16 children, and
 * the keys of one leaf bucket. The one idea: a path is a run of nibbles of
 * the key hash from the root, so a leaf bucket is one contiguous range of
 * hashes, which the keydir (ordered by hash prefix) lists without a full
 * scan. Used by anti-entropy (docs/PROTOCOL.md, `get @PATH`).
 */
#include <errno.h>

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
