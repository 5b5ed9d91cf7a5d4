/*
 * lineage - where a file's content came from, kept in every inode record of
 * a regular file (struct meta_lineage; docs/REPLICATION.md, "Conflict
 * copies"): each local write of the record compares the content (size and
 * chunk map) with the stored one, and a change starts a new run (another
 * node's content is replaced) or extends this node's run. With it, apply
 * can tell an edit made from the other side's version (no conflict) from one
 * made beside it (a conflict: the loser is kept), and when one side changed
 * only attributes (a chmod, a rename's ctime) beside the other's edit, the
 * two records merge into one that keeps both (meta_inode_merge). The content region is
 * found in the encoded record here, in one function, so the chunk map's
 * layout can change without touching the rest.
 */
#include <errno.h>
#include <stdlib.h>
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

/* The lineage of an encoded record of a regular file (version 2, no
 * target), into *l: false when it is not one or has none. */
static bool lineage_of(const uint8_t *p, size_t len, struct meta_lineage *l)
{
	const uint8_t *map;
	size_t maplen;

	if (len < META_INODE_FIXED || p[0] != META_INODE_VERSION || !S_ISREG(get_le32(p + 16)) ||
	    get_le32(p + 76) != 0 || !content_region(p, len, &map, &maplen) ||
	    (size_t)(p + len - map) != maplen + META_LINEAGE_SIZE)
		return false;
	meta_lineage_decode(map + maplen, l);
	return meta_lineage_known(l);
}

int meta_inode_merge(const MDB_val *cur, const MDB_val *in, uint8_t **out, size_t *outlen,
		     bool *in_content)
{
	const uint8_t *a = cur->mv_data, *b = in->mv_data;
	struct meta_lineage la, lb;
	struct store_version va, vb;

	if (!lineage_of(a, cur->mv_size, &la) || !lineage_of(b, in->mv_size, &lb))
		return 0;
	va.node = get_le32(a + 4);
	va.stamp = get_le64(a + 8);
	vb.node = get_le32(b + 4);
	vb.stamp = get_le64(b + 8);
	int rc = store_version_cmp(&vb, &va), cc = store_version_cmp(&lb.content, &la.content);
	if (cc == 0 || (rc != 0 && (rc > 0) == (cc > 0)))
		return 0;
	/* attributes of A, content of C */
	const MDB_val *A = rc > 0 ? in : cur, *C = cc > 0 ? in : cur;
	const uint8_t *pa = A->mv_data, *pc = C->mv_data;
	size_t n = C->mv_size;
	uint8_t *p = malloc(n);

	if (!p)
		return -ENOMEM;
	memcpy(p, pc, C->mv_size);
	if (rc != 0) {
		/* the head and the attributes: mode, uid, gid, rdev, atime,
		 * ctime; size, mtime, reserved and allocated stay C's */
		memcpy(p, pa, 32);
		memcpy(p + 40, pa + 40, 12);
		memcpy(p + 64, pa + 64, 12);
		put_le32(p + 4, get_le32(pa + 4) | META_DERIVED_NODE);
	}
	*out = p;
	*outlen = n;
	*in_content = cc > 0;
	return 1;
}
