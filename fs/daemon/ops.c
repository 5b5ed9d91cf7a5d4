/*
 * ops - the FUSE low-level operations of the daemon: the table a session is
 * started with, and what concerns the whole connection (what is asked of the
 * kernel at INIT, fs_session_init_conn; statfs). Each request is a do_x() that returns 0 or a
 * negative errno and fills what the reply needs; the wrapper sends exactly
 * one fuse_reply_* for it. Names and attributes come from the namespace
 * (meta/), bytes from the file states (file.c) over chunks; the operations
 * are grouped in ops_name.c, ops_file.c, ops_dir.c and ops_xattr.c.
 */
#include <errno.h>
#include <sys/statvfs.h>

#include "ops_i.h"

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;

	fs->no_open = fs_session_init_conn(conn, fs->writeback);
	/* The kernel enforces POSIX ACLs itself and caches them; the namespace
	 * keeps them in step with the mode and passes default ACLs on
	 * (meta/acl.c), which needs the umask left to it. */
	if (conn->capable & FUSE_CAP_POSIX_ACL)
		conn->want |= FUSE_CAP_POSIX_ACL;
	if (conn->capable & FUSE_CAP_DONT_MASK) {
		conn->want |= FUSE_CAP_DONT_MASK;
		fs->dont_mask = true;
	}
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	int rc = fs_space_stat(fs_of(req), &sv);

	(void)ino;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_statfs(req, &sv);
}

const struct fuse_lowlevel_ops fs_ops = {
	.init = op_init,
	.lookup = fs_op_lookup,
	.forget = fs_op_forget,
	.forget_multi = fs_op_forget_multi,
	.getattr = fs_op_getattr,
	.setattr = fs_op_setattr,
	.readlink = fs_op_readlink,
	.mknod = fs_op_mknod,
	.mkdir = fs_op_mkdir,
	.symlink = fs_op_symlink,
	.unlink = fs_op_unlink,
	.rmdir = fs_op_rmdir,
	.rename = fs_op_rename,
	.link = fs_op_link,
	.open = fs_op_open,
	.create = fs_op_create,
	.read = fs_op_read,
	.write = fs_op_write,
	.flush = fs_op_flush,
	.release = fs_op_release,
	.fsync = fs_op_fsync,
	.opendir = fs_op_opendir,
	.readdir = fs_op_readdir,
	.readdirplus = fs_op_readdirplus,
	.fsyncdir = fs_op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = fs_op_setxattr,
	.getxattr = fs_op_getxattr,
	.listxattr = fs_op_listxattr,
	.removexattr = fs_op_removexattr,
	.copy_file_range = fs_op_copy_file_range,
	.lseek = fs_op_lseek,
	.fallocate = fs_op_fallocate,
};
