/*
 * index - what the engine knows in memory, kept in step: the keydir (key ->
 * newest record), the hash tree, the segment table and the live counters of
 * each segment and of the store. The one idea: a new version of a key goes
 * through account(), which takes the old record out of the tree and the
 * counters and puts the new one in, so the four never disagree; a record
 * moved by compaction only changes the segment whose counter holds it.
 * Callers hold s->lock for writing (store_i.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

static uint64_t entry_leaf(const struct store_kd_entry *e)
{
	struct store_version v = { e->stamp, e->node };

	return store_tree_leaf(e->key, e->key_len, &v, e->value_hash,
			       e->flags & STORE_REC_TOMBSTONE);
}

int store_table_set(struct store *s, uint32_t id, struct store_segment *seg)
{
	if (id >= s->segs_cap) {
		uint32_t cap = s->segs_cap ? s->segs_cap : 64;
		while (cap <= id)
			cap *= 2;
		struct store_segment **n = realloc(s->segs, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		memset(n + s->segs_cap, 0, (cap - s->segs_cap) * sizeof(*n));
		s->segs = n;
		s->segs_cap = cap;
	}
	s->segs[id] = seg;
	return 0;
}

struct store_segment *store_table_get(struct store *s, uint32_t id)
{
	return id < s->segs_cap ? s->segs[id] : NULL;
}

static void account(struct store *s, struct store_kd_entry *e, uint64_t hash, int sign)
{
	struct store_segment *seg = store_table_get(s, e->seg);
	bool tomb = e->flags & STORE_REC_TOMBSTONE;

	store_htree_update(s->tree, hash, entry_leaf(e), sign);
	if (sign > 0) {
		if (seg)
			seg->live_bytes += e->len;
		s->live_bytes += e->len;
		if (tomb)
			s->tombstones++;
		else
			s->keys++;
		if (e->expires)
			s->expiring++;
	} else {
		if (seg)
			seg->live_bytes -= e->len;
		s->live_bytes -= e->len;
		if (tomb)
			s->tombstones--;
		else
			s->keys--;
		if (e->expires)
			s->expiring--;
	}
}

int store_index_record(struct store *s, uint64_t hash, const void *key,
		       const struct store_rec_hdr *h, uint32_t seg, uint32_t off, uint32_t len,
		       bool ties_win)
{
	struct store_kd_entry *e = store_kd_find(s->kd, hash, key, h->key_len);

	if (e) {
		struct store_version nv = { h->stamp, h->node }, ov = { e->stamp, e->node };
		int c = store_version_cmp(&nv, &ov);

		if (c < 0 || (c == 0 && !ties_win))
			return 0;
		account(s, e, hash, -1);
	} else {
		e = store_kd_insert(s->kd, hash, key, h->key_len);
		if (!e)
			return -ENOMEM;
	}
	e->stamp = h->stamp;
	e->node = h->node;
	e->value_hash = h->value_hash;
	e->flags = h->flags;
	e->expires = h->expires;
	e->seg = seg;
	e->off = off;
	e->len = len;
	account(s, e, hash, +1);
	return 1;
}

void store_index_meta(const struct store_kd_entry *e, struct store_meta *m)
{
	memset(m, 0, sizeof(*m));
	m->version.stamp = e->stamp;
	m->version.node = e->node;
	m->value_hash = e->value_hash;
	m->segment = e->seg;
	m->offset = e->off;
	m->tombstone = e->flags & STORE_REC_TOMBSTONE;
	m->compressed = e->flags & STORE_REC_ZSTD;
	m->attr.expires = e->expires;
}

void store_index_move(struct store *s, struct store_kd_entry *e, struct store_segment *from,
		      uint32_t seg, uint32_t off)
{
	struct store_segment *to;

	from->live_bytes -= e->len;
	e->seg = seg;
	e->off = off;
	to = store_table_get(s, seg);
	if (to)
		to->live_bytes += e->len;
}
