/*
 * sync_i.h - between the tree walk (sync.c) and its sides (sync_ep.c): the
 * records of a leaf bucket as the walk compares them, and what it asks of a
 * side. The lists belong to the walk, which frees their arrays; values
 * returned by fs_sync_ep_get are malloc'd and the caller's to free.
 */
#ifndef CASKFS_FS_REPL_SYNC_I_H
#define CASKFS_FS_REPL_SYNC_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "repl_i.h"

/* The longest record key of either tree: a namespace key (table byte, 16
 * bytes, a name); the sscanf width in sync_ep.c is 2 * FS_SYNC_TK_MAX. */
#define FS_SYNC_TK_MAX (1 + 16 + META_NAME_MAX)

/* A record of a leaf bucket: its key, version, value hash, and tombstone. */
struct fs_sync_rec {
	uint8_t key[FS_SYNC_TK_MAX];
	size_t klen;
	struct store_version v;
	uint64_t hash;
	bool tomb;
};

struct fs_sync_reclist {
	struct fs_sync_rec *r;
	size_t n, cap;
};

/* The tree node at path (depth nibbles) and its 16 children: 0, -EPROTO
 * (a node that does not answer the query, or a bad reply), -ENOENT (a
 * DATA_DIR without a namespace), or the error of the query. */
int fs_sync_ep_children(struct fs_sync_ep *e, enum fs_sync_kind k, const uint8_t *path, int depth,
			struct store_tree_node *self, struct store_tree_node kids[16]);
/* The records of the leaf bucket at path (STORE_TREE_DEPTH nibbles), into l
 * (emptied first): 0, -ENOMEM, or the error of the query. */
int fs_sync_ep_bucket(struct fs_sync_ep *e, enum fs_sync_kind k, const uint8_t *path,
		      struct fs_sync_reclist *l);
/* A record's full content: data as (value, version and tombstone in m), a
 * namespace record as its wire record in val. */
int fs_sync_ep_get(struct fs_sync_ep *e, enum fs_sync_kind k, const struct fs_sync_rec *r,
		   void **val, size_t *vlen, struct store_meta *m);
/* Writes what fs_sync_ep_get returned to e (kept only if newer there). */
int fs_sync_ep_put(struct fs_sync_ep *e, enum fs_sync_kind k, const struct fs_sync_rec *r,
		   const void *val, size_t vlen, const struct store_meta *m);

#endif
