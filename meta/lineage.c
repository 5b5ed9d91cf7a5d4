/*
 * lineage - where a file's content came from, kept in every inode record of
 * a regular file (struct meta_lineage; docs/REPLICATION.md, "Conflict
 * copies"): each local write of the record compares the content (size and
 * chunk map) with the stored one, and a change starts a new run (another
 * node's content is replaced) or extends this node's run. With it, apply
 * can tell an edit made from the other side's version (no conflict) from one
 * made beside it (a conflict: the loser is kept). The content region is
 * found in the encoded record here, in one function, so the chunk map's
 * layout can change without touching the rest.
 */
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"
#include "store/endian.h"

/* The chunk map of an encoded inode record (p, len bytes, checked by
 * meta_inode_decode): false when it does not decode. Version 1 (a dense
 * grid) and 2 (sparse) lay it out differently, so two records compare equal
 * only in the same version: a version 1 record's first rewrite looks like a
 * change of content, which costs at most a run boundary. */
static bool content_region(const uint8_t *p, size_t len, const uint8_t **map, size_t *maplen)
{
	bool v2 = len > 0 && p[0] == META_INODE_VERSION;
	size_t fixed = v2 ? META_INODE_FIXED : META_INODE_FIXED_V1;
	size_t slot = v2 ? META_INODE_SLOT : META_INODE_SLOT_V1;

	if (len < fixed + 4)
		return false;
	uint32_t tlen = get_le32(p + 76);
	if (tlen > META_SYMLINK_MAX || len - fixed - 4 < tlen)
		return false;
	const uint8_t *q = p + fixed + tlen;
	uint32_t n = get_le32(q);
	size_t bytes = 4 + (size_t)n * slot;
	if ((size_t)(p + len - q) < bytes)
		return false;
	*map = q;
	*maplen = bytes;
	return true;
}

bool meta_content_same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	const uint8_t *ma, *mb;
	size_t la, lb;

	return content_region(a, alen, &ma, &la) && content_region(b, blen, &mb, &lb) &&
	       a[0] == b[0] && memcmp(a + 32, b + 32, 8) == 0 && la == lb &&
	       memcmp(ma, mb, la) == 0;
}

static bool zero_version(const struct store_version *v)
{
	return v->stamp == 0 && v->node == 0;
}

void meta_lineage_stamp(struct meta *m, MDB_txn *txn, struct meta_inode *in, uint8_t *buf,
			size_t len)
{
	struct meta_lineage *l = &in->lineage;
	struct meta_inode old = { 0 };
	uint8_t k[8];
	MDB_val key = { 8, k }, cur;

	if (!S_ISREG(in->mode) || len < META_LINEAGE_SIZE)
		return;
	meta_be64(k, in->ino); /* table.c calls this: no call back into it */
	if (mdb_get(txn, m->inodes, &key, &cur) != 0 ||
	    meta_inode_decode(cur.mv_data, cur.mv_size, false, &old) != 0) {
		memset(l, 0, sizeof(*l)); /* a new file: its first run starts here */
		l->content = l->run = in->version;
	} else if (meta_content_same(cur.mv_data, cur.mv_size, buf, len)) {
		*l = old.lineage; /* attributes only: the content keeps its lineage */
	} else {
		struct meta_lineage was = old.lineage;
		if (zero_version(&was.content)) /* written before lineage was kept */
			was.content = was.run = old.version;
		*l = was;
		if (was.content.node != m->node) { /* another node's content: a new run */
			l->prev_run[1] = was.prev_run[0];
			l->prev_last[1] = was.prev_last[0];
			l->prev_run[0] = was.run;
			l->prev_last[0] = was.content;
			l->run = in->version;
		}
		l->content = in->version;
	}
	meta_inode_release(&old);
	meta_lineage_encode(l, buf + len - META_LINEAGE_SIZE);
}

bool meta_lineage_known(const struct meta_lineage *l)
{
	return !zero_version(&l->content) && !zero_version(&l->run);
}

bool meta_lineage_includes(const struct meta_lineage *w, const struct meta_lineage *x)
{
	if (store_version_cmp(&x->content, &w->content) == 0)
		return true;
	if (store_version_cmp(&x->run, &w->run) == 0)
		return store_version_cmp(&x->content, &w->content) <= 0;
	for (int i = 0; i < 2; i++)
		if (!zero_version(&w->prev_run[i]) &&
		    store_version_cmp(&x->run, &w->prev_run[i]) == 0)
			return store_version_cmp(&x->content, &w->prev_last[i]) <= 0;
	return false;
}
