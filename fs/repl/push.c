/*
 * push - the namespace's outbox to every peer. Every local change is written,
 * in its own LMDB transaction, to the outbox (meta.h); a pusher thread sends
 * it in order to each peer (`mput`, docs/PROTOCOL.md), keeps in the namespace
 * how far each peer acknowledged (so a restart resumes there), and trims what
 * all of them have, so a peer that was down gets the backlog when it
 * returns. The peers are the nodes of the cluster map, looked up again every
 * second: a node added is pushed to from then on, a node removed no longer
 * holds the outbox back, nor does a node without a namespace (caskfs serve).
 * Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_i.h"
#include "store/node/client.h"
#include "store/endian.h"

#define PUSH_MS 20	       /* how often the outbox is looked at */
#define BATCH_RECORDS 512      /* records per mput */
#define BATCH_BYTES (4u << 20) /* bytes per mput */
#define RETRY_MS 1000	       /* a peer that failed is tried again after this */
#define NO_NAMESPACE_MS 60000  /* a node without a namespace is asked again after this */
#define PEERS_MS 1000	       /* how often the peers are looked up in the map */
#define MAX_PEERS (2 * CLUSTER_MAX_NODES)

struct repl_peer {
	char addr[256];
	struct mc_conn *conn;
	uint64_t acked; /* outbox seq this peer has everything up to */
	int64_t retry_at;
	bool down;
	bool no_namespace; /* it answered mput with ERROR: a node without a mount */
};

struct batch {
	uint8_t *buf;
	size_t len, cap;
	uint64_t last;
};

struct fs_repl {
	struct meta *meta;
	struct cluster *cluster;
	struct repl_peer *peers; /* MAX_PEERS */
	int npeers;
	int64_t peers_at; /* when the peers were last looked up */
	const struct auth_key *key;
	struct fs_ticker *ticker;
	/* the ticker's thread only: */
	struct batch batch;
	uint64_t trimmed; /* the outbox is trimmed up to this */
};

static int add_record(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct batch *b = arg;

	if (b->len && b->len + 4 + len > BATCH_BYTES)
		return 1;
	if (b->len + 4 + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		while (cap < b->len + 4 + len)
			cap *= 2;
		uint8_t *n = realloc(b->buf, cap);
		if (!n)
			return -ENOMEM;
		b->buf = n;
		b->cap = cap;
	}
	put_le32(b->buf + b->len, (uint32_t)len);
	memcpy(b->buf + b->len + 4, rec, len);
	b->len += 4 + len;
	b->last = seq;
	return 0;
}

static void peer_failed(struct repl_peer *p, int rc)
{
	mc_close(p->conn);
	p->conn = NULL;
	p->retry_at = fs_now_ms() + RETRY_MS;
	if (!p->down)
		fprintf(stderr, "caskfs: namespace push to %s failed (%s); will retry\n", p->addr,
			strerror(-rc));
	p->down = true;
}

/* Sends p what it lacks, one batch; returns 1 when more is waiting. */
static int push_peer(struct fs_repl *rp, struct repl_peer *p, uint64_t last, struct batch *b)
{
	char head[64], state[300];
	char *line;
	size_t len;
	int rc;

	if (p->acked >= last || fs_now_ms() < p->retry_at)
		return 0;
	b->len = 0;
	/* last may count a transaction that has not committed yet: read what is
	 * committed and never move past what was actually sent */
	rc = meta_outbox_read(rp->meta, p->acked, BATCH_RECORDS, add_record, b);
	if (rc < 0 || b->len == 0)
		return 0;
	if (!p->conn && (rc = mc_connect(p->addr, rp->key, 300, 5000, &p->conn)) < 0) {
		peer_failed(p, rc);
		return 0;
	}
	snprintf(head, sizeof(head), "mput %zu\r\n", b->len);
	struct iovec iov[3] = { { head, strlen(head) }, { b->buf, b->len }, { "\r\n", 2 } };
	if ((rc = mc_send(p->conn, iov, 3)) < 0 || (rc = mc_line(p->conn, &line, &len)) < 0) {
		peer_failed(p, rc);
		return 0;
	}
	if (strcmp(line, "ERROR") == 0) {
		/* no namespace there (caskfs serve): it does not hold the outbox back */
		p->no_namespace = true;
		p->retry_at = fs_now_ms() + NO_NAMESPACE_MS;
		return 0;
	}
	if (strncmp(line, "STORED ", 7) != 0) {
		fprintf(stderr, "caskfs: %s refused namespace records: %s\n", p->addr, line);
		peer_failed(p, -EIO);
		return 0;
	}
	p->no_namespace = false;
	if (p->down)
		fprintf(stderr, "caskfs: namespace push to %s works again\n", p->addr);
	p->down = false;
	p->acked = b->last;
	snprintf(state, sizeof(state), "acked:%s", p->addr);
	meta_state_put(rp->meta, state, p->acked);
	return p->acked < last;
}

/* Makes rp->peers the nodes of the cluster map (but this one), keeping what
 * is known of those already there. */
static void refresh_peers(struct fs_repl *rp)
{
	char (*addrs)[CLUSTER_ADDR] = malloc(MAX_PEERS * CLUSTER_ADDR);
	struct repl_peer *next = calloc(MAX_PEERS, sizeof(*next));
	int n = 0;

	if (!addrs || !next) {
		free(addrs);
		free(next);
		return;
	}
	int count = cluster_map_peers(rp->cluster, addrs, NULL, MAX_PEERS);
	for (int i = 0; i < count; i++) {
		struct repl_peer *p = &next[n++];
		int had = -1;
		for (int k = 0; k < rp->npeers && had < 0; k++)
			if (strcmp(rp->peers[k].addr, addrs[i]) == 0)
				had = k;
		if (had >= 0) {
			*p = rp->peers[had];
			rp->peers[had].conn = NULL;
			continue;
		}
		char state[300];
		memcpy(p->addr, addrs[i], sizeof(p->addr));
		snprintf(state, sizeof(state), "acked:%s", p->addr);
		if (meta_state_get(rp->meta, state, &p->acked) < 0)
			p->acked = 0;
	}
	for (int k = 0; k < rp->npeers; k++)
		mc_close(rp->peers[k].conn); /* the nodes no longer in the map */
	free(rp->peers);
	rp->peers = next;
	rp->npeers = n;
	free(addrs);
}

/* One round: each peer gets one batch of what it lacks, then the outbox is
 * trimmed to what all of them have. True when more is waiting. */
static bool push_round(void *arg)
{
	struct fs_repl *rp = arg;
	uint64_t last, pending;
	bool more = false;

	if (fs_now_ms() >= rp->peers_at + PEERS_MS) {
		refresh_peers(rp);
		rp->peers_at = fs_now_ms();
	}
	meta_outbox_state(rp->meta, &last, &pending);
	uint64_t low = last;
	for (int i = 0; i < rp->npeers; i++) {
		more |= push_peer(rp, &rp->peers[i], last, &rp->batch) > 0;
		if (rp->peers[i].acked < low && !rp->peers[i].no_namespace)
			low = rp->peers[i].acked;
	}
	if (low > rp->trimmed && pending) {
		if (meta_outbox_trim(rp->meta, low) == 0)
			rp->trimmed = low;
	}
	return more;
}

int fs_repl_start(struct meta *m, const struct node *n, const struct node_args *a,
		  struct fs_repl **out)
{
	struct fs_repl *rp;

	*out = NULL;
	if (!a->listen)
		return 0; /* not a node: nobody to push to */
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->meta = m;
	rp->cluster = n->cluster;
	rp->key = n->have_key ? &n->key : NULL;
	refresh_peers(rp);
	rp->peers_at = fs_now_ms();
	meta_set_replication(m, true);
	int rc = fs_ticker_start(PUSH_MS, FS_TICKER_NOW, push_round, rp, &rp->ticker);
	if (rc < 0) {
		meta_set_replication(m, false);
		free(rp->peers);
		free(rp);
		return rc;
	}
	*out = rp;
	return 0;
}

void fs_repl_kick(struct fs_repl *rp)
{
	if (rp)
		fs_ticker_kick(rp->ticker);
}

void fs_repl_stop(struct fs_repl *rp)
{
	if (!rp)
		return;
	fs_ticker_stop(rp->ticker);
	for (int i = 0; i < rp->npeers; i++)
		mc_close(rp->peers[i].conn);
	free(rp->batch.buf);
	free(rp->peers);
	free(rp);
}
