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

#define GROUP_COMMIT_MS 50
/* Buffered writes of a file are committed once it has had no write for
 * COMMIT_IDLE_MS, or COMMIT_MAX_AGE_MS after the first of them (file.c). */
#define COMMIT_IDLE_MS 100
#define COMMIT_MAX_AGE_MS 1000

struct fs_committer {
	struct fs *fs;
	struct fs_ticker *ticker;
	uint64_t synced; /* meta_last_txn() last made durable (the ticker's thread only) */
};

/* One round; a stop that ends the wait still gets it (FS_TICKER_LAST). */
static bool committer_round(void *arg)
{
	struct fs_committer *c = arg;

	fs_file_commit_idle(c->fs, COMMIT_IDLE_MS, COMMIT_MAX_AGE_MS);
	uint64_t last = meta_last_txn(c->fs->meta);
	if (last != c->synced && store_sync(c->fs->store) == 0 &&
	    cluster_sync(c->fs->node.cluster) == 0 && meta_sync(c->fs->meta) == 0)
		c->synced = last;
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
	c->synced = meta_last_txn(fs->meta);
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
