/*
 * invalidate - what a record from a peer changed, dropped from the kernel's
 * caches (fuse_lowlevel_notify_inval_*), so readers on this mount see the
 * change at once. This is the rule that lets the kernel keep entries and
 * attributes for a day (mount.c): a change made on this mount goes through
 * this kernel, which updates its own caches, and every other change is a
 * record from a peer, which comes through here. It is the callback the
 * mount registers in its struct fs_repl_sink: replication (fs/repl) applies
 * the record and calls back here.
 *
 * One race is left to close: a reply read from the namespace just before a
 * change was applied may reach the kernel after its invalidation, which
 * then found nothing to drop, and would be kept. Such a reply gets no
 * timeout when its request saw the change happen (fs_ops_timeout), and an
 * invalidation that found nothing is sent again one to two rounds of
 * RETRY_MS later, when any reply it raced has long been taken in.
 * Semantics: docs/REPLICATION.md.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_i.h"

#define RETRY_MS 100
#define LOST_FOUND_INO 2 /* meta/lostfound.c: the same inode on every node */

struct fs_inval {
	struct fs *fs;
	struct fs_ticker *ticker;
	pthread_mutex_t mu; /* protects the lists */
	/* inodes whose invalidation found nothing: fresh ones wait a round,
	 * due ones are sent again in this one */
	uint64_t *fresh, *due;
	size_t nfresh, capfresh, ndue, capdue;
};

/* Drops ino's attributes and its pages (or with pages false, its
 * attributes alone) from the kernel; when it holds none, sends the same
 * again later (see above), pages and all. */
static void inval_inode(struct fs *fs, struct fuse_session *se, uint64_t ino, bool pages)
{
	struct fs_inval *iv = fs->inval;

	if (fuse_lowlevel_notify_inval_inode(se, ino, pages ? 0 : -1, 0) != -ENOENT || !iv)
		return;
	pthread_mutex_lock(&iv->mu);
	if (iv->nfresh == iv->capfresh) {
		size_t cap = iv->capfresh ? iv->capfresh * 2 : 256;
		uint64_t *p = realloc(iv->fresh, cap * sizeof(*p));
		if (p) {
			iv->fresh = p;
			iv->capfresh = cap;
		}
	}
	if (iv->nfresh < iv->capfresh)
		iv->fresh[iv->nfresh++] = ino;
	pthread_mutex_unlock(&iv->mu);
}

static int inval_lost_found_entry(void *arg, const char *name, uint64_t ino, uint32_t type,
				  uint64_t next)
{
	(void)ino;
	(void)type;
	(void)next;
	fuse_lowlevel_notify_inval_entry(arg, LOST_FOUND_INO, name, strlen(name));
	return 0;
}

void fs_invalidate_change(void *arg, const struct meta_change *c)
{
	struct fs *fs = arg;
	struct fuse_session *se = atomic_load(&fs->se);

	if (se && c->conflict_parent) { /* a conflict copy's new name (meta/conflict.c) */
		fuse_lowlevel_notify_inval_entry(se, c->conflict_parent, c->conflict_name,
						 strlen(c->conflict_name));
		fuse_lowlevel_notify_inval_inode(se, c->conflict_parent, 0, 0);
	}
	fs_session_note_change();
	if (c->table == META_TABLE_ENTRIES) {
		if (c->old_child && c->old_child != c->ino) {
			/* The name no longer leads there: the inode goes now unless
			 * the kernel holds it (an open descriptor, a cached entry:
			 * it will send FORGET, and fs_op_forget drops it then). */
			if (fs_nlookup_count(&fs->lookups, c->old_child) == 0 &&
			    (!se ||
			     fuse_lowlevel_notify_inval_inode(se, c->old_child, 0, 0) == -ENOENT) &&
			    fs_file_forget(fs, c->old_child))
				meta_forget(fs->meta, c->old_child);
		}
		if (!se)
			return;
		fuse_lowlevel_notify_inval_entry(se, c->parent, c->name, strlen(c->name));
		inval_inode(fs, se, c->parent, true);
		/* link counts: the inode the name leads to now, and the one it led to */
		if (c->ino)
			inval_inode(fs, se, c->ino, false);
		if (c->old_child && c->old_child != c->ino)
			fuse_lowlevel_notify_inval_inode(se, c->old_child, -1, 0);
		/* applying it may have rescued entries into lost+found, which the
		 * change does not name: what the kernel holds of it goes */
		if (fuse_lowlevel_notify_inval_inode(se, LOST_FOUND_INO, 0, 0) == 0)
			meta_readdir(fs->meta, LOST_FOUND_INO, 3, inval_lost_found_entry, se);
		return;
	}
	if (se)
		inval_inode(fs, se, c->ino, true);
}

static bool inval_round(void *arg)
{
	struct fs_inval *iv = arg;
	struct fuse_session *se = atomic_load(&iv->fs->se);

	pthread_mutex_lock(&iv->mu);
	uint64_t *due = iv->due;
	size_t n = iv->ndue, cap = iv->capdue;
	iv->due = iv->fresh;
	iv->ndue = iv->nfresh;
	iv->capdue = iv->capfresh;
	iv->fresh = NULL;
	iv->nfresh = iv->capfresh = 0;
	pthread_mutex_unlock(&iv->mu);
	for (size_t i = 0; se && i < n; i++)
		fuse_lowlevel_notify_inval_inode(se, due[i], 0, 0);
	pthread_mutex_lock(&iv->mu);
	if (!iv->fresh) { /* the buffer serves again */
		iv->fresh = due;
		iv->capfresh = cap;
		due = NULL;
	}
	pthread_mutex_unlock(&iv->mu);
	free(due);
	return false;
}

int fs_invalidate_start(struct fs *fs)
{
	struct fs_inval *iv = calloc(1, sizeof(*iv));
	int rc;

	if (!iv)
		return -ENOMEM;
	iv->fs = fs;
	pthread_mutex_init(&iv->mu, NULL);
	if ((rc = fs_ticker_start(RETRY_MS, 0, inval_round, iv, &iv->ticker)) < 0) {
		pthread_mutex_destroy(&iv->mu);
		free(iv);
		return rc;
	}
	fs->inval = iv;
	return 0;
}

void fs_invalidate_stop(struct fs *fs)
{
	struct fs_inval *iv = fs->inval;

	if (!iv)
		return;
	fs_ticker_stop(iv->ticker);
	fs->inval = NULL;
	pthread_mutex_destroy(&iv->mu);
	free(iv->fresh);
	free(iv->due);
	free(iv);
}
