/*
 * ticker - a background thread that calls a function every period until it
 * is stopped: the daemon's group commit, the namespace pusher and the
 * anti-entropy rounds are each one. The wait is a timed wait on a condition
 * variable, so a kick or a stop ends it at once; a call under way is never
 * interrupted, and stop waits for it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "common_i.h"

struct fs_ticker {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* protected by mu */
	int period_ms;
	unsigned flags;
	bool (*fn)(void *arg);
	void *arg;
};

static void *ticker_main(void *arg)
{
	struct fs_ticker *t = arg;
	bool now = t->flags & FS_TICKER_NOW;

	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		if (!now) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += t->period_ms / 1000;
			ts.tv_nsec += (long)(t->period_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&t->cv, &t->mu, &ts);
			if (t->stop && !(t->flags & FS_TICKER_LAST))
				break;
		}
		pthread_mutex_unlock(&t->mu);
		now = t->fn(t->arg);
		pthread_mutex_lock(&t->mu);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int fs_ticker_start(int period_ms, unsigned flags, bool (*fn)(void *arg), void *arg,
		    struct fs_ticker **out)
{
	struct fs_ticker *t = calloc(1, sizeof(*t));

	*out = NULL;
	if (!t)
		return -ENOMEM;
	t->period_ms = period_ms;
	t->flags = flags;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	if (pthread_create(&t->thread, NULL, ticker_main, t) != 0) {
		pthread_mutex_destroy(&t->mu);
		pthread_cond_destroy(&t->cv);
		free(t);
		return -EAGAIN;
	}
	*out = t;
	return 0;
}

void fs_ticker_kick(struct fs_ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

void fs_ticker_stop(struct fs_ticker *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
	free(t);
}
