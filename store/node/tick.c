/*
 * tick - the quorum client's background thread: every HANDOFF_MS it makes
 * the hints durable, replays them to peers that answer again (handoff.c),
 * and gossips the cluster map (gossip.c). The one idea: one thread does the
 * cluster's housekeeping in turn, so none of it races with itself; a map
 * change kicks it (cluster_kick()) so the new map goes out at once.
 */
#include <errno.h>
#include <time.h>

#include "cluster_i.h"

static void *tick_main(void *arg)
{
	struct cluster *c = arg;

	pthread_mutex_lock(&c->stop_mu);
	while (!c->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HANDOFF_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!c->stopping && !c->kicked &&
		       pthread_cond_timedwait(&c->stop_cv, &c->stop_mu, &ts) == 0)
			;
		c->kicked = false;
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->stop_mu);
		cluster_sync(c);
		cluster_handoff(c);
		cluster_gossip(c);
		pthread_mutex_lock(&c->stop_mu);
	}
	pthread_mutex_unlock(&c->stop_mu);
	return NULL;
}

int cluster_tick_start(struct cluster *c)
{
	int rc = -pthread_create(&c->thread, NULL, tick_main, c);

	if (rc == 0)
		c->thread_started = true;
	return rc;
}

void cluster_tick_stop(struct cluster *c)
{
	if (!c->thread_started)
		return;
	pthread_mutex_lock(&c->stop_mu);
	c->stopping = true;
	pthread_cond_signal(&c->stop_cv);
	pthread_mutex_unlock(&c->stop_mu);
	pthread_join(c->thread, NULL);
	c->thread_started = false;
}
