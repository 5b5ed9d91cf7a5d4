/*
 * ops_name - the operations on names and inodes: lookup and forget, getattr
 * and readlink, the creation and removal of names, rename and link. Each is
 * one namespace call (meta/); a rename first commits the buffered writes of
 * what it moves, so no other mount sees a name lead to content that has
 * not arrived. Replication of each change: docs/REPLICATION.md.
 */
#include <errno.h>
#include <stdio.h> /* RENAME_NOREPLACE, RENAME_EXCHANGE */
#include <string.h>

#include "ops_i.h"

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct meta_inode in = { 0 };
	int rc;

	if (fs_health_lookup(req, parent, name)) /* /.caskfs (ops_health.c) */
		return;
	rc = meta_lookup(fs_of(req)->meta, parent, name, &in);
	if (rc == -ENOENT) {
		/* a negative entry the kernel may keep: names created or renamed
		 * through this mount replace it themselves */
		struct fuse_entry_param e;

		memset(&e, 0, sizeof(e));
		e.entry_timeout = fs_of(req)->timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	fs_ops_finish_entry(req, rc, &in);
}

static void forget_one(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	if (fs_health_ino(ino)) {
		fs_health_forget(ino);
		return;
	}
	/* once the kernel holds no lookup (and so no descriptor) of it, writes
	 * still buffered are committed, and an unlinked inode goes */
	if (fs_nlookup_forget(&fs->lookups, ino, nlookup) && fs_file_forget(fs, ino))
		fs_purge_forgotten(fs, ino);
}

void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	forget_one(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		forget_one(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct meta_inode in = { 0 };
	int rc;

	(void)fi;
	if (fs_health_ino(ino)) {
		fs_health_getattr(req, ino);
		return;
	}
	rc = meta_getattr(fs_of(req)->meta, ino, false, &in);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fs_ops_reply_attr(req, &in);
	meta_inode_release(&in);
}

void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct meta_inode in = { 0 };
	int rc = meta_getattr(fs_of(req)->meta, ino, false, &in);

	if (rc == 0 && !in.target)
		rc = -EINVAL;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_readlink(req, in.target);
	meta_inode_release(&in);
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct meta_inode in = { 0 };

	fs_ops_finish_entry(req, fs_ops_make(req, parent, name, mode, rdev, NULL, &in), &in);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct meta_inode in = { 0 };

	fs_ops_finish_entry(
	    req, fs_ops_make(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, &in), &in);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct meta_inode in = { 0 };

	fs_ops_finish_entry(req, fs_ops_make(req, parent, name, S_IFLNK | 0777, 0, link, &in), &in);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -meta_unlink(fs_of(req)->meta, parent, name));
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -meta_rmdir(fs_of(req)->meta, parent, name));
}

/*
 * Commits the buffered writes of the file parent/name, if any. A rename
 * waits for it: written to a temporary name and renamed over the target
 * (how editors and rsync replace files), the content reaches the namespace
 * and its outbox before the rename does, so no other mount sees the target
 * name lead to a file whose content has not arrived.
 */
static int commit_named(struct fs *fs, fuse_ino_t parent, const char *name)
{
	struct meta_inode in = { 0 };
	struct fs_file *f;
	int rc = meta_lookup(fs->meta, parent, name, &in);

	meta_inode_release(&in);
	if (rc)
		return rc == -ENOENT ? 0 : rc; /* the rename reports it */
	if (!(f = fs_file_find(fs, in.ino)))
		return 0;
	rc = fs_file_commit(fs, f);
	fs_file_put(fs, f);
	return rc;
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	int rc = -EINVAL;

	if (fs_health_reserved(parent, name) || fs_health_reserved(newparent, newname))
		rc = -EPERM;
	else if ((flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) == 0 &&
	    (rc = commit_named(fs_of(req), parent, name)) == 0 &&
	    (!(flags & RENAME_EXCHANGE) ||
	     (rc = commit_named(fs_of(req), newparent, newname)) == 0))
		rc = meta_rename(fs_of(req)->meta, parent, name, newparent, newname,
				 ((flags & RENAME_NOREPLACE) ? META_RENAME_NOREPLACE : 0) |
				     ((flags & RENAME_EXCHANGE) ? META_RENAME_EXCHANGE : 0));
	fuse_reply_err(req, -rc);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct meta_inode in = { 0 };

	if (fs_health_reserved(newparent, newname) || fs_health_ino(ino)) {
		fuse_reply_err(req, fs_health_ino(ino) ? EPERM : EEXIST);
		return;
	}
	fs_ops_finish_entry(req, meta_link(fs_of(req)->meta, ino, newparent, newname, &in), &in);
}
