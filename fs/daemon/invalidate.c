/*
 * invalidate - what a record from a peer changed, dropped from the kernel's
 * caches (fuse_lowlevel_notify_inval_*), so readers on this mount see the
 * change at once instead of after the attribute and entry timeouts. It is
 * the callback the mount registers in its struct fs_repl_sink: replication
 * (fs/repl) applies the record and calls back here. Semantics:
 * docs/REPLICATION.md.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fuse_lowlevel.h>
#include <string.h>

#include "daemon_i.h"

void fs_invalidate_change(void *arg, const struct meta_change *c)
{
	struct fs *fs = arg;
	struct fuse_session *se = atomic_load(&fs->se);

	if (se && c->conflict_parent) { /* a conflict copy's new name (meta/conflict.c) */
		fuse_lowlevel_notify_inval_entry(se, c->conflict_parent, c->conflict_name,
						 strlen(c->conflict_name));
		fuse_lowlevel_notify_inval_inode(se, c->conflict_parent, 0, 0);
	}
	if (c->table == META_TABLE_ENTRIES) {
		if (c->old_child && c->old_child != c->ino) {
			/* The name no longer leads there: the inode goes now unless
			 * the kernel holds it (an open descriptor, a cached entry:
			 * it will send FORGET, and fs_op_forget drops it then). */
			if (fs_nlookup_count(&fs->lookups, c->old_child) == 0 &&
			    (!se || fuse_lowlevel_notify_inval_inode(se, c->old_child, 0, 0) ==
					    -ENOENT) &&
			    fs_file_forget(fs, c->old_child))
				meta_forget(fs->meta, c->old_child);
		}
		if (se) {
			fuse_lowlevel_notify_inval_entry(se, c->parent, c->name, strlen(c->name));
			fuse_lowlevel_notify_inval_inode(se, c->parent, 0, 0);
		}
		return;
	}
	if (se)
		fuse_lowlevel_notify_inval_inode(se, c->ino, 0, 0);
}
