/*
 * inotab - a hash table of nodes keyed by inode number, for the file states
 * (file.c) and the kernel's lookup counts (nlookup.c). Nodes are embedded in
 * their owner's struct (fs_container_of gets it back) and chained per
 * bucket; the table doubles once it holds as many nodes as buckets. The
 * caller does the locking.
 */
#include <errno.h>
#include <stdlib.h>

#include "daemon_i.h"

#define INOTAB_FIRST 256 /* buckets at the first insert */

/* The chain of ino (nbuckets > 0). Inode numbers carry the node id in their
 * high bits and count up below, so they are mixed first. */
static struct fs_ino_node **chain(const struct fs_ino_table *t, uint64_t ino)
{
	return &t->buckets[(size_t)((ino * 0x9e3779b97f4a7c15ULL) >> 32) & (t->nbuckets - 1)];
}

/* Doubles the buckets; keeps the old ones (longer chains) without memory. */
static int grow(struct fs_ino_table *t)
{
	size_t n = t->nbuckets ? 2 * t->nbuckets : INOTAB_FIRST, oldn = t->nbuckets;
	struct fs_ino_node **b = calloc(n, sizeof(*b)), **old = t->buckets;

	if (!b)
		return oldn ? 0 : -ENOMEM;
	t->buckets = b;
	t->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct fs_ino_node *e = old[i], *next; e; e = next) {
			next = e->next;
			struct fs_ino_node **to = chain(t, e->ino);
			e->next = *to;
			*to = e;
		}
	}
	free(old);
	return 0;
}

struct fs_ino_node *fs_ino_find(const struct fs_ino_table *t, uint64_t ino)
{
	struct fs_ino_node *e = t->nbuckets ? *chain(t, ino) : NULL;

	while (e && e->ino != ino)
		e = e->next;
	return e;
}

int fs_ino_insert(struct fs_ino_table *t, struct fs_ino_node *node)
{
	if (t->n >= t->nbuckets) {
		int rc = grow(t);
		if (rc)
			return rc;
	}
	struct fs_ino_node **to = chain(t, node->ino);
	node->next = *to;
	*to = node;
	t->n++;
	return 0;
}

void fs_ino_remove(struct fs_ino_table *t, struct fs_ino_node *node)
{
	struct fs_ino_node **pp = chain(t, node->ino);

	while (*pp != node)
		pp = &(*pp)->next;
	*pp = node->next;
	t->n--;
}

struct fs_ino_node *fs_ino_next(const struct fs_ino_table *t, const struct fs_ino_node *node)
{
	size_t i = 0;

	if (node) {
		if (node->next)
			return node->next;
		i = (size_t)(chain(t, node->ino) - t->buckets) + 1;
	}
	for (; i < t->nbuckets; i++)
		if (t->buckets[i])
			return t->buckets[i];
	return NULL;
}

void fs_ino_table_free(struct fs_ino_table *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->n = 0;
}
