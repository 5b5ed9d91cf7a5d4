/*
 * ae - the mount's background anti-entropy: every --sync-interval seconds a
 * round of the tree walk (sync.c) with each peer, data then namespace, which
 * repairs whatever the pushes and the quorum writes missed. A peer that is
 * down is tried again at the next round. Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_i.h"

struct fs_ae {
	struct store *store;
	const struct fs_repl_sink *sink;
	struct node_peers peers;
	const struct auth_key *key;
	struct fs_ticker *ticker;
};

static void round_with(struct fs_ae *ae, const char *peer)
{
	struct fs_sync_ep self = { .s = ae->store, .m = ae->sink->meta, .sink = ae->sink };
	struct fs_sync_ep other;
	struct fs_sync_stats sd = { 0 }, sm = { 0 };

	snprintf(self.name, sizeof(self.name), "this node");
	memset(&other, 0, sizeof(other));
	snprintf(other.name, sizeof(other.name), "%s", peer);
	if (mc_connect(peer, ae->key, 500, 30000, &other.conn) < 0)
		return; /* down: the next round tries again */
	int rd = fs_sync_run(&self, &other, FS_SYNC_DATA, false, false, true, &sd);
	int rm = fs_sync_run(&self, &other, FS_SYNC_META, false, false, true, &sm);
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

	for (int i = 0; i < ae->peers.n; i++)
		round_with(ae, ae->peers.addr[i]);
	return false;
}

int fs_ae_start(struct store *s, const struct fs_repl_sink *sink, const struct node *n,
		const struct node_args *a, struct fs_ae **out)
{
	struct fs_ae *ae;

	*out = NULL;
	if (!a->peers || a->sync_interval_s <= 0)
		return 0;
	ae = calloc(1, sizeof(*ae));
	if (!ae)
		return -ENOMEM;
	ae->store = s;
	ae->sink = sink;
	ae->key = n->have_key ? &n->key : NULL;
	node_peers_list(n->cluster, &ae->peers);
	if (fs_ticker_start(a->sync_interval_s * 1000, 0, ae_round, ae, &ae->ticker) < 0) {
		free(ae);
		return -ENOMEM;
	}
	*out = ae;
	return 0;
}

void fs_ae_stop(struct fs_ae *ae)
{
	if (!ae)
		return;
	fs_ticker_stop(ae->ticker);
	free(ae);
}
