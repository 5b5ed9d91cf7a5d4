/*
 * xattr - extended attributes, one record per (inode, name), stamped like
 * inodes and entries; a removed one stays as a tombstone so replication
 * cannot bring it back. POSIX ACLs are xattrs too, enforced by the kernel;
 * setting an access ACL sets the mode bits it implies (acl.c).
 * docs/FORMAT.md ("Namespace", the xattr record).
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

struct xattr_args {
	uint64_t ino;
	const char *name;
	const void *value;
	size_t size;
	int flags;
	bool remove;
};

int meta_xattr_find(struct meta *m, MDB_txn *txn, uint64_t ino, const char *name, MDB_val *val)
{
	uint8_t k[8 + META_XATTR_NAME_MAX];
	MDB_val key = { meta_key_xattr(k, ino, name, strlen(name)), k };
	struct store_version v;
	bool deleted = true;
	int rc = mdb_get(txn, m->xattrs, &key, val);

	if (rc)
		return rc == MDB_NOTFOUND ? -ENODATA : meta_errno(rc);
	rc = meta_head_decode(val->mv_data, val->mv_size, &v, &deleted);
	if (rc)
		return rc;
	if (deleted)
		return -ENODATA;
	val->mv_data = (uint8_t *)val->mv_data + META_XATTR_FIXED;
	val->mv_size -= META_XATTR_FIXED;
	return 0;
}

int meta_xattr_write(struct meta *m, MDB_txn *txn, uint64_t ino, const char *name,
		     const void *value, size_t size, bool remove)
{
	uint8_t k[8 + META_XATTR_NAME_MAX];
	MDB_val key = { meta_key_xattr(k, ino, name, strlen(name)), k };
	MDB_val val = { META_XATTR_FIXED + (remove ? 0 : size), NULL };
	struct store_version v = meta_version_new(m);
	int rc = meta_errno(mdb_put(txn, m->xattrs, &key, &val, MDB_RESERVE));

	if (rc)
		return rc;
	meta_head_encode(val.mv_data, &v, remove);
	if (!remove && size)
		memcpy((uint8_t *)val.mv_data + META_XATTR_FIXED, value, size);
	return meta_outbox_add(m, txn, META_TABLE_XATTRS, &key, &val);
}

/*
 * An access ACL set on in: its bits become in's mode, and one that says no
 * more than the mode is not kept (as ext4 does), so a copy out of the mount
 * finds no ACL where the source had none. *remove is set then.
 */
static int take_access_acl(struct meta_inode *in, const void *value, size_t size, bool *remove)
{
	bool equivalent;
	int rc = meta_acl_mode(value, size, &in->mode, &equivalent);

	if (rc == 0 && equivalent)
		*remove = true;
	return rc;
}

static int do_setxattr(struct meta *m, MDB_txn *txn, void *arg)
{
	struct xattr_args *a = arg;
	struct meta_inode in = { 0 };
	MDB_val val;
	bool remove = a->remove, exists;
	int rc = meta_inode_get(m, txn, a->ino, true, &in);

	if (rc)
		return rc;
	rc = meta_xattr_find(m, txn, a->ino, a->name, &val);
	exists = rc == 0;
	if (rc == -ENODATA)
		rc = 0;
	if (rc == 0 && exists && (a->flags & META_XATTR_CREATE))
		rc = -EEXIST;
	if (rc == 0 && !exists && ((a->flags & META_XATTR_REPLACE) || a->remove))
		rc = -ENODATA;
	if (rc == 0 && !a->remove && strcmp(a->name, META_ACL_ACCESS) == 0)
		rc = take_access_acl(&in, a->value, a->size, &remove);
	else if (rc == 0 && !a->remove && strcmp(a->name, META_ACL_DEFAULT) == 0)
		rc = !S_ISDIR(in.mode) ? -EACCES : meta_acl_valid(a->value, a->size);
	/* an equivalent ACL where there was none leaves nothing to remove */
	if (rc == 0 && (!remove || exists))
		rc = meta_xattr_write(m, txn, a->ino, a->name, a->value, a->size, remove);
	if (rc == 0) {
		in.ctime = meta_now();
		rc = meta_inode_put(m, txn, &in);
	}
	meta_inode_release(&in);
	return rc;
}

static int check_xattr_name(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len == 0 || len > META_XATTR_NAME_MAX ? -ERANGE : 0;
}

int meta_setxattr(struct meta *m, uint64_t ino, const char *name, const void *value, size_t size,
		  int flags)
{
	struct xattr_args a = { ino, name, value, size, flags, false };
	int rc = check_xattr_name(name);

	if (rc)
		return rc;
	if (size > META_XATTR_SIZE_MAX)
		return -E2BIG;
	if ((flags & META_XATTR_CREATE) && (flags & META_XATTR_REPLACE))
		return -EINVAL;
	return meta_txn_write(m, do_setxattr, &a);
}

int meta_removexattr(struct meta *m, uint64_t ino, const char *name)
{
	struct xattr_args a = { ino, name, NULL, 0, 0, true };
	int rc = check_xattr_name(name);

	return rc ? rc : meta_txn_write(m, do_setxattr, &a);
}

ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf, size_t cap)
{
	struct meta_inode in = { 0 };
	MDB_val val;
	MDB_txn *txn;
	ssize_t rc = check_xattr_name(name);

	if (rc)
		return rc;
	rc = meta_txn_read(m, &txn);
	if (rc)
		return rc;
	rc = meta_inode_get(m, txn, ino, false, &in);
	meta_inode_release(&in);
	if (rc == 0)
		rc = meta_xattr_find(m, txn, ino, name, &val);
	if (rc == 0) {
		if (cap && cap < val.mv_size)
			rc = -ERANGE;
		else {
			if (cap)
				memcpy(buf, val.mv_data, val.mv_size);
			rc = (ssize_t)val.mv_size;
		}
	}
	mdb_txn_abort(txn);
	return rc;
}

ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t cap)
{
	struct meta_inode in = { 0 };
	MDB_txn *txn;
	MDB_cursor *c;
	uint8_t k[8];
	MDB_val key = { 8, k }, val;
	size_t need = 0;
	ssize_t rc = meta_txn_read(m, &txn);
	int g;

	if (rc)
		return rc;
	rc = meta_inode_get(m, txn, ino, false, &in);
	meta_inode_release(&in);
	if (rc == 0)
		rc = meta_errno(mdb_cursor_open(txn, m->xattrs, &c));
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	meta_be64(k, ino);
	for (g = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE); g == 0;
	     g = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
		struct store_version v;
		bool deleted;
		size_t nlen = key.mv_size - 8;

		if (key.mv_size <= 8 || meta_get_be64(key.mv_data) != ino)
			break;
		if (meta_head_decode(val.mv_data, val.mv_size, &v, &deleted) < 0 || deleted)
			continue;
		if (cap && need + nlen + 1 > cap) {
			rc = -ERANGE;
			break;
		}
		if (cap) {
			memcpy(buf + need, (const uint8_t *)key.mv_data + 8, nlen);
			buf[need + nlen] = '\0';
		}
		need += nlen + 1;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc == 0 && g != 0 && g != MDB_NOTFOUND)
		rc = meta_errno(g);
	return rc ? rc : (ssize_t)need;
}
