/*
 * killpriv - what a write, a truncation or a chown takes from a file once
 * the kernel leaves that to the daemon (FUSE_HANDLE_KILLPRIV_V2, asked for
 * in session.c): setuid, setgid where the group may execute (without that
 * bit setgid marks mandatory locking and stays), and security.capability,
 * as the VFS does for a local filesystem. The kernel says when: a write or
 * a truncation by a caller without CAP_FSETID carries a flag, and a chown
 * of anything but a directory always clears them. Taking this over is what
 * lets the kernel skip the getxattr of security.capability before writes.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon_i.h"

#define CAPS_XATTR "security.capability"

/* Whether the caller of req is in group gid (its first or another group). */
static bool in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, groups);
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

int fs_killpriv(struct fs *fs, fuse_req_t req, uint64_t ino, bool privileged, bool tell_kernel)
{
	struct meta_inode in = { 0 };
	mode_t kill = 0, mode;
	gid_t gid;
	int rc = meta_getattr(fs->meta, ino, false, &in);

	if (rc < 0)
		return rc;
	mode = in.mode;
	gid = in.gid;
	meta_inode_release(&in);
	if (S_ISDIR(mode))
		return 0;
	if (mode & S_ISUID)
		kill |= S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) ||
	    ((mode & S_ISGID) && !privileged && !in_group(req, gid)))
		kill |= S_ISGID;
	if (kill) {
		struct meta_inode a = { .mode = mode & ~kill };
		if ((rc = meta_setattr(fs->meta, ino, META_SET_MODE, &a, NULL)) < 0) {
			fprintf(stderr, "caskfs: inode %llu: cannot clear setuid/setgid: %s\n",
				(unsigned long long)ino, strerror(-rc));
			return rc;
		}
	}
	rc = meta_removexattr(fs->meta, ino, CAPS_XATTR);
	if (rc < 0 && rc != -ENODATA)
		return rc;
	/* a write's answer carries no attributes: the kernel must not keep
	 * the mode it has (a setattr's answer carries the new one) */
	struct fuse_session *se = atomic_load(&fs->se);
	if (tell_kernel && se && (kill || rc == 0))
		fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);
	return 0;
}
