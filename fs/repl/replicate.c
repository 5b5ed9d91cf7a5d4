/*
 * replicate - the namespace between mounts. Every local change is written, in
 * its own LMDB transaction, to the namespace's outbox (meta.h); a pusher
 * thread sends the outbox in order to every peer (`mput`, docs/PROTOCOL.md)
 * and trims what all of them acknowledged, so a peer that was down gets the
 * backlog when it returns. Records from peers are applied under the
 * last-writer-wins rule (meta_apply) and the kernel's caches of what they
 * touched are invalidated, so readers here see the change at once.
 * Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon/daemon_i.h"
#include "fs/daemon/ops_i.h"
#include "store/client.h"
#include "store/endian.h"
#include "store/proto.h"

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

struct repl {
	struct fs *fs;
	struct repl_peer *peers;
	int npeers;
	const struct auth_key *key;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop; /* protected by mu */
};

/* ---- receiving ---- */

/* Tells the kernel what a record applied here changed. */
static void invalidate(struct fs *fs, const struct meta_change *c)
{
	struct fuse_session *se = atomic_load(&fs->se);

	if (c->table == META_TABLE_ENTRIES) {
		if (c->old_child && c->old_child != c->ino) {
			/* The name no longer leads there: the inode goes now unless
			 * the kernel holds it (an open descriptor, a cached entry:
			 * it will send FORGET, and op_forget drops it then). */
			if (fs_nlookup_count(&fs->lookups, c->old_child) == 0 &&
			    (!se || fuse_lowlevel_notify_inval_inode(se, c->old_child, 0, 0) ==
					    -ENOENT) &&
			    fs_file_forget(fs, c->old_child))
				meta_forget(fs->meta, c->old_child);
		}
		if (se) {
			fuse_lowlevel_notify_inval_entry(se, c->parent, c->name, strlen(c->name));
			fuse_lowlevel_notify_inval_inode(se, c->parent, 0, 0);
		}
		return;
	}
	if (se)
		fuse_lowlevel_notify_inval_inode(se, c->ino, 0, 0);
}

/* mput BYTES: records, each le32 length then the wire record. */
static void handle_mput(struct fs *fs, const struct proto_req *r, server_emit_fn emit, void *ctx)
{
	const uint8_t *p = r->data, *end = r->data + r->data_len;
	unsigned applied = 0, seen = 0;
	char line[96];
	int rc = 0;

	while (p < end) {
		if (end - p < 4 || get_le32(p) > (size_t)(end - p - 4)) {
			rc = -EBADMSG;
			break;
		}
		uint32_t len = get_le32(p);
		struct meta_change chg;
		rc = meta_apply(fs->meta, p + 4, len, &chg);
		if (rc < 0)
			break;
		if (rc == 1) {
			applied++;
			invalidate(fs, &chg);
		}
		seen++;
		p += 4 + len;
	}
	if (r->noreply)
		return;
	if (rc < 0)
		snprintf(line, sizeof(line), "SERVER_ERROR record %u: %s\r\n", seen,
			 rc == -EBADMSG ? "malformed namespace record" : strerror(-rc));
	else
		snprintf(line, sizeof(line), "STORED %u %u\r\n", seen, applied);
	emit(ctx, line, strlen(line));
}

int fs_repl_apply(struct fs *fs, const uint8_t *rec, size_t len)
{
	struct meta_change chg;
	int rc = meta_apply(fs->meta, rec, len, &chg);

	if (rc == 1)
		invalidate(fs, &chg);
	return rc;
}

/* Replies with text (or bytes) as the value of a get of name. */
static void emit_value(server_emit_fn emit, void *ctx, const char *name, const void *p, size_t n)
{
	char head[600];
	int hl = snprintf(head, sizeof(head), "VALUE %s 0 %zu\r\n", name, n);

	emit(ctx, head, (size_t)hl);
	emit(ctx, p, n);
	emit(ctx, "\r\nEND\r\n", 7);
}

static int bucket_line(void *arg, const uint8_t *tk, size_t tklen, const struct store_version *v,
		       uint64_t leaf, bool deleted)
{
	struct server_text *t = arg;
	char hex[2 * (1 + 16 + META_NAME_MAX) + 1];

	if (tklen > 1 + 16 + META_NAME_MAX)
		return 0;
	auth_hex(tk, tklen, hex);
	server_text_fmt(t, "%.*s %" PRIu64 " %" PRIu32 " %016" PRIx64 "%s\n", (int)(2 * tklen), hex,
			v->stamp, v->node, leaf, deleted ? " T" : "");
	return t->oom ? -ENOMEM : 0;
}

/* mtree [PATH]: the namespace tree, as `get @PATH` shows the store's. */
static void handle_mtree(struct fs *fs, const char *path, size_t plen, server_emit_fn emit,
			 void *ctx)
{
	uint8_t nib[STORE_TREE_DEPTH];
	struct store_tree_node self, kids[16];
	struct server_text t = { 0 };
	char name[16] = "@m";
	int rc = 0;

	if (proto_tree_path(path, plen, nib, STORE_TREE_DEPTH) < 0)
		rc = -EINVAL;
	else
		memcpy(name + 2, path, plen);
	if (rc == 0 && plen == STORE_TREE_DEPTH) {
		rc = meta_tree_bucket(fs->meta, nib, bucket_line, &t);
	} else if (rc == 0) {
		rc = meta_tree_children(fs->meta, nib, (int)plen, &self, kids);
		if (rc == 0)
			server_text_tree_node(&t, &self, kids);
	}
	if (rc == 0 && t.oom)
		rc = -ENOMEM;
	if (rc < 0) {
		char line[96];
		snprintf(line, sizeof(line), "CLIENT_ERROR bad tree path (%s)\r\n", strerror(-rc));
		emit(ctx, line, strlen(line));
	} else {
		emit_value(emit, ctx, name, t.p ? t.p : "", t.len);
	}
	free(t.p);
}

/* mget HEXKEY: the wire record of (table byte + key). */
static void handle_mget(struct fs *fs, const char *hex, size_t hlen, server_emit_fn emit, void *ctx)
{
	uint8_t tk[1 + 16 + META_NAME_MAX], *rec;
	size_t len;
	char name[2 * sizeof(tk) + 1];

	if (hlen < 4 || hlen > 2 * sizeof(tk) || hlen % 2 || !auth_unhex(hex, hlen, tk, hlen / 2)) {
		emit(ctx, "CLIENT_ERROR bad namespace key\r\n", 33);
		return;
	}
	int rc = meta_get_record(fs->meta, tk, hlen / 2, &rec, &len);
	if (rc == -ENOENT || rc == -EINVAL) {
		emit(ctx, "END\r\n", 5);
		return;
	}
	if (rc < 0) {
		char line[96];
		snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n", strerror(-rc));
		emit(ctx, line, strlen(line));
		return;
	}
	memcpy(name, hex, hlen);
	name[hlen] = 0;
	emit_value(emit, ctx, name, rec, len);
	free(rec);
}

/* The FUSE requests this mount has served, by operation (none is left out
 * of metrics; stats list the operations seen). */
static void fuse_request_stats(struct fs *fs, bool metrics, server_emit_fn emit, void *ctx)
{
	char line[160];
	int n;

	if (metrics) {
		static const char head[] =
		    "# HELP caskfs_fuse_requests_total FUSE requests served, by operation\n"
		    "# TYPE caskfs_fuse_requests_total counter\n";
		emit(ctx, head, sizeof(head) - 1);
	}
	for (unsigned op = 0; op < FS_OPCODES; op++) {
		const char *name = fs_opcode_name(op);
		uint64_t v = atomic_load_explicit(&fs->requests[op], memory_order_relaxed);
		if (!name || (!metrics && v == 0))
			continue;
		if (metrics)
			n = snprintf(line, sizeof(line),
				     "caskfs_fuse_requests_total{op=\"%s\"} %" PRIu64 "\n", name, v);
		else
			n = snprintf(line, sizeof(line), "STAT caskfs_fuse_%s %" PRIu64 "\r\n", name, v);
		emit(ctx, line, (size_t)n);
	}
}

void fs_repl_stats(void *arg, bool metrics, server_emit_fn emit, void *ctx)
{
	struct fs *fs = arg;
	struct meta_stats ms;
	struct store_tree_node root, kids[16];
	uint64_t last, pending;
	char out[1024];
	int n;

	if (meta_stats(fs->meta, &ms) < 0)
		memset(&ms, 0, sizeof(ms));
	meta_outbox_state(fs->meta, &last, &pending);
	if (meta_tree_children(fs->meta, NULL, 0, &root, kids) < 0)
		memset(&root, 0, sizeof(root));
	if (metrics)
		n = snprintf(out, sizeof(out),
			     "# HELP caskfs_meta_inodes inodes in the namespace\n"
			     "# TYPE caskfs_meta_inodes gauge\ncaskfs_meta_inodes %" PRIu64 "\n"
			     "# HELP caskfs_meta_entries live directory entries\n"
			     "# TYPE caskfs_meta_entries gauge\ncaskfs_meta_entries %" PRIu64 "\n"
			     "# HELP caskfs_meta_outbox_pending namespace records not yet pushed to every peer\n"
			     "# TYPE caskfs_meta_outbox_pending gauge\ncaskfs_meta_outbox_pending %" PRIu64
			     "\n",
			     ms.inodes, ms.entries, pending);
	else
		n = snprintf(out, sizeof(out),
			     "STAT caskfs_meta_inodes %" PRIu64 "\r\nSTAT caskfs_meta_entries %" PRIu64
			     "\r\nSTAT caskfs_meta_tombstones %" PRIu64
			     "\r\nSTAT caskfs_meta_outbox_pending %" PRIu64
			     "\r\nSTAT caskfs_meta_tree_root %016" PRIx64 "\r\n",
			     ms.inodes, ms.entries, ms.tombstones, pending, root.hash);
	emit(ctx, out, (size_t)n);
	fuse_request_stats(fs, metrics, emit, ctx);
}

void fs_repl_ext(void *arg, const struct proto_req *r, server_emit_fn emit, void *ctx)
{
	struct fs *fs = arg;
	const char *tok = "";
	size_t tlen = 0, pos = 0;

	if (r->cmd == PROTO_MPUT) {
		handle_mput(fs, r, emit, ctx);
		return;
	}
	if (r->key_len == 3 && memcmp(r->key, "mgc", 3) == 0) {
		fs_gc_command(fs, r, emit, ctx);
		return;
	}
	proto_token(r->args, r->args_len, &pos, &tok, &tlen);
	if (r->key_len == 5 && memcmp(r->key, "mtree", 5) == 0)
		handle_mtree(fs, tok, tlen, emit, ctx);
	else
		handle_mget(fs, tok, tlen, emit, ctx);
}

/* ---- pushing ---- */

struct batch {
	uint8_t *buf;
	size_t len, cap;
	uint64_t last;
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
static int push_peer(struct repl *rp, struct repl_peer *p, uint64_t last, struct batch *b)
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
	rc = meta_outbox_read(rp->fs->meta, p->acked, BATCH_RECORDS, add_record, b);
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
	meta_state_put(rp->fs->meta, state, p->acked);
	return p->acked < last;
}

static void *pusher_main(void *arg)
{
	struct repl *rp = arg;
	struct batch b = { 0 };
	uint64_t trimmed = 0;

	pthread_mutex_lock(&rp->mu);
	while (!rp->stop) {
		uint64_t last, pending;
		bool more = false;
		pthread_mutex_unlock(&rp->mu);
		meta_outbox_state(rp->fs->meta, &last, &pending);
		uint64_t low = last;
		for (int i = 0; i < rp->npeers; i++) {
			more |= push_peer(rp, &rp->peers[i], last, &b) > 0;
			if (rp->peers[i].acked < low)
				low = rp->peers[i].acked;
		}
		if (low > trimmed && pending) {
			if (meta_outbox_trim(rp->fs->meta, low) == 0)
				trimmed = low;
		}
		pthread_mutex_lock(&rp->mu);
		if (more || rp->stop)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += PUSH_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&rp->cv, &rp->mu, &ts);
	}
	pthread_mutex_unlock(&rp->mu);
	free(b.buf);
	return NULL;
}

static void add_peer(void *arg, const char *addr, bool self, bool up, uint64_t hints)
{
	struct repl *rp = arg;
	char state[300];

	(void)up;
	(void)hints;
	if (self || rp->npeers == CLUSTER_MAX_NODES)
		return;
	struct repl_peer *p = &rp->peers[rp->npeers++];
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	snprintf(state, sizeof(state), "acked:%s", p->addr);
	if (meta_state_get(rp->fs->meta, state, &p->acked) < 0)
		p->acked = 0;
}

int fs_repl_start(struct fs *fs, const struct node_args *a)
{
	struct repl *rp;

	if (!a->peers)
		return 0;
	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->fs = fs;
	rp->key = fs->node.have_key ? &fs->node.key : NULL;
	rp->peers = calloc(CLUSTER_MAX_NODES, sizeof(*rp->peers));
	if (!rp->peers) {
		free(rp);
		return -ENOMEM;
	}
	/* the cluster parsed and deduplicated the addresses already */
	cluster_peers(fs->node.cluster, add_peer, rp);
	pthread_mutex_init(&rp->mu, NULL);
	pthread_cond_init(&rp->cv, NULL);
	meta_set_replication(fs->meta, true);
	if (pthread_create(&rp->thread, NULL, pusher_main, rp) != 0) {
		meta_set_replication(fs->meta, false);
		free(rp->peers);
		free(rp);
		return -EAGAIN;
	}
	fs->repl = rp;
	return 0;
}

void fs_repl_kick(struct fs *fs)
{
	struct repl *rp = fs->repl;

	if (!rp)
		return;
	pthread_mutex_lock(&rp->mu);
	pthread_cond_signal(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
}

void fs_repl_stop(struct fs *fs)
{
	struct repl *rp = fs->repl;

	if (!rp)
		return;
	pthread_mutex_lock(&rp->mu);
	rp->stop = true;
	pthread_cond_signal(&rp->cv);
	pthread_mutex_unlock(&rp->mu);
	pthread_join(rp->thread, NULL);
	for (int i = 0; i < rp->npeers; i++)
		mc_close(rp->peers[i].conn);
	pthread_mutex_destroy(&rp->mu);
	pthread_cond_destroy(&rp->cv);
	free(rp->peers);
	free(rp);
	fs->repl = NULL;
}
