/*
 * ops_xattr - extended attributes, stored in the namespace (meta/); POSIX
 * ACLs are xattrs the kernel itself checks (default_permissions). getxattr
 * and listxattr answer a size query (size 0) with the length and a read
 * with the bytes.
 */
#include <errno.h>
#include <stdlib.h>

#include "ops_i.h"

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags)
{
	if (fs_hashx_name(name) || fs_health_ino(ino)) { /* user.caskfs.* are read-only (hashx.c) */
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -meta_setxattr(fs_of(req)->meta, ino, name, value, size, flags));
}

/* Answers getxattr and listxattr: a size query (size 0) gets the length, a
 * read the bytes; both ask the namespace through query, into a buffer of size. */
static void reply_xattr(fuse_req_t req, size_t size,
			ssize_t (*query)(struct fs *fs, fuse_ino_t ino, const char *name, char *buf,
					 size_t cap),
			fuse_ino_t ino, const char *name)
{
	char *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = query(fs_of(req), ino, name, buf, size);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static ssize_t query_get(struct fs *fs, fuse_ino_t ino, const char *name, char *buf, size_t cap)
{
	if (fs_health_ino(ino))
		return -ENODATA;
	if (fs_hashx_name(name))
		return fs_hashx_get(fs, ino, name, buf, cap);
	return meta_getxattr(fs->meta, ino, name, buf, cap);
}

static ssize_t query_list(struct fs *fs, fuse_ino_t ino, const char *name, char *buf, size_t cap)
{
	(void)name;
	if (fs_health_ino(ino))
		return 0;
	return meta_listxattr(fs->meta, ino, buf, cap);
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	reply_xattr(req, size, query_get, ino, name);
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	reply_xattr(req, size, query_list, ino, NULL);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	if (fs_hashx_name(name) || fs_health_ino(ino)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	fuse_reply_err(req, -meta_removexattr(fs_of(req)->meta, ino, name));
}
