/*
 * create - mknod of every kind of node (file, directory, symlink, fifo,
 * socket, device) and the inode numbers it hands out. Numbers are
 * node_id << 48 | counter, unique across a cluster; a mount reserves them
 * 1,024 at a time in the state table, so a create writes one tree fewer, and
 * a crash skips at most the rest of a reservation. docs/FORMAT.md
 * ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

struct mknod_args {
	uint64_t parent;
	const char *name;
	uint32_t mode, umask, uid, gid, rdev;
	const char *target;
	struct meta_inode *out;
};

/* Inode numbers reserved at a time: a create then writes one tree fewer
 * (16 to 12 us per create here); a crash skips at most this many. */
#define INO_RESERVE 1024

static int alloc_ino(struct meta *m, MDB_txn *txn, uint64_t *ino)
{
	if (m->ino_next >= m->ino_end) {
		uint64_t next;
		int rc = meta_state_read(m, txn, "next_ino", &next);

		if (rc)
			return rc;
		/* the all-ones number of this node's range is never handed out */
		uint64_t last = next | ((1ull << META_INO_NODE_SHIFT) - 1);
		if (next == last)
			return -ENOSPC;
		uint64_t end = last - next > INO_RESERVE ? next + INO_RESERVE : last;
		rc = meta_state_write(m, txn, "next_ino", end);
		if (rc)
			return rc;
		m->ino_next = next;
		m->ino_end = end;
		m->ino_reserved = true;
	}
	*ino = m->ino_next++;
	return 0;
}

/*
 * A new inode in a directory with a default ACL inherits it: the ACL masks
 * the mode it was created with (the umask is not applied then), becomes its
 * access ACL unless the mode says it all, and a directory keeps it as its own
 * default. Elsewhere the umask applies. Symlinks take neither. Called twice:
 * for the mode before the inode is written, then (write) for the xattrs
 * after it, so a peer replays the inode before its ACLs.
 */
static int inherit_acl(struct meta *m, MDB_txn *txn, const struct mknod_args *a,
		       struct meta_inode *in, bool write)
{
	uint8_t acl[META_XATTR_SIZE_MAX];
	uint32_t mode = a->mode;
	MDB_val val;
	bool equivalent;
	int rc;

	if (S_ISLNK(in->mode))
		return 0;
	rc = meta_xattr_find(m, txn, a->parent, META_ACL_DEFAULT, &val);
	if (rc == -ENODATA || (rc == 0 && val.mv_size > sizeof(acl))) {
		in->mode &= ~(a->umask & 07777);
		return 0;
	}
	if (rc)
		return rc;
	memcpy(acl, val.mv_data, val.mv_size);
	if (write && S_ISDIR(in->mode)) {
		rc = meta_xattr_write(m, txn, in->ino, META_ACL_DEFAULT, acl, val.mv_size, false);
		if (rc)
			return rc;
	}
	if (meta_acl_create(acl, val.mv_size, &mode, &equivalent) < 0) {
		in->mode &= ~(a->umask & 07777); /* a default ACL no kernel set: ignored */
		return 0;
	}
	if (!write)
		in->mode = (in->mode & ~07777u) | (mode & 07777);
	else if (!equivalent)
		rc = meta_xattr_write(m, txn, in->ino, META_ACL_ACCESS, acl, val.mv_size, false);
	return rc;
}

static int do_mknod(struct meta *m, MDB_txn *txn, void *arg)
{
	struct mknod_args *a = arg;
	struct meta_inode parent = { 0 }, in = { 0 };
	struct meta_dirent d;
	struct timespec t = meta_now();
	int rc = meta_dir_get(m, txn, a->parent, &parent);

	if (rc)
		return rc;
	rc = meta_entry_get(m, txn, a->parent, a->name, &d);
	if (rc == 0)
		return -EEXIST;
	if (rc != -ENOENT)
		return rc;
	rc = alloc_ino(m, txn, &in.ino);
	if (rc)
		return rc;
	in.mode = a->mode;
	in.uid = a->uid;
	in.gid = a->gid;
	in.rdev = a->rdev;
	if (parent.mode & S_ISGID) {
		in.gid = parent.gid;
		if (S_ISDIR(in.mode))
			in.mode |= S_ISGID;
	}
	in.atime = in.mtime = in.ctime = t;
	rc = inherit_acl(m, txn, a, &in, false);
	if (rc)
		return rc;
	in.target = (char *)a->target;
	in.size = a->target ? strlen(a->target) : 0;
	rc = meta_inode_put(m, txn, &in);
	in.target = NULL;
	if (rc == 0)
		rc = inherit_acl(m, txn, a, &in, true);
	if (rc == 0)
		rc = meta_entry_put(m, txn, a->parent, a->name, in.ino, in.mode);
	if (rc == 0)
		rc = meta_count_put(m, txn, in.ino, 1, 0);
	if (rc == 0 && S_ISDIR(in.mode)) {
		rc = meta_count_add(m, txn, a->parent, 0, 1, NULL);
		if (rc == 0)
			rc = meta_parent_put(m, txn, in.ino, a->parent);
	}
	if (rc == 0)
		rc = meta_dir_touch(m, txn, a->parent, t);
	if (rc == 0 && a->out) {
		*a->out = in;
		a->out->nlink = S_ISDIR(in.mode) ? 2 : 1;
		if (a->target) {
			a->out->target = strdup(a->target);
			if (!a->out->target)
				rc = -ENOMEM;
		}
	}
	return rc;
}

int meta_mknod(struct meta *m, uint64_t parent, const char *name, uint32_t mode, uint32_t umask,
	       uint32_t uid, uint32_t gid, uint32_t rdev, const char *target, struct meta_inode *out)
{
	struct mknod_args a = { parent, name, mode, umask, uid, gid, rdev, target, out };
	uint32_t type = mode & S_IFMT;
	int rc = meta_name_check(name);

	if (rc)
		return rc;
	if (type != S_IFREG && type != S_IFDIR && type != S_IFLNK && type != S_IFIFO &&
	    type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
		return -EINVAL;
	if ((type == S_IFLNK) != (target != NULL))
		return -EINVAL;
	if (target && (strlen(target) == 0 || strlen(target) > META_SYMLINK_MAX))
		return target[0] ? -ENAMETOOLONG : -ENOENT;
	return meta_txn_write(m, do_mknod, &a);
}
