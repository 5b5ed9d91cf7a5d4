/*
 * sync - durability by group commit. The one idea: whoever wants bytes up to
 * an offset made durable either runs the one fsync in flight or waits for
 * it, and a finished fsync covers everything appended before it started, so
 * many puts share one fsync. Only the active segment needs one: each sealed
 * segment was fsynced when it was sealed (append.c).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "store_i.h"

int store_sync_through(struct store *s, uint64_t through)
{
	int rc = 0;

	pthread_mutex_lock(&s->sync_mu);
	while (s->synced < through && rc == 0) {
		if (s->syncing) {
			pthread_cond_wait(&s->sync_cv, &s->sync_mu);
			continue;
		}
		s->syncing = true;
		pthread_mutex_unlock(&s->sync_mu);

		/* Everything before the active segment was fsynced when it was sealed. */
		pthread_mutex_lock(&s->write_mu);
		struct store_segment *seg = s->active;
		uint64_t upto = atomic_load(&s->appended);
		rc = store_flush_locked(s);
		store_segment_ref(seg);
		pthread_mutex_unlock(&s->write_mu);

		if (rc == 0 && fdatasync(seg->fd) < 0) {
			rc = -errno;
			store_logf(s, STORE_LOG_ERROR, "fsync of segment %06u failed: %s", seg->id,
				   strerror(-rc));
		}
		store_segment_unref(seg);

		pthread_mutex_lock(&s->sync_mu);
		s->syncing = false;
		if (rc == 0 && upto > s->synced)
			s->synced = upto;
		pthread_cond_broadcast(&s->sync_cv);
	}
	pthread_mutex_unlock(&s->sync_mu);
	return rc;
}

int store_sync(struct store *s)
{
	return store_sync_through(s, atomic_load(&s->appended));
}

uint64_t store_appended(struct store *s)
{
	return atomic_load(&s->appended);
}
