/*
 * htree - incremental commutative hash tree (see htree_i.h), and the two
 * hashes that feed it: a key's place (store_key_hash) and its leaf value
 * (store_tree_leaf), both part of the sync protocol. The node at depth d
 * holding key hash h is level[d][h >> (64 - 4d)]: the root is level 0, the
 * leaf buckets (65536 of them) are level STORE_TREE_DEPTH.
 * Leaf format: docs/FORMAT.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "htree_i.h"
#include "../endian.h"
#include "../xxh_i.h"

struct store_htree {
	struct store_tree_node *level[STORE_TREE_DEPTH + 1];
};

int store_htree_create(struct store_htree **out)
{
	struct store_htree *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (int d = 0; d <= STORE_TREE_DEPTH; d++) {
		t->level[d] = calloc((size_t)1 << (4 * d), sizeof(struct store_tree_node));
		if (!t->level[d]) {
			store_htree_destroy(t);
			return -ENOMEM;
		}
	}
	*out = t;
	return 0;
}

void store_htree_destroy(struct store_htree *t)
{
	if (!t)
		return;
	for (int d = 0; d <= STORE_TREE_DEPTH; d++)
		free(t->level[d]);
	free(t);
}

void store_htree_update(struct store_htree *t, uint64_t key_hash, uint64_t leaf, int sign)
{
	for (int d = 0; d <= STORE_TREE_DEPTH; d++) {
		uint64_t idx = d ? key_hash >> (64 - 4 * d) : 0;
		struct store_tree_node *n = &t->level[d][idx];

		if (sign > 0) {
			n->hash += leaf;
			n->count++;
		} else {
			n->hash -= leaf;
			n->count--;
		}
	}
}

struct store_tree_node store_htree_node(const struct store_htree *t, int depth, uint64_t index)
{
	return t->level[depth][index];
}

const struct store_tree_node *store_htree_level(const struct store_htree *t, int depth)
{
	return t->level[depth];
}

uint64_t store_key_hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

uint64_t store_tree_leaf(const void *key, size_t klen, const struct store_version *version,
			 uint64_t value_hash, bool tombstone)
{
	uint8_t buf[STORE_KEY_MAX + 21];

	if (klen > STORE_KEY_MAX)
		klen = STORE_KEY_MAX;
	memcpy(buf, key, klen);
	put_le64(buf + klen, version->stamp);
	put_le32(buf + klen + 8, version->node);
	put_le64(buf + klen + 12, value_hash);
	buf[klen + 20] = tombstone ? 1 : 0;
	return XXH3_64bits(buf, klen + 21);
}
