/*
 * cluster - the quorum client as an object (cluster.h): opening it over the
 * local store (the configured N, W and R, the peer slots, the first view
 * from DATA_DIR/cluster.map or from --peers, the background thread),
 * closing it, and what it reports. The one idea: with no peers the cluster
 * is this node alone, N = W = R = 1, and every operation goes straight to
 * the local store (quorum.c). The mechanisms live in view.c, placement.c,
 * gossip.c, peer.c, handoff.c and quorum.c. Protocol: docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster_i.h"

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
	c->replicas = opt->replicas;
	c->write_quorum = opt->write_quorum;
	c->read_quorum = opt->read_quorum;
	if (opt->key) {
		c->key_copy = *opt->key;
		c->key = &c->key_copy;
	}
	c->has_addr = opt->self != NULL;
	if (opt->self &&
	    (strlen(opt->self) >= sizeof(c->self) || !cmap_addr_ok(opt->self, strlen(opt->self)))) {
		fprintf(stderr, "caskfs: bad node address '%s' (want HOST:PORT)\n", opt->self);
		free(c->peers);
		free(c);
		return -EINVAL;
	}
	snprintf(c->self, sizeof(c->self), "%s", opt->self ? opt->self : "local:0");
	if (opt->data_dir && opt->self)
		snprintf(c->data_dir, sizeof(c->data_dir), "%s", opt->data_dir);
	if (opt->self && opt->peers && !(c->seeds = strdup(opt->peers))) {
		free(c->peers);
		free(c);
		return -ENOMEM;
	}
	for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
		pthread_mutex_init(&c->peers[i].mu, NULL);
		pthread_mutex_init(&c->peers[i].replay_mu, NULL);
		c->peers[i].hint_fd = -1;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->offer_mu, NULL);
	pthread_mutex_init(&c->stop_mu, NULL);
	pthread_cond_init(&c->stop_cv, NULL);
	if (c->data_dir[0]) {
		char dir[PATH_MAX + 16];
		snprintf(dir, sizeof(dir), "%s/handoff", c->data_dir);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			fprintf(stderr, "caskfs: cannot create %s: %s\n", dir, strerror(errno));
			goto fail;
		}
	}
	for (int i = 0; i < KEY_LOCKS; i++)
		pthread_mutex_init(&c->key_mu[i], NULL);
	rc = cluster_view_init(c, opt);
	if (rc < 0)
		goto fail;
	if (c->has_addr && !opt->no_background && (rc = cluster_tick_start(c)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	cluster_close(c);
	return rc;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	cluster_tick_stop(c);
	cluster_sync(c);
	cluster_view_fini(c);
	for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
		struct peer *p = &c->peers[i];
		for (int k = 0; k < p->nidle; k++)
			mc_close(p->idle[k]);
		if (p->hint_fd >= 0)
			close(p->hint_fd);
		pthread_mutex_destroy(&p->mu);
		pthread_mutex_destroy(&p->replay_mu);
	}
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->offer_mu);
	pthread_mutex_destroy(&c->stop_mu);
	pthread_cond_destroy(&c->stop_cv);
	for (int i = 0; i < KEY_LOCKS; i++)
		pthread_mutex_destroy(&c->key_mu[i]);
	free(c->seeds);
	free(c->peers);
	free(c);
}

struct store *cluster_local(struct cluster *c)
{
	return c->local;
}

void cluster_stats(struct cluster *c, struct cluster_stats *st)
{
	struct cluster_view *v = cluster_view_get(c);

	memset(st, 0, sizeof(*st));
	st->nodes = v->nmembers;
	st->prev_nodes = v->nprev;
	st->n = v->n;
	st->w = v->w;
	st->r = v->r;
	st->epoch = v->epoch;
	st->settled = v->settled;
	cluster_view_put(c, v);
	st->puts = atomic_load(&c->puts);
	st->put_failures = atomic_load(&c->put_failures);
	st->gets = atomic_load(&c->gets);
	st->get_misses = atomic_load(&c->get_misses);
	st->read_repairs = atomic_load(&c->read_repairs);
	st->read_repair_bytes = atomic_load(&c->read_repair_bytes);
	st->hints_queued = atomic_load(&c->hints_queued);
	st->hints_replayed = atomic_load(&c->hints_replayed);
	st->decided = atomic_load(&c->decided);
	st->forwarded = atomic_load(&c->forwarded);
	st->hints_redirected = atomic_load(&c->hints_redirected);
	st->gossip_rounds = atomic_load(&c->gossip_rounds);
	st->maps_adopted = atomic_load(&c->maps_adopted);
	pthread_mutex_lock(&c->mu);
	st->done_epoch = c->state.done_epoch;
	st->progress = c->progress;
	pthread_mutex_unlock(&c->mu);
	for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
		pthread_mutex_lock(&c->peers[i].mu);
		st->hints_pending += c->peers[i].cur_count + c->peers[i].old_count;
		st->hint_bytes_pending += c->peers[i].cur_bytes + c->peers[i].old_bytes;
		pthread_mutex_unlock(&c->peers[i].mu);
	}
}

void cluster_describe(struct cluster *c, char *buf, size_t cap)
{
	struct cluster_view *v = cluster_view_get(c);

	if (!c->has_addr)
		snprintf(buf, cap, "one node: N=1 W=1 R=1");
	else if (v->epoch == 0 && v->nmembers > 1)
		snprintf(buf, cap, "N=%d W=%d R=%d over %d nodes (from --peers, until they agree on "
				   "a cluster map)",
			 v->n, v->w, v->r, v->nmembers);
	else
		snprintf(buf, cap, "N=%d W=%d R=%d over %d nodes (cluster map epoch %llu)", v->n,
			 v->w, v->r, v->nmembers, (unsigned long long)v->epoch);
	cluster_view_put(c, v);
}

void cluster_peers(struct cluster *c, cluster_peer_fn fn, void *arg)
{
	struct cluster_view *v = cluster_view_get(c);
	int slots[2 * CLUSTER_MAX_NODES], n = 0;

	/* members, then previous members not among them, in address order */
	for (int i = 0; i < v->nmembers; i++)
		slots[n++] = v->member[i];
	for (int i = 0; i < v->nprev; i++) {
		bool seen = false;
		for (int k = 0; k < v->nmembers; k++)
			seen |= v->member[k] == v->prev[i];
		if (!seen)
			slots[n++] = v->prev[i];
	}
	for (int i = 0; i < n; i++) {
		struct peer *p = &c->peers[slots[i]];
		pthread_mutex_lock(&p->mu);
		uint64_t hints = p->cur_count + p->old_count;
		pthread_mutex_unlock(&p->mu);
		fn(arg, p->addr, p->self, p->self || !cluster_peer_is_down(p), hints);
	}
	cluster_view_put(c, v);
}
