/*
 * peer - the quorum client's connections to the other nodes: a small pool of
 * idle connections per peer, and a peer that fails is skipped for DOWN_MS
 * before it is tried again. The one idea: every exchange with a peer is
 * idempotent (stamped puts and local reads), so a pooled connection found
 * dead is simply replaced once, and only a fresh connection that fails marks
 * the peer down. Protocol: docs/PROTOCOL.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster_i.h"
#include "../log/record_i.h"

#define HINT_HDR 16 /* the hint file's header (handoff.c) */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counts the records of a hint file (for the stats). */
static void count_file(const char *path, uint64_t *count, uint64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t hdr[STORE_REC_HDR];
	struct store_rec_hdr h;
	off_t off = HINT_HDR;

	if (fd < 0)
		return;
	ssize_t got;
	while ((got = pread(fd, hdr, sizeof(hdr), off)) > 0 &&
	       store_rec_decode(hdr, (size_t)got, &h) == 0) {
		off += (off_t)store_rec_size(&h);
		(*count)++;
	}
	*bytes += (uint64_t)off;
	close(fd);
}

void cluster_peer_init(struct peer *p, const char *addr, bool self, const char *data_dir)
{
	char name[256], replay[PATH_MAX + 8];
	size_t i;

	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	p->seed = cluster_seed(addr);
	p->self = self;
	p->hint_fd = -1;
	p->hint_path[0] = 0;
	p->cur_count = p->cur_bytes = p->old_count = p->old_bytes = 0;
	if (self || !data_dir[0])
		return;
	for (i = 0; addr[i] && i < sizeof(name) - 1; i++)
		name[i] = (addr[i] == ':' || addr[i] == '/' || addr[i] == '[' || addr[i] == ']')
			      ? '_'
			      : addr[i];
	name[i] = 0;
	snprintf(p->hint_path, sizeof(p->hint_path), "%s/handoff/%s.hints", data_dir, name);
	snprintf(replay, sizeof(replay), "%s.replay", p->hint_path);
	count_file(p->hint_path, &p->cur_count, &p->cur_bytes);
	count_file(replay, &p->old_count, &p->old_bytes);
}

void cluster_peer_reset(struct peer *p)
{
	pthread_mutex_lock(&p->mu);
	for (int k = 0; k < p->nidle; k++)
		mc_close(p->idle[k]);
	p->nidle = 0;
	if (p->hint_fd >= 0)
		close(p->hint_fd);
	p->hint_fd = -1;
	p->hint_dirty = false;
	p->cur_count = p->cur_bytes = p->old_count = p->old_bytes = 0;
	pthread_mutex_unlock(&p->mu);
	p->addr[0] = 0;
	p->hint_path[0] = 0;
	p->self = false;
	atomic_store(&p->down_until, 0);
	atomic_store(&p->was_down, false);
	atomic_store(&p->done_epoch, 0);
	atomic_store(&p->id, 0);
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
