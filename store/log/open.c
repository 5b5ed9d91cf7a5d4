/*
 * open - a store's life: store_open() checks the options, creates DATA_DIR
 * and DATA_DIR/log, takes the directory's lock, recovers the keydir
 * (recover.c) and starts the background threads; store_close() stops them,
 * makes the log durable and frees everything. The one idea: open either
 * returns a whole store or undoes all it did, so a caller never holds half
 * of one. DATA_DIR layout: docs/FORMAT.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

#define MIN_SEGMENT_SIZE 4096
#define MAX_SEGMENT_SIZE (2ull << 30)

static void free_store(struct store *s)
{
	for (uint32_t i = 0; i < s->segs_cap; i++)
		store_segment_unref(s->segs[i]);
	free(s->segs);
	store_kd_destroy(s->kd);
	store_htree_destroy(s->tree);
	free(s->hint.buf);
	if (s->logdir_fd >= 0)
		close(s->logdir_fd);
	if (s->lock_fd >= 0)
		close(s->lock_fd);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->write_mu);
	pthread_mutex_destroy(&s->sync_mu);
	pthread_cond_destroy(&s->sync_cv);
	pthread_mutex_destroy(&s->compact_mu);
	pthread_mutex_destroy(&s->bg_mu);
	pthread_cond_destroy(&s->bg_cv);
	free(s->dir);
	free(s->logdir);
	free(s);
}

static int make_dir(struct store *s, const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		int rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	return 0;
}

int store_open(const char *dir, const struct store_options *opt, struct store **out)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	store_mapread_install();
	if (opt)
		s->opt = *opt;
	else
		store_options_init(&s->opt);
	s->lock_fd = -1;
	s->logdir_fd = -1;
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->write_mu, NULL);
	pthread_mutex_init(&s->sync_mu, NULL);
	pthread_cond_init(&s->sync_cv, NULL);
	pthread_mutex_init(&s->compact_mu, NULL);
	pthread_mutex_init(&s->bg_mu, NULL);
	pthread_cond_init(&s->bg_cv, NULL);
	s->dir = strdup(dir ? dir : "");
	if (!s->dir || asprintf(&s->logdir, "%s/log", s->dir) < 0) {
		s->logdir = NULL;
		free_store(s);
		return -ENOMEM;
	}
	if (!dir || !*dir || s->opt.segment_size < MIN_SEGMENT_SIZE ||
	    s->opt.segment_size > MAX_SEGMENT_SIZE || s->opt.batch_interval_ms == 0 ||
	    s->opt.compact_interval_ms == 0 || s->opt.compact_live_ratio > 1.0 ||
	    s->opt.sync > STORE_SYNC_NONE || s->opt.node_id >= STORE_EXPIRY_NODE) {
		store_logf(s, STORE_LOG_ERROR, "invalid store options");
		free_store(s);
		return -EINVAL;
	}
	atomic_store(&s->no_expiry, s->opt.no_expiry);
	rc = make_dir(s, s->dir);
	if (rc == 0)
		rc = store_dirlock_take(s);
	if (rc == 0)
		rc = make_dir(s, s->logdir);
	if (rc == 0) {
		s->logdir_fd = open(s->logdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->logdir_fd < 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = store_recover(s);
	if (rc == 0) {
		/* What was on disk at open counts as durable. */
		s->synced = 0;
		rc = store_background_start(s);
	}
	if (rc < 0) {
		free_store(s);
		return rc;
	}
	*out = s;
	return 0;
}

int store_close(struct store *s)
{
	int rc;

	if (!s)
		return 0;
	store_scrub_stop(s);
	store_background_stop(s);
	rc = store_sync(s);
	if (rc < 0 && s->active && s->active->wbuf_len)
		store_logf(s, STORE_LOG_ERROR,
			   "closing with %zu bytes of acknowledged records of segment %06u that "
			   "could not be written (%s): they are lost",
			   s->active->wbuf_len, s->active->id, strerror(-rc));
	free_store(s);
	return rc;
}

struct store_clock *store_clock(struct store *s)
{
	return &s->clock;
}
