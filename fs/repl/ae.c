/*
 * ae - a node's background anti-entropy: every --sync-interval seconds a
 * round of the tree walk (sync.c) with each peer of the cluster map, for
 * the objects over the buckets both own (plan.c) and, on a mount, for the
 * namespace, which every mount holds whole. It repairs whatever the quorum
 * writes, the hints and the pushes missed; a peer that is down is tried
 * again at the next round. The rebalancer (rebalance.c) starts with it.
 * Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_i.h"
#include "store/node/cmap.h"

struct fs_ae {
	struct store *store;
	const struct fs_repl_sink *sink; /* NULL: a node without a namespace */
	struct cluster *cluster;
	const struct auth_key *key;
	struct fs_ticker *ticker;
	struct fs_rebalance *rebalance;
	_Atomic bool stop;
};

static void round_with(struct fs_ae *ae, const char *peer, bool member)
{
	struct fs_sync_ep self = { .s = ae->store, .cluster = ae->cluster };
	struct fs_sync_ep other;
	struct fs_sync_stats sd = { 0 }, sm = { 0 };
	struct fs_sync_opts o = { .quiet = true, .stop = &ae->stop };
	struct fs_sync_plan plan;
	int rd = 0, rm = 0;

	if (ae->sink) {
		self.m = ae->sink->meta;
		self.sink = ae->sink;
	}
	snprintf(self.name, sizeof(self.name), "this node");
	memset(&other, 0, sizeof(other));
	snprintf(other.name, sizeof(other.name), "%s", peer);
	if (mc_connect(peer, ae->key, 500, 30000, &other.conn) < 0)
		return; /* down: the next round tries again */
	/* objects: only over the buckets both own (and none while a map
	 * change is being agreed) */
	if (member && (rd = fs_sync_plan(&self, &other, CLUSTER_SET_SHARED, &plan)) == 0) {
		if (!plan.restricted || plan.buckets > 0)
			rd = fs_sync_run(&self, &other, FS_SYNC_DATA, &o, &sd);
		fs_sync_plan_free(&plan);
	}
	self.set = NULL;
	other.query[0] = 0;
	if (ae->sink)
		rm = fs_sync_run(&self, &other, FS_SYNC_META, &o, &sm);
	if (sd.differed || sm.differed)
		fprintf(stderr,
			"caskfs: anti-entropy with %s: %" PRIu64 " objects and %" PRIu64
			" namespace records repaired%s\n",
			peer, sd.differed, sm.differed, rd || rm ? " (not equal yet)" : "");
	mc_close(other.conn);
}

/* One round with every peer, a period after the last (no FS_TICKER_NOW). */
static bool ae_round(void *arg)
{
	struct fs_ae *ae = arg;
	char(*addrs)[CLUSTER_ADDR] = malloc(2 * CLUSTER_MAX_NODES * CLUSTER_ADDR);
	uint8_t flags[2 * CLUSTER_MAX_NODES];

	if (!addrs)
		return false;
	int n = cluster_map_peers(ae->cluster, addrs, flags, 2 * CLUSTER_MAX_NODES);
	for (int i = 0; i < n && !atomic_load(&ae->stop); i++)
		round_with(ae, addrs[i], flags[i] & CMAP_MEMBER);
	free(addrs);
	return false;
}

int fs_ae_start(struct store *s, const struct fs_repl_sink *sink, const struct node *n,
		const struct node_args *a, struct fs_ae **out)
{
	struct fs_ae *ae;
	int rc;

	*out = NULL;
	if (!a->listen)
		return 0; /* not a node of a cluster */
	ae = calloc(1, sizeof(*ae));
	if (!ae)
		return -ENOMEM;
	ae->store = s;
	ae->sink = sink;
	ae->cluster = n->cluster;
	ae->key = n->have_key ? &n->key : NULL;
	rc = fs_rebalance_start(s, n->cluster, ae->key, a, &ae->rebalance);
	if (rc == 0 && a->sync_interval_s > 0 &&
	    fs_ticker_start(a->sync_interval_s * 1000, 0, ae_round, ae, &ae->ticker) < 0)
		rc = -ENOMEM;
	if (rc < 0) {
		fs_rebalance_stop(ae->rebalance);
		free(ae);
		return rc;
	}
	*out = ae;
	return 0;
}

void fs_ae_stop(struct fs_ae *ae)
{
	if (!ae)
		return;
	atomic_store(&ae->stop, true);
	fs_ticker_stop(ae->ticker);
	fs_rebalance_stop(ae->rebalance);
	free(ae);
}
