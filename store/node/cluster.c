/*
 * cluster - the quorum client as an object (cluster.h): opening it over the
 * local store (the node list, N, W and R, the hint files, the handoff
 * thread), closing it, and what it reports. The one idea: with no peers the
 * cluster is this node alone, N = W = R = 1, and every operation goes
 * straight to the local store (quorum.c). The mechanisms live in
 * placement.c, peer.c, handoff.c and quorum.c. Protocol: docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster_i.h"

static int clamp(int v, int def, int lo, int hi)
{
	if (v <= 0)
		v = def;
	return v < lo ? lo : v > hi ? hi : v;
}

int cluster_open(struct store *local, const struct cluster_options *opt, struct cluster **out)
{
	struct cluster *c = calloc(1, sizeof(*c));
	struct store_stats ss;
	int rc = 0;

	*out = NULL;
	if (!c || !(c->peers = calloc(CLUSTER_MAX_NODES, sizeof(*c->peers)))) {
		free(c);
		return -ENOMEM;
	}
	c->local = local;
	store_stats(local, &ss);
	c->node_id = ss.node_id;
	c->connect_ms = opt->connect_ms > 0 ? opt->connect_ms : 300;
	c->io_ms = opt->io_ms > 0 ? opt->io_ms : 800;
	if (opt->key) {
		c->key_copy = *opt->key;
		c->key = &c->key_copy;
	}
	rc = cluster_nodes_parse(c, opt);
	if (rc < 0)
		goto fail;
	c->n = clamp(opt->replicas, 3, 1, c->nnodes);
	c->w = clamp(opt->write_quorum, 2, 1, c->n);
	c->r = clamp(opt->read_quorum, 1, 1, c->n);
	if (c->nnodes > 1 && opt->data_dir) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/handoff", opt->data_dir);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			fprintf(stderr, "caskfs: cannot create %s: %s\n", dir, strerror(errno));
			goto fail;
		}
	}
	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		pthread_mutex_init(&p->mu, NULL);
		pthread_mutex_init(&p->replay_mu, NULL);
		if (!p->self && opt->data_dir)
			cluster_hint_open(p, opt->data_dir);
	}
	pthread_mutex_init(&c->stop_mu, NULL);
	pthread_cond_init(&c->stop_cv, NULL);
	for (int i = 0; i < KEY_LOCKS; i++)
		pthread_mutex_init(&c->key_mu[i], NULL);
	if (c->nnodes > 1 && !opt->no_background && (rc = cluster_handoff_start(c)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	free(c->peers);
	free(c);
	return rc;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	cluster_handoff_stop(c);
	cluster_sync(c);
	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		for (int k = 0; k < p->nidle; k++)
			mc_close(p->idle[k]);
		if (p->hint_fd >= 0)
			close(p->hint_fd);
		pthread_mutex_destroy(&p->mu);
		pthread_mutex_destroy(&p->replay_mu);
	}
	pthread_mutex_destroy(&c->stop_mu);
	pthread_cond_destroy(&c->stop_cv);
	for (int i = 0; i < KEY_LOCKS; i++)
		pthread_mutex_destroy(&c->key_mu[i]);
	free(c->peers);
	free(c);
}

struct store *cluster_local(struct cluster *c)
{
	return c->local;
}

void cluster_stats(struct cluster *c, struct cluster_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nodes = c->nnodes;
	st->n = c->n;
	st->w = c->w;
	st->r = c->r;
	st->puts = atomic_load(&c->puts);
	st->put_failures = atomic_load(&c->put_failures);
	st->gets = atomic_load(&c->gets);
	st->get_misses = atomic_load(&c->get_misses);
	st->read_repairs = atomic_load(&c->read_repairs);
	st->hints_queued = atomic_load(&c->hints_queued);
	st->hints_replayed = atomic_load(&c->hints_replayed);
	st->decided = atomic_load(&c->decided);
	st->forwarded = atomic_load(&c->forwarded);
	for (int i = 0; i < c->nnodes; i++) {
		pthread_mutex_lock(&c->peers[i].mu);
		st->hints_pending += c->peers[i].cur_count + c->peers[i].old_count;
		st->hint_bytes_pending += c->peers[i].cur_bytes + c->peers[i].old_bytes;
		pthread_mutex_unlock(&c->peers[i].mu);
	}
}

void cluster_describe(struct cluster *c, char *buf, size_t cap)
{
	if (c->nnodes == 1)
		snprintf(buf, cap, "one node: N=1 W=1 R=1");
	else
		snprintf(buf, cap, "N=%d W=%d R=%d over %d nodes", c->n, c->w, c->r, c->nnodes);
}

void cluster_peers(struct cluster *c, cluster_peer_fn fn, void *arg)
{
	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		pthread_mutex_lock(&p->mu);
		uint64_t hints = p->cur_count + p->old_count;
		pthread_mutex_unlock(&p->mu);
		fn(arg, p->addr, p->self, p->self || !cluster_peer_is_down(p), hints);
	}
}
