/*
 * purge - the inodes the kernel forgot, deleted from the namespace in
 * batches. A FORGET of an unlinked inode cost a write transaction of its own,
 * as dear as the UNLINK before it (docs/BENCHMARKS.md); queued here, up to
 * PURGE_BATCH of them go in one (meta_forget_many), when the batch fills or
 * within PURGE_MS, and the rest when the mount ends. Waiting loses nothing:
 * an orphan left by a crash goes at the next meta_open; one given a name
 * again (a link, a peer's record) is no orphan by then and stays; one the
 * kernel looked up again meanwhile is left for its next FORGET.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_i.h"

#define PURGE_BATCH 64
#define PURGE_MS 50

struct fs_purge {
	struct fs *fs;
	pthread_mutex_t mu;
	uint64_t ino[PURGE_BATCH]; /* protected by mu */
	size_t n;		   /* protected by mu */
	struct fs_ticker *ticker;
};

/* Deletes what the batch holds of n inodes (a copy, no lock held). */
static void purge(struct fs *fs, uint64_t *ino, size_t n)
{
	size_t keep = 0;

	for (size_t i = 0; i < n; i++)
		if (fs_nlookup_count(&fs->lookups, ino[i]) == 0)
			ino[keep++] = ino[i];
	int rc = keep ? meta_forget_many(fs->meta, ino, keep) : 0;
	if (rc < 0)
		fprintf(stderr,
			"caskfs: %zu forgotten inodes not purged (they go at the next mount): %s\n",
			keep, strerror(-rc));
}

/* Takes the queue into out; returns how many. */
static size_t take(struct fs_purge *p, uint64_t *out)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n;
	memcpy(out, p->ino, n * sizeof(*out));
	p->n = 0;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static bool purge_round(void *arg)
{
	struct fs_purge *p = arg;
	uint64_t ino[PURGE_BATCH];
	size_t n = take(p, ino);

	if (n)
		purge(p->fs, ino, n);
	return false;
}

void fs_purge_forgotten(struct fs *fs, uint64_t ino)
{
	struct fs_purge *p = fs->purge;
	uint64_t batch[PURGE_BATCH];
	size_t n = 0;

	if (!p) {
		meta_forget(fs->meta, ino);
		return;
	}
	pthread_mutex_lock(&p->mu);
	if (p->n == PURGE_BATCH) {
		/* full: this FORGET (it has no answer to wait for) purges them */
		memcpy(batch, p->ino, sizeof(batch));
		n = PURGE_BATCH;
		p->n = 0;
	}
	p->ino[p->n++] = ino;
	pthread_mutex_unlock(&p->mu);
	if (n)
		purge(fs, batch, n);
}

void fs_purge_flush(struct fs *fs)
{
	if (fs->purge)
		purge_round(fs->purge);
}

int fs_purge_start(struct fs *fs)
{
	struct fs_purge *p = calloc(1, sizeof(*p));
	int rc;

	fs->purge = NULL;
	if (!p)
		return -ENOMEM;
	p->fs = fs;
	pthread_mutex_init(&p->mu, NULL);
	rc = fs_ticker_start(PURGE_MS, FS_TICKER_LAST, purge_round, p, &p->ticker);
	if (rc < 0) {
		pthread_mutex_destroy(&p->mu);
		free(p);
		return rc;
	}
	fs->purge = p;
	return 0;
}

void fs_purge_stop(struct fs *fs)
{
	struct fs_purge *p = fs->purge;

	if (!p)
		return;
	fs_ticker_stop(p->ticker);
	fs->purge = NULL;
	purge_round(p); /* what came after the ticker's last round */
	pthread_mutex_destroy(&p->mu);
	free(p);
}
