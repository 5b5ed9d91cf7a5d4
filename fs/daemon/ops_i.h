/*
 * ops_i.h - the FUSE operation table of the daemon (fs/ops.c), used by
 * fs/mount.c to start a session.
 */
#ifndef CASKFS_FS_OPS_I_H
#define CASKFS_FS_OPS_I_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>

extern const struct fuse_lowlevel_ops fs_ops;

#endif
