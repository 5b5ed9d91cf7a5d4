/*
 * committer - the mount's group commit. A thread wakes every GROUP_COMMIT_MS,
 * commits the buffered writes of files left alone for a moment
 * (fs_file_commit_idle), and when LMDB committed anything since its last
 * round makes the log durable and then LMDB: the log first, so no durable
 * metadata names a chunk that is not durable (DESIGN.md, "fs: files as
 * chunks").
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "daemon_i.h"

#define GROUP_COMMIT_MS 50
/* Buffered writes of a file are committed once it has had no write for
 * COMMIT_IDLE_MS, or COMMIT_MAX_AGE_MS after the first of them (file.c). */
#define COMMIT_IDLE_MS 100
#define COMMIT_MAX_AGE_MS 1000

struct fs_committer {
	struct fs *fs;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* protected by mu */
};

static void *committer_main(void *arg)
{
	struct fs_committer *c = arg;
	uint64_t synced = meta_last_txn(c->fs->meta);

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += GROUP_COMMIT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		pthread_mutex_unlock(&c->mu);
		fs_file_commit_idle(c->fs, COMMIT_IDLE_MS, COMMIT_MAX_AGE_MS);
		pthread_mutex_lock(&c->mu);
		uint64_t last = meta_last_txn(c->fs->meta);
		if (last == synced)
			continue;
		pthread_mutex_unlock(&c->mu);
		if (store_sync(c->fs->store) == 0 && cluster_sync(c->fs->node.cluster) == 0 &&
		    meta_sync(c->fs->meta) == 0)
			synced = last;
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

int fs_committer_start(struct fs *fs, struct fs_committer **out)
{
	struct fs_committer *c = calloc(1, sizeof(*c));

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->fs = fs;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, committer_main, c) != 0) {
		free(c);
		return -EAGAIN;
	}
	*out = c;
	return 0;
}

void fs_committer_stop(struct fs_committer *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	free(c);
}
