/*
 * worker - decided operations (cas, incr, append, touch, gat...; cluster.h,
 * cluster_decide) run off the event loops, on two small thread pools. The one
 * idea: a loop that waited for a decision could not serve, meanwhile, the
 * xget and xset of the very decision it waits for (a decider reads and
 * writes every replica, the forwarding node among them), so the loop hands
 * the request to a worker, stops reading that connection, and goes on
 * serving the others; the reply is appended when the worker is done.
 * Operations forwarded by peers (xop) have their own pool, and a decision
 * never forwards, so a forward always finds a worker that only waits for
 * loops. Protocol: docs/PROTOCOL.md ("Decided operations").
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_i.h"

struct server_job {
	struct server_job *next;
	struct loop *loop;
	struct conn *c;
	size_t len;
	struct conn sink; /* what the worker replies into: only its output is used */
	char req[];	  /* the request's bytes: line and data block */
};

bool server_runs_on_worker(const struct server *srv, const struct proto_req *r)
{
	if (!srv->pools || cluster_nodes(srv->cluster) == 1)
		return false; /* one node decides in place: no peer to wait for */
	switch (r->cmd) {
	case PROTO_ADD:
	case PROTO_REPLACE:
	case PROTO_APPEND:
	case PROTO_PREPEND:
	case PROTO_CAS:
	case PROTO_INCR:
	case PROTO_DECR:
	case PROTO_TOUCH:
	case PROTO_GAT:
	case PROTO_GATS:
	case PROTO_FLUSH_ALL:
	case PROTO_XOP:
		return true;
	case PROTO_MS:
		return r->meta.mode != 'S' || r->meta.has_cas;
	case PROTO_MD:
		return r->meta.has_cas;
	case PROTO_MG:
		return r->meta.has_ttl;
	default:
		return false;
	}
}

static void *worker_main(void *arg)
{
	struct server_pool *pool = arg;

	pthread_mutex_lock(&pool->mu);
	for (;;) {
		while (!pool->head && !pool->stopping)
			pthread_cond_wait(&pool->cv, &pool->mu);
		if (pool->stopping)
			break;
		struct server_job *job = pool->head;
		pool->head = job->next;
		if (!pool->head)
			pool->tail = NULL;
		pthread_mutex_unlock(&pool->mu);

		struct proto_req r;
		long used = proto_parse(job->req, job->len, &r);
		if (used == (long)job->len)
			server_execute(pool->srv, &job->sink, &r);
		else
			server_out_str(&job->sink, "SERVER_ERROR internal error\r\n");
		struct loop *l = job->loop;
		uint64_t one = 1;
		pthread_mutex_lock(&l->done_mu);
		job->next = l->done;
		l->done = job;
		pthread_mutex_unlock(&l->done_mu);
		if (write(l->wakefd, &one, sizeof(one)) < 0)
			fprintf(stderr, "caskfs: cannot wake an event loop: %s\n", strerror(errno));

		pthread_mutex_lock(&pool->mu);
	}
	pthread_mutex_unlock(&pool->mu);
	return NULL;
}

int server_worker_submit(struct server *srv, struct loop *l, struct conn *c,
			 const struct proto_req *r, const char *req, size_t len)
{
	struct server_pool *pool = &srv->pools[r->cmd == PROTO_XOP ? 1 : 0];
	struct server_job *job = calloc(1, sizeof(*job) + len);

	if (!job)
		return -ENOMEM;
	job->loop = l;
	job->c = c;
	job->len = len;
	job->sink.authed = c->authed;
	memcpy(job->req, req, len);
	pthread_mutex_lock(&pool->mu);
	if (pool->tail)
		pool->tail->next = job;
	else
		pool->head = job;
	pool->tail = job;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	return 0;
}

void server_worker_woken(struct loop *l)
{
	uint64_t n;

	if (read(l->wakefd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		fprintf(stderr, "caskfs: event loop wakeup: %s\n", strerror(errno));
}

/* The next finished job of l, off its list, or NULL. */
static struct server_job *next_done(struct loop *l)
{
	pthread_mutex_lock(&l->done_mu);
	struct server_job *job = l->done;
	if (job)
		l->done = job->next;
	pthread_mutex_unlock(&l->done_mu);
	return job;
}

struct conn *server_worker_reply(struct loop *l)
{
	struct server_job *job = next_done(l);
	struct conn *c;

	if (!job)
		return NULL;
	c = job->c;
	server_out_bytes(c, job->sink.out, job->sink.out_len);
	if (job->sink.oom)
		c->oom = true;
	free(job->sink.out);
	free(job);
	c->busy = false;
	return c;
}

void server_worker_drop(struct loop *l)
{
	struct server_job *job;

	while ((job = next_done(l)) != NULL) {
		job->c->busy = false;
		free(job->sink.out);
		free(job);
	}
}
int server_workers_start(struct server *srv)
{
	srv->pools = calloc(2, sizeof(*srv->pools));
	if (!srv->pools)
		return -ENOMEM;
	for (int p = 0; p < 2; p++) {
		struct server_pool *pool = &srv->pools[p];
		pool->srv = srv;
		pthread_mutex_init(&pool->mu, NULL);
		pthread_cond_init(&pool->cv, NULL);
		for (int i = 0; i < SERVER_POOL_THREADS; i++) {
			if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0)
				return -EAGAIN;
			pool->nthreads++;
		}
	}
	return 0;
}

void server_workers_stop(struct server *srv)
{
	if (!srv->pools)
		return;
	for (int p = 0; p < 2; p++) {
		struct server_pool *pool = &srv->pools[p];
		pthread_mutex_lock(&pool->mu);
		pool->stopping = true;
		pthread_cond_broadcast(&pool->cv);
		pthread_mutex_unlock(&pool->mu);
	}
	for (int p = 0; p < 2; p++) {
		struct server_pool *pool = &srv->pools[p];
		for (int i = 0; i < pool->nthreads; i++)
			pthread_join(pool->threads[i], NULL);
		/* jobs never started: their connections are about to close */
		while (pool->head) {
			struct server_job *job = pool->head;
			pool->head = job->next;
			free(job);
		}
		pthread_mutex_destroy(&pool->mu);
		pthread_cond_destroy(&pool->cv);
	}
	free(srv->pools);
	srv->pools = NULL;
}
