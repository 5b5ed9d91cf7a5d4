/*
 * push - the namespace's outbox to every peer. Every local change is written,
 * in its own LMDB transaction, to the outbox (meta.h); a pusher thread sends
 * it in order to each peer (`mput`, docs/PROTOCOL.md), keeps in the namespace
 * how far each peer acknowledged (so a restart resumes there), and trims what
 * all of them have, so a peer that was down gets the backlog when it
 * returns. Semantics: docs/REPLICATION.md.
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

struct repl_peer {
	char addr[256];
	struct mc_conn *conn;
	uint64_t acked; /* outbox seq this peer has everything up to */
	int64_t retry_at;
	bool down;
};

struct batch {
	uint8_t *buf;
	size_t len, cap;
	uint64_t last;
};

struct fs_repl {
	struct meta *meta;
	struct repl_peer *peers;
	int npeers;
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
	if (strncmp(line, "STORED ", 7) != 0) {
		fprintf(stderr, "caskfs: %s refused namespace records: %s\n", p->addr, line);
		peer_failed(p, -EIO);
		return 0;
	}
	if (p->down)
		fprintf(stderr, "caskfs: namespace push to %s works again\n", p->addr);
	p->down = false;
	p->acked = b->last;
	snprintf(state, sizeof(state), "acked:%s", p->addr);
	meta_state_put(rp->meta, state, p->acked);
	return p->acked < last;
}

/* One round: each peer gets one batch of what it lacks, then the outbox is
 * trimmed to what all of them have. True when more is waiting. */
static bool push_round(void *arg)
{
	struct fs_repl *rp = arg;
	uint64_t last, pending;
	bool more = false;

	meta_outbox_state(rp->meta, &last, &pending);
	uint64_t low = last;
	for (int i = 0; i < rp->npeers; i++) {
		more |= push_peer(rp, &rp->peers[i], last, &rp->batch) > 0;
		if (rp->peers[i].acked < low)
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
	if (!a->peers)
		return 0;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->meta = m;
	rp->key = n->have_key ? &n->key : NULL;
	rp->peers = calloc(CLUSTER_MAX_NODES, sizeof(*rp->peers));
	if (!rp->peers) {
		free(rp);
		return -ENOMEM;
	}
	/* the cluster parsed and deduplicated the addresses already */
	struct node_peers peers;
	node_peers_list(n->cluster, &peers);
	for (int i = 0; i < peers.n; i++) {
		struct repl_peer *p = &rp->peers[rp->npeers++];
		char state[300];
		snprintf(p->addr, sizeof(p->addr), "%s", peers.addr[i]);
		snprintf(state, sizeof(state), "acked:%s", p->addr);
		if (meta_state_get(m, state, &p->acked) < 0)
			p->acked = 0;
	}
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
