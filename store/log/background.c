/*
 * background - the engine's two threads: in batch mode the syncer makes the
 * log durable every batch_interval_ms (sync.c), and the compactor looks for
 * segments worth rewriting every compact_interval_ms (compact.c), which
 * first replaces expired objects with their tombstones (expire.c), and
 * keeps the resident set in bounds (memory.c). The one
 * idea: both sleep on one condition variable, so store_close() wakes and
 * joins them at once instead of waiting out an interval.
 */
#include <pthread.h>
#include <time.h>

#include "store_i.h"

static bool bg_wait(struct store *s, unsigned ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->bg_mu);
	if (!s->stopping)
		pthread_cond_timedwait(&s->bg_cv, &s->bg_mu, &ts);
	stop = s->stopping;
	pthread_mutex_unlock(&s->bg_mu);
	return stop;
}

static void *syncer_main(void *arg)
{
	struct store *s = arg;

	while (!bg_wait(s, s->opt.batch_interval_ms))
		store_sync(s);
	return NULL;
}

static void *compactor_main(void *arg)
{
	struct store *s = arg;

	while (!bg_wait(s, s->opt.compact_interval_ms)) {
		store_compact(s, false);
		store_memory_trim(s);
	}
	return NULL;
}

int store_background_start(struct store *s)
{
	int rc;

	if (s->opt.no_background)
		return 0;
	if (s->opt.sync == STORE_SYNC_BATCH) {
		rc = pthread_create(&s->syncer, NULL, syncer_main, s);
		if (rc)
			return -rc;
	}
	if (s->opt.compact_live_ratio >= 0) {
		rc = pthread_create(&s->compactor, NULL, compactor_main, s);
		if (rc) {
			if (s->opt.sync == STORE_SYNC_BATCH) {
				pthread_mutex_lock(&s->bg_mu);
				s->stopping = true;
				pthread_cond_broadcast(&s->bg_cv);
				pthread_mutex_unlock(&s->bg_mu);
				pthread_join(s->syncer, NULL);
			}
			return -rc;
		}
	}
	s->threads_started = true;
	return 0;
}

void store_background_stop(struct store *s)
{
	if (!s->threads_started)
		return;
	pthread_mutex_lock(&s->bg_mu);
	s->stopping = true;
	pthread_cond_broadcast(&s->bg_cv);
	pthread_mutex_unlock(&s->bg_mu);
	if (s->opt.sync == STORE_SYNC_BATCH)
		pthread_join(s->syncer, NULL);
	if (s->opt.compact_live_ratio >= 0)
		pthread_join(s->compactor, NULL);
	s->threads_started = false;
}
