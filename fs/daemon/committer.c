/*
 * committer - the mount's group commit. A thread wakes every GROUP_COMMIT_MS,
 * commits the buffered writes of files left alone for a moment
 * (fs_file_commit_idle), and when LMDB committed anything since its last
 * round makes the log durable and then LMDB: the log first, so no durable
 * metadata names a chunk that is not durable (DESIGN.md, "fs: files as
 * chunks").
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "daemon_i.h"
#include "journal_i.h"

#define GROUP_COMMIT_MS 50
/* Buffered writes of a file are committed once it has had no write for
 * COMMIT_IDLE_MS, or COMMIT_MAX_AGE_MS after the first of them (file.c). */
#define COMMIT_IDLE_MS 100
#define COMMIT_MAX_AGE_MS 1000

struct fs_committer {
	struct fs *fs;
	struct fs_ticker *ticker;
};

/*
 * The fsync journal's older file is emptied once no record in it is needed:
 * the files holding records there are committed, the log and the namespace
 * synced, and then the file is emptied and the namespace's notes of its
 * records dropped. A file busy with a request is committed at a later round.
 */
static void journal_round(struct fs *fs)
{
	if (!fs->journal || !fs_journal_rotate_due(fs->journal))
		return;
	uint64_t first = fs_journal_rotate(fs->journal); /* records below it are older */
	fs_file_commit_journaled(fs, first);
	if (fs_file_journaled_below(fs, first) || fs_sync_all(fs) != 0)
		return;
	if (fs_journal_retire(fs->journal) == 0)
		meta_folded_prune(fs->meta, first);
}

/* One round; a stop that ends the wait still gets it (FS_TICKER_LAST). */
static bool committer_round(void *arg)
{
	struct fs_committer *c = arg;

	fs_file_commit_idle(c->fs, COMMIT_IDLE_MS, COMMIT_MAX_AGE_MS);
	journal_round(c->fs);
	if (meta_last_txn(c->fs->meta) != atomic_load(&c->fs->meta_synced) &&
	    cluster_sync(c->fs->node.cluster) == 0)
		fs_sync_all(c->fs);
	return false;
}

int fs_committer_start(struct fs *fs, struct fs_committer **out)
{
	struct fs_committer *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->fs = fs;
	rc = fs_ticker_start(GROUP_COMMIT_MS, FS_TICKER_LAST, committer_round, c, &c->ticker);
	if (rc < 0) {
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void fs_committer_stop(struct fs_committer *c)
{
	if (!c)
		return;
	fs_ticker_stop(c->ticker);
	free(c);
}
