/*
 * table - the helpers every operation is built from: get and put an inode,
 * an entry, the local counters, parents and state, each inside the
 * transaction it is given. The one idea: a local change writes inodes and
 * entries only through here (xattrs in xattr.c), each under a new version
 * and, when replicating, into the outbox in the same transaction; what can
 * be derived (link counts, parents, orphans) is kept in local tables that
 * never leave the node. Tables and records: docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"
#include "store/endian.h"

struct timespec meta_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return t;
}

struct store_version meta_version_new(struct meta *m)
{
	struct store_version v = { store_clock_now(m->clock), m->node };

	return v;
}

int meta_name_check(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EINVAL;
	if (len > META_NAME_MAX)
		return -ENAMETOOLONG;
	return 0;
}

MDB_dbi meta_table_dbi(struct meta *m, enum meta_table table)
{
	return table == META_TABLE_INODES    ? m->inodes
	       : table == META_TABLE_ENTRIES ? m->entries
					     : m->xattrs;
}

int meta_u64_get(MDB_txn *txn, MDB_dbi dbi, uint64_t k64, MDB_val *val)
{
	uint8_t k[8];
	MDB_val key = { 8, k };

	meta_be64(k, k64);
	return meta_errno(mdb_get(txn, dbi, &key, val));
}

int meta_u64_put(MDB_txn *txn, MDB_dbi dbi, uint64_t k64, const void *v, size_t vlen)
{
	uint8_t k[8];
	MDB_val key = { 8, k }, val = { vlen, (void *)v };

	meta_be64(k, k64);
	return meta_errno(mdb_put(txn, dbi, &key, &val, 0));
}

int meta_u64_del(MDB_txn *txn, MDB_dbi dbi, uint64_t k64)
{
	uint8_t k[8];
	MDB_val key = { 8, k };
	int rc;

	meta_be64(k, k64);
	rc = mdb_del(txn, dbi, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

int meta_inode_get(struct meta *m, MDB_txn *txn, uint64_t ino, bool chunks, struct meta_inode *out)
{
	MDB_val val;
	int rc = meta_u64_get(txn, m->inodes, ino, &val);

	if (rc)
		return rc;
	rc = meta_inode_decode(val.mv_data, val.mv_size, chunks, out);
	out->snapshot = mdb_txn_id(txn);
	if (rc == -EBADMSG)
		fprintf(stderr, "caskfs: meta: inode %llu has a damaged record\n",
			(unsigned long long)ino);
	out->ino = ino;
	return rc;
}

int meta_dir_get(struct meta *m, MDB_txn *txn, uint64_t ino, struct meta_inode *dir)
{
	int rc = meta_inode_get(m, txn, ino, false, dir);

	meta_inode_release(dir);
	return rc == 0 && !S_ISDIR(dir->mode) ? -ENOTDIR : rc;
}

int meta_reserved_move(struct meta *m, MDB_txn *txn, const MDB_val *key, const MDB_val *now)
{
	MDB_val old;
	uint64_t before = 0, after = now ? meta_inode_reserved(now->mv_data, now->mv_size) : 0;
	uint64_t total;
	int rc = mdb_get(txn, m->inodes, (MDB_val *)key, &old);

	if (rc == 0)
		before = meta_inode_reserved(old.mv_data, old.mv_size);
	else if (rc != MDB_NOTFOUND)
		return meta_errno(rc);
	if (before == after)
		return 0;
	rc = meta_state_read(m, txn, "reserved", &total);
	if (rc == -ENOENT)
		total = 0;
	else if (rc)
		return rc;
	total = total + after < before ? 0 : total + after - before;
	return meta_state_write(m, txn, "reserved", total);
}

int meta_inode_put(struct meta *m, MDB_txn *txn, struct meta_inode *in)
{
	uint8_t k[8], *buf;
	size_t len;
	MDB_val key = { 8, k }, val;
	int rc;

	in->version = meta_version_new(m);
	buf = meta_inode_encode(in, false, &len);
	if (!buf)
		return -ENOMEM;
	meta_lineage_stamp(m, txn, in, buf, len); /* lineage.c: a content change? */
	meta_be64(k, in->ino);
	val.mv_size = len;
	val.mv_data = buf;
	rc = meta_reserved_move(m, txn, &key, &val);
	if (rc == 0)
		rc = meta_errno(mdb_put(txn, m->inodes, &key, &val, 0));
	if (rc == 0)
		rc = meta_outbox_add(m, txn, META_TABLE_INODES, &key, &val);
	free(buf);
	return rc;
}

int meta_entry_get(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name,
		   struct meta_dirent *d)
{
	uint8_t k[META_KEY_MAX];
	MDB_val key, val;
	int rc;

	key.mv_size = meta_key_dirent(k, parent, name, strlen(name));
	key.mv_data = k;
	rc = mdb_get(txn, m->entries, &key, &val);
	if (rc)
		return meta_errno(rc);
	rc = meta_dirent_decode(val.mv_data, val.mv_size, d);
	if (rc < 0)
		return rc;
	return d->deleted ? -ENOENT : 0;
}

int meta_entry_store(struct meta *m, MDB_txn *txn, const MDB_val *key, const MDB_val *val)
{
	uint8_t nk[8 + META_KEY_MAX];
	MDB_val cur, nkey = { 8 + key->mv_size, nk }, empty = { 0, "" };
	struct meta_dirent was, now;
	int rc;

	if (key->mv_size > META_KEY_MAX)
		return -EINVAL;
	memcpy(nk + 8, key->mv_data, key->mv_size);
	/* the names table follows the record: the old binding's row goes */
	rc = mdb_get(txn, m->entries, (MDB_val *)key, &cur);
	if (rc == 0 && meta_dirent_decode(cur.mv_data, cur.mv_size, &was) == 0 && !was.deleted) {
		meta_be64(nk, was.child);
		rc = mdb_del(txn, m->names, &nkey, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return meta_errno(rc);
	} else if (rc && rc != MDB_NOTFOUND) {
		return meta_errno(rc);
	}
	if ((rc = meta_errno(mdb_put(txn, m->entries, (MDB_val *)key, (MDB_val *)val, 0))) != 0)
		return rc;
	if (meta_dirent_decode(val->mv_data, val->mv_size, &now) == 0 && !now.deleted) {
		meta_be64(nk, now.child);
		rc = meta_errno(mdb_put(txn, m->names, &nkey, &empty, 0));
	}
	return rc;
}

int meta_entry_put_key(struct meta *m, MDB_txn *txn, MDB_val *key, uint64_t child, uint32_t type,
		       const struct store_version *origin)
{
	uint8_t v[META_DIRENT_SIZE];
	struct meta_dirent d = { .version = meta_version_new(m),
				 .deleted = child == 0,
				 .type = type & S_IFMT,
				 .child = child },
			   was;
	MDB_val val = { META_DIRENT_SIZE, v }, cur;

	if (origin && child)
		d.origin = *origin;
	/* what it replaces, so a peer can tell a replacement from a clash */
	if (mdb_get(txn, m->entries, key, &cur) == 0 &&
	    meta_dirent_decode(cur.mv_data, cur.mv_size, &was) == 0)
		d.prev = was.version;

	meta_dirent_encode(&d, v);
	int rc = meta_entry_store(m, txn, key, &val);
	return rc ? rc : meta_outbox_add(m, txn, META_TABLE_ENTRIES, key, &val);
}

int meta_entry_put(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t child,
		   uint32_t type)
{
	return meta_entry_move(m, txn, parent, name, child, type, NULL);
}

int meta_entry_move(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t child,
		    uint32_t type, const struct store_version *origin)
{
	uint8_t k[META_KEY_MAX];
	MDB_val key = { meta_key_dirent(k, parent, name, strlen(name)), k };

	return meta_entry_put_key(m, txn, &key, child, type, origin);
}

int meta_count_get(struct meta *m, MDB_txn *txn, uint64_t ino, uint32_t *links, uint32_t *subdirs)
{
	MDB_val val;
	int rc = meta_u64_get(txn, m->counts, ino, &val);

	*links = *subdirs = 0;
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	if (val.mv_size != 8)
		return -EBADMSG;
	*links = get_le32(val.mv_data);
	*subdirs = get_le32((const uint8_t *)val.mv_data + 4);
	return 0;
}

int meta_count_put(struct meta *m, MDB_txn *txn, uint64_t ino, uint32_t links, uint32_t subdirs)
{
	uint8_t v[8];

	put_le32(v, links);
	put_le32(v + 4, subdirs);
	return meta_u64_put(txn, m->counts, ino, v, 8);
}

int meta_count_add(struct meta *m, MDB_txn *txn, uint64_t ino, int dl, int ds, uint32_t *links_out)
{
	uint32_t l, sd;
	int rc = meta_count_get(m, txn, ino, &l, &sd);

	if (rc)
		return rc;
	l = (uint32_t)((int)l + dl);
	sd = (uint32_t)((int)sd + ds);
	if (links_out)
		*links_out = l;
	return meta_count_put(m, txn, ino, l, sd);
}

int meta_parent_get(struct meta *m, MDB_txn *txn, uint64_t dir, uint64_t *parent)
{
	MDB_val val;
	int rc = meta_u64_get(txn, m->parents, dir, &val);

	if (rc)
		return rc;
	if (val.mv_size != 8)
		return -EBADMSG;
	*parent = meta_get_be64(val.mv_data);
	return 0;
}

int meta_parent_put(struct meta *m, MDB_txn *txn, uint64_t dir, uint64_t parent)
{
	uint8_t v[8];

	meta_be64(v, parent);
	return meta_u64_put(txn, m->parents, dir, v, 8);
}

int meta_state_read(struct meta *m, MDB_txn *txn, const char *name, uint64_t *v)
{
	MDB_val key = { strlen(name), (void *)name }, val;
	int rc = meta_errno(mdb_get(txn, m->state, &key, &val));

	if (rc)
		return rc;
	if (val.mv_size != 8)
		return -EBADMSG;
	*v = get_le64(val.mv_data);
	return 0;
}

int meta_state_write(struct meta *m, MDB_txn *txn, const char *name, uint64_t v)
{
	uint8_t b[8];
	MDB_val key = { strlen(name), (void *)name }, val = { 8, b };

	put_le64(b, v);
	return meta_errno(mdb_put(txn, m->state, &key, &val, 0));
}

void meta_nlink_fill(struct meta *m, MDB_txn *txn, struct meta_inode *in)
{
	uint32_t links = 0, subdirs = 0;

	meta_count_get(m, txn, in->ino, &links, &subdirs);
	in->nlink = S_ISDIR(in->mode) ? (links ? 2 + subdirs : 0) : links;
}

int meta_dir_ensure(struct meta *m, MDB_txn *txn, uint64_t ino, uint32_t perm, bool *created)
{
	struct meta_inode d = { 0 };
	int rc = meta_inode_get(m, txn, ino, false, &d);

	meta_inode_release(&d);
	*created = false;
	if (rc != -ENOENT)
		return rc;
	d.ino = ino;
	d.mode = S_IFDIR | perm;
	d.atime = d.mtime = d.ctime = meta_now();
	rc = meta_inode_put(m, txn, &d);
	*created = rc == 0;
	return rc;
}

int meta_dir_touch(struct meta *m, MDB_txn *txn, uint64_t dir, struct timespec t)
{
	struct meta_inode d = { 0 };
	int rc = meta_inode_get(m, txn, dir, true, &d);

	if (rc == 0) {
		d.mtime = d.ctime = t;
		rc = meta_inode_put(m, txn, &d);
	}
	meta_inode_release(&d);
	return rc;
}

int meta_link_drop(struct meta *m, MDB_txn *txn, struct meta_inode *in, struct timespec t)
{
	uint32_t links;
	int rc = meta_count_add(m, txn, in->ino, -1, 0, &links);

	if (rc)
		return rc;
	if (links == 0)
		return meta_u64_put(txn, m->orphans, in->ino, "", 0);
	in->ctime = t;
	return meta_inode_put(m, txn, in);
}

int meta_entry_account(struct meta *m, MDB_txn *txn, uint64_t parent, uint64_t child, uint32_t type,
		       int delta)
{
	uint32_t links;
	int rc = meta_count_add(m, txn, child, delta, 0, &links);

	if (rc == 0 && S_ISDIR(type)) {
		rc = meta_count_add(m, txn, parent, 0, delta, NULL);
		if (rc == 0)
			rc = delta > 0 ? meta_parent_put(m, txn, child, parent)
				       : meta_u64_del(txn, m->parents, child);
	}
	if (rc == 0)
		rc = links == 0 ? meta_u64_put(txn, m->orphans, child, "", 0)
				: meta_u64_del(txn, m->orphans, child);
	return rc;
}

int meta_outbox_add(struct meta *m, MDB_txn *txn, enum meta_table table, const MDB_val *key,
		    const MDB_val *val)
{
	uint8_t k[8];
	MDB_val ok = { 8, k }, ov = { META_WIRE_HEAD + key->mv_size + val->mv_size, NULL };
	int rc;

	if (!m->replicate)
		return 0;
	meta_be64(k, ++m->outbox_seq);
	rc = mdb_put(txn, m->outbox, &ok, &ov, MDB_RESERVE);
	if (rc)
		return meta_errno(rc);
	meta_wire_encode(ov.mv_data, (uint8_t)table, key->mv_data, key->mv_size, val->mv_data,
			 val->mv_size);
	return 0;
}
