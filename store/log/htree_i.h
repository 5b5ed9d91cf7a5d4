/*
 * htree - the 16-ary hash tree over the keydir, for anti-entropy. Each key
 * contributes one 64-bit leaf value (store_tree_leaf()); every tree node holds
 * the sum mod 2^64 and the count of the leaves below it. Sums commute, so the
 * tree is updated in place on each change (subtract the old leaf, add the new)
 * and equal content gives equal roots whatever the order of writes.
 * Levels 0..STORE_TREE_DEPTH are arrays; a key's path is the top nibbles of its
 * hash. Guarded by the store's rwlock.
 */
#ifndef CASKFS_STORE_HTREE_I_H
#define CASKFS_STORE_HTREE_I_H

#include <stdint.h>

#include "../store.h"

struct store_htree;

int store_htree_create(struct store_htree **out);
void store_htree_destroy(struct store_htree *t);

/* Adds (sign +1) or removes (sign -1) one leaf of a key with this hash. */
void store_htree_update(struct store_htree *t, uint64_t key_hash, uint64_t leaf, int sign);

/* The node at depth with index (its path as a number, depth nibbles). */
struct store_tree_node store_htree_node(const struct store_htree *t, int depth, uint64_t index);

/* The 16^depth nodes of one level, in index order (owned by t). */
const struct store_tree_node *store_htree_level(const struct store_htree *t, int depth);

#endif
