/*
 * ops_i.h - the FUSE operations of the daemon. ops.c holds the table
 * (fs_ops, which mount.c starts a session with) and the connection-wide
 * operations; each group of operations is in its own file, and all of them
 * build their replies with ops_entry.c. Every fs_op_x sends exactly one
 * fuse_reply_* (or fuse_reply_none) for its request. The request's userdata
 * is the mount's struct fs.
 */
#ifndef CASKFS_FS_DAEMON_OPS_I_H
#define CASKFS_FS_DAEMON_OPS_I_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "daemon_i.h"

extern const struct fuse_lowlevel_ops fs_ops;

static inline struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* ---- ops_entry.c: what the kernel is told of an inode ---- */

/* The attributes of in, with the size and mtime of writes not committed yet. */
void fs_ops_fill_stat(struct fs *fs, const struct meta_inode *in, struct stat *st);
/* One more lookup of ino handed to the kernel (nlookup.c). */
void fs_ops_count_lookup(struct fs *fs, uint64_t ino);
/* Replies an entry for in (counted as a lookup), or its attributes. */
void fs_ops_reply_entry(fuse_req_t req, const struct meta_inode *in);
void fs_ops_reply_attr(fuse_req_t req, const struct meta_inode *in);
/* Replies an entry for in, or the error rc; releases in. */
void fs_ops_finish_entry(fuse_req_t req, int rc, struct meta_inode *in);
/* Creates parent/name (a symlink to target when it is not NULL) owned by the
 * request's caller: meta_mknod's result, the new inode in out. */
int fs_ops_make(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev,
		const char *target, struct meta_inode *out);

/* ---- ops_name.c: names and inodes ---- */

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets);
void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readlink(fuse_req_t req, fuse_ino_t ino);
void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags);
void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);

/* ---- ops_file.c: content, through the file states of file.c ---- */

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi);
void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi);
void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi);
void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			   struct fuse_file_info *fi_out, size_t len, int flags);
void fs_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi);
void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
		     struct fuse_file_info *fi);
void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);
void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi);

/* ---- ops_dir.c: listings ---- */

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);

/* ---- ops_xattr.c: extended attributes (and so POSIX ACLs) ---- */

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags);
void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);

/* ---- ops_health.c: /.caskfs/, read-only files of the mount's health ---- */

#define FS_HEALTH_NAME ".caskfs"
/* Node 0 and bit 46: no namespace inode has it (meta hands out node_id << 48
 * | counter with node ids from 1, conflict copies use bit 47). */
#define FS_HEALTH_DIR_INO (1ull << 46)
enum { FS_HEALTH_STATUS = 1, FS_HEALTH_JSON, FS_HEALTH_PEERS, FS_HEALTH_CONFLICTS };
#define FS_HEALTH_KINDS 4

/* Whether ino is /.caskfs or one of its files. */
bool fs_health_ino(uint64_t ino);
/* Whether parent/name is taken by /.caskfs (so nothing may be made there). */
bool fs_health_reserved(uint64_t parent, const char *name);
/* LOOKUP: true when parent/name is /.caskfs or in it, and replied. */
bool fs_health_lookup(fuse_req_t req, uint64_t parent, const char *name);
/* The kernel forgot ino (a health inode): its snapshot goes. */
void fs_health_forget(uint64_t ino);
/* GETATTR, OPEN, READ and READDIR(PLUS) of a health inode; each replies. */
void fs_health_getattr(fuse_req_t req, uint64_t ino);
void fs_health_open(fuse_req_t req, uint64_t ino, struct fuse_file_info *fi);
void fs_health_read(fuse_req_t req, uint64_t ino, size_t size, off_t off);
void fs_health_readdir(fuse_req_t req, uint64_t ino, size_t size, off_t off, bool plus);
/* The conflicts file: one line per kept conflict copy (its path), to f. */
void fs_health_conflicts(struct fs *fs, FILE *f);

#endif
