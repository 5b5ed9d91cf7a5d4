/*
 * peer - the quorum client's connections to the other nodes: a small pool of
 * idle connections per peer, and a peer that fails is skipped for DOWN_MS
 * before it is tried again. The one idea: every exchange with a peer is
 * idempotent (stamped puts and local reads), so a pooled connection found
 * dead is simply replaced once, and only a fresh connection that fails marks
 * the peer down. Protocol: docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster_i.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool cluster_peer_is_down(struct peer *p)
{
	int64_t until = atomic_load(&p->down_until);
	return until && now_ms() < until;
}

void cluster_peer_mark_down(struct peer *p, int err)
{
	atomic_store(&p->down_until, now_ms() + DOWN_MS);
	if (!atomic_exchange(&p->was_down, true))
		fprintf(stderr, "caskfs: peer %s is down: %s\n", p->addr, strerror(-err));
}

void cluster_peer_mark_up(struct peer *p)
{
	atomic_store(&p->down_until, 0);
	if (atomic_exchange(&p->was_down, false))
		fprintf(stderr, "caskfs: peer %s is up again\n", p->addr);
}

int cluster_peer_conn_get(struct cluster *c, struct peer *p, struct mc_conn **out, bool *pooled)
{
	pthread_mutex_lock(&p->mu);
	*pooled = p->nidle > 0;
	*out = *pooled ? p->idle[--p->nidle] : NULL;
	pthread_mutex_unlock(&p->mu);
	if (*pooled)
		return 0;
	return mc_connect(p->addr, c->key, c->connect_ms, c->io_ms, out);
}

void cluster_peer_conn_put(struct peer *p, struct mc_conn *conn)
{
	pthread_mutex_lock(&p->mu);
	if (p->nidle < POOL) {
		p->idle[p->nidle++] = conn;
		conn = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	mc_close(conn);
}

int cluster_peer_call(struct cluster *c, struct peer *p, cluster_peer_call_fn fn, void *arg)
{
	int rc = -EIO;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct mc_conn *conn;
		bool pooled, answered = false;

		rc = cluster_peer_conn_get(c, p, &conn, &pooled);
		if (rc == 0)
			rc = fn(arg, p, conn, &answered);
		if (answered) {
			cluster_peer_conn_put(p, conn);
			return rc;
		}
		mc_close(conn);
		if (!pooled)
			break;
	}
	cluster_peer_mark_down(p, rc);
	return rc;
}

struct xset_call {
	const void *key, *val;
	size_t klen, vlen;
	const struct store_version *v;
	bool tombstone;
	const struct store_attr *attr;
	char err[256];
	bool refused;
};

static int xset_call(void *arg, struct peer *p, struct mc_conn *conn, bool *answered)
{
	struct xset_call *x = arg;
	int rc = mc_xset_send(conn, x->key, x->klen, x->val, x->vlen, x->v, x->tombstone, x->attr);

	(void)p;
	if (rc == 0)
		rc = mc_xset_recv(conn, x->err, sizeof(x->err));
	/* -EIO is the node's SERVER_ERROR: an answer, on a connection still good */
	*answered = rc >= 0 || rc == -EIO;
	x->refused = rc == -EIO;
	return rc;
}

int cluster_peer_send(struct cluster *c, struct peer *p, const void *key, size_t klen,
		      const void *val, size_t vlen, const struct store_version *v, bool tombstone,
		      const struct store_attr *attr)
{
	struct xset_call x = { .key = key,
			       .val = val,
			       .klen = klen,
			       .vlen = vlen,
			       .v = v,
			       .tombstone = tombstone,
			       .attr = attr };
	int rc = cluster_peer_call(c, p, xset_call, &x);

	if (x.refused)
		fprintf(stderr, "caskfs: %s refused %.*s: %s\n", p->addr, (int)klen,
			(const char *)key, x.err);
	return rc < 0 ? rc : 0;
}
