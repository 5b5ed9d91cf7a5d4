/*
 * server - the node server (server.h). A few threads each run an epoll loop
 * over the connections they accepted (the listening socket is shared with
 * EPOLLEXCLUSIVE). A connection's requests are parsed from its input buffer
 * and answered in order into its output buffer, so pipelining is free.
 * Coordinated requests wait for peers inside the loop, bounded by the quorum
 * client's timeouts; that is why there are several loops
 * (docs/DESIGN-NOTES.md). Memory per connection is bounded: input grows only
 * to hold one request (PROTO_VALUE_MAX plus its line), and a connection whose
 * unsent output passes OUT_HIGH is not read until the client catches up.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto.h"

/* memcache tools parse MAJOR.MINOR.MICRO; the rest names what this is */
#define SERVER_VERSION "1.6.0-caskfs-0.2"
#define IN_MIN 16384
#define IN_MAX ((size_t)PROTO_VALUE_MAX + PROTO_LINE_MAX + 2)
#define OUT_HIGH (32u << 20) /* stop reading a connection past this much unsent output */
/* buffers larger than this are freed when empty; a 1 MiB chunk's request fits */
#define KEEP_IDLE (4u << 20)

struct conn {
	int fd;
	char *in; /* received, unparsed bytes [0, in_len) */
	size_t in_len, in_cap;
	char *out; /* reply bytes [out_pos, out_len) not yet sent */
	size_t out_len, out_pos, out_cap;
	size_t swallow; /* bytes of a refused value still to discard */
	size_t need;	/* bytes the request at the start of in takes, when known */
	bool authed;
	bool nonce_sent;
	uint8_t cn[AUTH_NONCE], sn[AUTH_NONCE];
	bool closing; /* close once out is sent */
	bool started; /* the first byte was seen (it tells the binary protocol) */
	bool oom;     /* an output append failed: close */
	uint32_t events; /* what epoll watches now */
	struct conn *prev, *next; /* the loop's list; only its thread touches it */
};

struct loop {
	struct server *srv;
	int ep;
	pthread_t thread;
	struct conn *conns; /* every open connection of this loop */
};

struct server {
	struct store *store;
	struct cluster *cluster;
	const struct auth_key *key;
	struct auth_key key_copy;
	int lfd; /* TCP, or -1 */
	int ufd; /* the control socket in DATA_DIR, or -1 */
	char upath[108];
	int stopfd; /* eventfd: written once to stop every loop */
	int nloops;
	struct loop *loops;
	int max_conns;
	server_ext_fn ext;
	server_stats_fn stats_ext;
	void *ext_arg;
	time_t started;
	_Atomic int conns;
	_Atomic uint64_t total_conns, cmd_get, cmd_set, get_hits, get_misses, cmd_delete;
	_Atomic uint64_t errors, rejected_conns;
};

/* ---- output ---- */

static bool out_reserve(struct conn *c, size_t n)
{
	if (c->out_len + n <= c->out_cap)
		return true;
	if (c->out_pos > 0) {
		memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
		c->out_len -= c->out_pos;
		c->out_pos = 0;
		if (c->out_len + n <= c->out_cap)
			return true;
	}
	size_t cap = c->out_cap ? c->out_cap : 4096;
	while (cap < c->out_len + n)
		cap *= 2;
	char *b = realloc(c->out, cap);
	if (!b) {
		c->oom = true;
		return false;
	}
	c->out = b;
	c->out_cap = cap;
	return true;
}

static void out_bytes(struct conn *c, const void *p, size_t n)
{
	if (n && out_reserve(c, n)) { /* n 0: p may be NULL (an empty value) */
		memcpy(c->out + c->out_len, p, n);
		c->out_len += n;
	}
}

static void out_str(struct conn *c, const char *s)
{
	out_bytes(c, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void out_fmt(struct conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		out_bytes(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static void out_error(struct conn *c, int err)
{
	out_fmt(c, "SERVER_ERROR %s\r\n", strerror(-err));
}

/* ---- the extensions' text values ---- */

void server_text_fmt(struct server_text *t, const char *fmt, ...)
{
	va_list ap;

	while (!t->oom) {
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(t->p, cap);
		if (!b) {
			t->oom = true;
			return;
		}
		t->p = b;
		t->cap = cap;
	}
}

void server_text_tree_node(struct server_text *t, const struct store_tree_node *self,
			   const struct store_tree_node kids[16])
{
	server_text_fmt(t, "self %016" PRIx64 " %" PRIu64 "\n", self->hash, self->count);
	for (int i = 0; i < 16; i++)
		server_text_fmt(t, "%x %016" PRIx64 " %" PRIu64 "\n", i, kids[i].hash, kids[i].count);
}

static int text_bucket_key(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	server_text_fmt(arg, "%.*s %" PRIu64 " %" PRIu32 " %016" PRIx64 "%s\n", (int)klen,
		 (const char *)key, m->version.stamp, m->version.node, m->value_hash,
		 m->tombstone ? " T" : "");
	return 0;
}

/* get @PATH: a tree node's children, or a leaf bucket's keys. */
static int tree_text(struct server *srv, const char *path, size_t n, struct server_text *t)
{
	uint8_t nib[STORE_TREE_DEPTH];
	struct store_tree_node self, kids[16];

	if (proto_tree_path(path, n, nib, STORE_TREE_DEPTH) < 0)
		return -EINVAL;
	if (n == STORE_TREE_DEPTH)
		return store_tree_bucket(srv->store, nib, text_bucket_key, t);
	int rc = store_tree_children(srv->store, nib, (int)n, &self, kids);
	if (rc < 0)
		return rc;
	server_text_tree_node(t, &self, kids);
	return 0;
}

static void out_value(struct conn *c, const char *key, size_t klen, const void *val, size_t n,
		      bool with_cas, uint64_t cas)
{
	if (with_cas)
		out_fmt(c, "VALUE %.*s 0 %zu %" PRIu64 "\r\n", (int)klen, key, n, cas);
	else
		out_fmt(c, "VALUE %.*s 0 %zu\r\n", (int)klen, key, n);
	out_bytes(c, val, n);
	out_bytes(c, "\r\n", 2);
}

/* ---- commands ---- */

/* One key of get/gets. Returns false when the reply had to stop (error). */
static bool get_one(struct server *srv, struct conn *c, const char *key, size_t klen,
		    bool with_cas)
{
	struct store_meta m;
	void *val;
	size_t n;
	int rc;

	if (klen > 1 && key[0] == '?') {
		rc = store_stat(srv->store, key + 1, klen - 1, &m);
		if (rc == 0 || (rc == -ENOENT && m.tombstone)) {
			char text[128];
			int tl = snprintf(text, sizeof(text),
					  "%" PRIu64 " %" PRIu32 " %016" PRIx64 " %" PRIu32 " %s",
					  m.version.stamp, m.version.node, m.value_hash, m.size,
					  m.tombstone ? "tombstone" : "live");
			out_value(c, key, klen, text, (size_t)tl, with_cas, m.version.stamp);
		} else if (rc != -ENOENT) {
			out_error(c, rc);
			return false;
		}
		return true;
	}
	if (key[0] == '@') {
		struct server_text t = { 0 };
		rc = tree_text(srv, key + 1, klen - 1, &t);
		if (rc == 0 && !t.oom)
			out_value(c, key, klen, t.p ? t.p : "", t.len, with_cas, 0);
		free(t.p);
		if (rc < 0 || t.oom) {
			out_fmt(c, "CLIENT_ERROR bad tree path %.*s\r\n", (int)klen, key);
			return false;
		}
		return true;
	}
	rc = cluster_get(srv->cluster, key, klen, &val, &n, &m);
	if (rc == 0) {
		atomic_fetch_add(&srv->get_hits, 1);
		out_value(c, key, klen, val, n, with_cas, m.version.stamp);
		free(val);
		return true;
	}
	if (rc == -ENOENT) {
		atomic_fetch_add(&srv->get_misses, 1);
		return true;
	}
	out_error(c, rc);
	return false;
}

static void cmd_get(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const char *k;
	size_t kl, pos = 0;

	while (proto_token(r->args, r->args_len, &pos, &k, &kl)) {
		atomic_fetch_add(&srv->cmd_get, 1);
		if (!get_one(srv, c, k, kl, r->cmd == PROTO_GETS))
			return;
	}
	out_str(c, "END\r\n");
}

static void cmd_xget(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const char *k;
	size_t kl, pos = 0;
	struct store_meta m;
	void *val;
	size_t n;

	while (proto_token(r->args, r->args_len, &pos, &k, &kl)) {
		int rc = store_get(srv->store, k, kl, &val, &n, &m);
		if (rc == -ENOENT && m.tombstone) {
			val = NULL;
			n = 0;
		} else if (rc == -ENOENT) {
			continue;
		} else if (rc < 0) {
			out_error(c, rc);
			return;
		}
		out_fmt(c, "XVALUE %.*s %" PRIu64 " %" PRIu32 " %zu %016" PRIx64 "%s\r\n", (int)kl,
			k, m.version.stamp, m.version.node, n, m.value_hash,
			m.tombstone ? " T" : "");
		out_bytes(c, val, n);
		out_bytes(c, "\r\n", 2);
		free(val);
	}
	out_str(c, "END\r\n");
}

static int xls_line(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	struct conn *c = arg;

	out_fmt(c, "%.*s %" PRIu64 " %" PRIu32 " %016" PRIx64 "%s\r\n", (int)klen,
		(const char *)key, m->version.stamp, m->version.node, m->value_hash,
		m->tombstone ? " T" : "");
	return c->oom ? -ENOMEM : 0;
}

static void cmd_store(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct store_meta m;
	const char *reply = "STORED\r\n";
	int rc = 0;

	atomic_fetch_add(&srv->cmd_set, 1);
	if (r->cmd == PROTO_ADD || r->cmd == PROTO_REPLACE) {
		rc = cluster_stat(srv->cluster, r->key, r->key_len, &m);
		bool exists = rc == 0;
		if (rc == 0 || rc == -ENOENT) {
			rc = 0;
			if (exists == (r->cmd == PROTO_ADD))
				reply = "NOT_STORED\r\n";
		}
	}
	if (rc == 0 && reply[0] == 'S')
		rc = cluster_put(srv->cluster, r->key, r->key_len, r->data, r->data_len);
	if (r->noreply)
		return;
	if (rc < 0)
		out_error(c, rc);
	else
		out_str(c, reply);
}

static void cmd_xset(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct store_version v = { r->stamp, r->node };
	int rc = store_apply(srv->store, r->key, r->key_len, r->tombstone ? NULL : r->data,
			     r->tombstone ? 0 : r->data_len, &v, r->tombstone);

	if (r->noreply)
		return;
	if (rc < 0)
		out_error(c, rc);
	else
		out_str(c, rc == STORE_STALE ? "NOT_STORED\r\n" : "STORED\r\n");
}

static void cmd_delete(struct server *srv, struct conn *c, const struct proto_req *r)
{
	int rc = cluster_delete(srv->cluster, r->key, r->key_len);

	atomic_fetch_add(&srv->cmd_delete, 1);
	if (r->noreply)
		return;
	if (rc == 0)
		out_str(c, "DELETED\r\n");
	else if (rc == -ENOENT)
		out_str(c, "NOT_FOUND\r\n");
	else
		out_error(c, rc);
}

/* One number of the node, as `stats` and /metrics show it. */
struct stat_num {
	const char *name; /* the stats name; /metrics prefixes caskfs_ unless there */
	uint64_t value;
	const char *help; /* NULL: not a metric (memcache bookkeeping) */
	bool counter;
};

static size_t collect(struct server *srv, struct stat_num *v, size_t cap)
{
	struct store_stats s;
	struct cluster_stats cs;
	size_t n = 0;

	store_stats(srv->store, &s);
	cluster_stats(srv->cluster, &cs);
#define NUM(nm, val, hp, ctr) \
	if (n < cap)          \
	v[n++] = (struct stat_num){ nm, (uint64_t)(val), hp, ctr }
	NUM("uptime", time(NULL) - srv->started, "seconds since the node started", false);
	NUM("curr_connections", atomic_load(&srv->conns), "open client connections", false);
	NUM("total_connections", atomic_load(&srv->total_conns), "connections accepted", true);
	NUM("rejected_connections", atomic_load(&srv->rejected_conns),
	    "connections closed at once (limit reached)", true);
	NUM("cmd_get", atomic_load(&srv->cmd_get), "keys asked for by get/gets", true);
	NUM("cmd_set", atomic_load(&srv->cmd_set), "set/add/replace requests", true);
	NUM("get_hits", atomic_load(&srv->get_hits), "keys found by get/gets", true);
	NUM("get_misses", atomic_load(&srv->get_misses), "keys not found by get/gets", true);
	NUM("cmd_delete", atomic_load(&srv->cmd_delete), "delete requests", true);
	NUM("protocol_errors", atomic_load(&srv->errors), "malformed or refused requests", true);
	NUM("curr_items", s.keys, "live objects in the local store", false);
	NUM("bytes", s.live_bytes, "bytes of the newest records in the local store", false);
	NUM("threads", srv->nloops, NULL, false);
	NUM("caskfs_node_id", s.node_id, "this node's id", false);
	NUM("caskfs_tombstones", s.tombstones, "deleted keys kept as tombstones", false);
	NUM("caskfs_disk_bytes", s.disk_bytes, "bytes of all log segments", false);
	NUM("caskfs_segments", s.segments, "log segment files", false);
	NUM("caskfs_keydir_bytes", s.keydir_bytes, "memory held by the in-memory index", false);
	NUM("caskfs_corrupt_records", s.corrupt_records, "records found failing their checksum",
	    true);
	NUM("caskfs_compactions", s.compactions, "segments rewritten by compaction", true);
	NUM("caskfs_reclaimed_bytes", s.reclaimed_bytes, "disk bytes freed by compaction", true);
	NUM("caskfs_nodes", cs.nodes, "nodes in the cluster", false);
	NUM("caskfs_n", cs.n, "replicas of each object (N)", false);
	NUM("caskfs_w", cs.w, "write quorum (W)", false);
	NUM("caskfs_r", cs.r, "read quorum (R)", false);
	NUM("caskfs_put_failures", cs.put_failures, "writes that did not reach W replicas", true);
	NUM("caskfs_read_repairs", cs.read_repairs, "copies put back by reads", true);
	NUM("caskfs_hints_pending", cs.hints_pending, "hinted-handoff records waiting", false);
	NUM("caskfs_hint_bytes_pending", cs.hint_bytes_pending, "bytes of hints waiting", false);
	NUM("caskfs_hints_queued", cs.hints_queued, "hints written", true);
	NUM("caskfs_hints_replayed", cs.hints_replayed, "hints delivered", true);
#undef NUM
	return n;
}

struct peer_line {
	server_emit_fn emit;
	void *ctx;
	bool metrics;
};

static void peer_line(void *arg, const char *addr, bool self, bool up, uint64_t hints)
{
	struct peer_line *pl = arg;
	char line[400];
	int n;

	if (self)
		return;
	if (pl->metrics)
		n = snprintf(line, sizeof(line),
			     "caskfs_peer_up{peer=\"%s\"} %d\ncaskfs_peer_hints{peer=\"%s\"} %" PRIu64
			     "\n",
			     addr, up ? 1 : 0, addr, hints);
	else
		n = snprintf(line, sizeof(line), "STAT peer:%s %s %" PRIu64 "\r\n", addr,
			     up ? "up" : "down", hints);
	pl->emit(pl->ctx, line, (size_t)n);
}

static void emit(void *ctx, const void *p, size_t n);

static int segment_line(void *arg, const struct store_segment_info *seg)
{
	char line[160];
	int n = snprintf(line, sizeof(line), "STAT segment:%06u %" PRIu64 " %" PRIu64 " %s\r\n",
			 seg->id, seg->disk_bytes, seg->live_bytes, seg->sealed ? "sealed" : "active");
	out_bytes(arg, line, (size_t)n);
	return 0;
}

/* stats [segments|peers] */
static void cmd_stats(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct stat_num v[48];
	const char *arg = "";
	size_t alen = 0, pos = 0;

	proto_token(r->args, r->args_len, &pos, &arg, &alen);
	if (alen == 8 && memcmp(arg, "segments", 8) == 0) {
		store_segments(srv->store, segment_line, c);
	} else if (alen == 5 && memcmp(arg, "peers", 5) == 0) {
		struct peer_line pl = { emit, c, false };
		cluster_peers(srv->cluster, peer_line, &pl);
	} else if (alen == 0) {
		size_t n = collect(srv, v, 48);
		struct store_stats s;
		store_stats(srv->store, &s);
		out_fmt(c, "STAT pid %d\r\nSTAT time %lld\r\n", (int)getpid(),
			(long long)time(NULL));
		out_fmt(c, "STAT version %s\r\nSTAT pointer_size %d\r\n", SERVER_VERSION,
			(int)(8 * sizeof(void *)));
		for (size_t i = 0; i < n; i++)
			out_fmt(c, "STAT %s %" PRIu64 "\r\n", v[i].name, v[i].value);
		out_fmt(c, "STAT caskfs_tree_root %016" PRIx64 "\r\n", s.tree_root);
		if (srv->stats_ext)
			srv->stats_ext(srv->ext_arg, false, emit, c);
	} else {
		out_str(c, "CLIENT_ERROR unknown stats group\r\n");
		return;
	}
	out_str(c, "END\r\n");
}

/* GET /metrics: the same numbers as Prometheus text, then the connection closes. */
static void cmd_http(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct stat_num v[48];
	size_t n = collect(srv, v, 48);
	struct conn body = { 0 };

	if (!(r->key_len == 8 && memcmp(r->key, "/metrics", 8) == 0)) {
		out_str(c, "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
			   "Connection: close\r\n\r\nonly /metrics is served here\n");
		c->closing = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i].help)
			continue;
		const char *pre = strncmp(v[i].name, "caskfs_", 7) == 0 ? "" : "caskfs_";
		out_fmt(&body, "# HELP %s%s%s %s\n# TYPE %s%s%s %s\n%s%s%s %" PRIu64 "\n", pre,
			v[i].name, v[i].counter ? "_total" : "", v[i].help, pre, v[i].name,
			v[i].counter ? "_total" : "", v[i].counter ? "counter" : "gauge", pre,
			v[i].name, v[i].counter ? "_total" : "", v[i].value);
	}
	struct peer_line pl = { emit, &body, true };
	out_str(&body, "# HELP caskfs_peer_up whether a peer answers (1) or not (0)\n"
		       "# TYPE caskfs_peer_up gauge\n");
	cluster_peers(srv->cluster, peer_line, &pl);
	if (srv->stats_ext)
		srv->stats_ext(srv->ext_arg, true, emit, &body);
	out_fmt(c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		   "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		body.out_len);
	out_bytes(c, body.out, body.out_len);
	c->oom |= body.oom;
	free(body.out);
	c->closing = true;
}

static void cmd_auth(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const char *t[2];
	size_t tl[2], pos = 0;
	int n = 0;
	uint8_t cn[AUTH_NONCE], proof[AUTH_PROOF];

	if (!srv->key) {
		out_str(c, "CLIENT_ERROR authentication is not enabled on this node\r\n");
		return;
	}
	while (n < 2 && proto_token(r->args, r->args_len, &pos, &t[n], &tl[n]))
		n++;
	if (!auth_unhex(t[0], tl[0], cn, sizeof(cn)))
		goto fail;
	if (n == 1) {
		memcpy(c->cn, cn, sizeof(cn));
		auth_nonce(c->sn);
		c->nonce_sent = true;
		char hex[2 * AUTH_NONCE + 1];
		auth_hex(c->sn, sizeof(c->sn), hex);
		out_fmt(c, "NONCE %s\r\n", hex);
		return;
	}
	if (!c->nonce_sent || memcmp(cn, c->cn, sizeof(cn)) != 0 ||
	    !auth_unhex(t[1], tl[1], proof, sizeof(proof)) ||
	    !auth_check(srv->key, 'c', c->cn, c->sn, proof))
		goto fail;
	c->authed = true;
	c->nonce_sent = false;
	char hex[2 * AUTH_PROOF + 1];
	auth_proof(srv->key, 's', c->cn, c->sn, proof);
	auth_hex(proof, sizeof(proof), hex);
	out_fmt(c, "OK %s\r\n", hex);
	return;
fail:
	out_str(c, "CLIENT_ERROR authentication failed\r\n");
	c->closing = true;
}

static void emit(void *ctx, const void *p, size_t n)
{
	out_bytes(ctx, p, n);
}

static void execute(struct server *srv, struct conn *c, const struct proto_req *r)
{
	if (srv->key && !c->authed && r->cmd != PROTO_VERSION && r->cmd != PROTO_AUTH &&
	    r->cmd != PROTO_HTTP &&
	    r->cmd != PROTO_QUIT && r->cmd != PROTO_ERROR && r->cmd != PROTO_SWALLOW) {
		out_str(c, "CLIENT_ERROR authenticate first\r\n");
		return;
	}
	switch (r->cmd) {
	case PROTO_GET:
	case PROTO_GETS:
		cmd_get(srv, c, r);
		break;
	case PROTO_SET:
	case PROTO_ADD:
	case PROTO_REPLACE:
		cmd_store(srv, c, r);
		break;
	case PROTO_DELETE:
		cmd_delete(srv, c, r);
		break;
	case PROTO_XSET:
		cmd_xset(srv, c, r);
		break;
	case PROTO_XGET:
		cmd_xget(srv, c, r);
		break;
	case PROTO_XLS: {
		int rc = store_scan(srv->store, r->key, r->key_len, true, xls_line, c);
		if (rc < 0)
			out_error(c, rc);
		else
			out_str(c, "END\r\n");
		break;
	}
	case PROTO_STATS:
		cmd_stats(srv, c, r);
		break;
	case PROTO_HTTP:
		cmd_http(srv, c, r);
		break;
	case PROTO_VERSION:
		out_str(c, "VERSION " SERVER_VERSION "\r\n");
		break;
	case PROTO_VERBOSITY:
		if (!r->noreply)
			out_str(c, "OK\r\n");
		break;
	case PROTO_QUIT:
		c->closing = true;
		break;
	case PROTO_AUTH:
		cmd_auth(srv, c, r);
		break;
	case PROTO_MPUT:
	case PROTO_MEXT:
		if (srv->ext)
			srv->ext(srv->ext_arg, r, emit, c);
		else
			out_str(c, "ERROR\r\n");
		break;
	case PROTO_ERROR:
	case PROTO_SWALLOW:
		atomic_fetch_add(&srv->errors, 1);
		out_fmt(c, "%s\r\n", r->error);
		c->swallow = r->swallow;
		break;
	}
}

/* ---- connections ---- */

static void conn_close(struct loop *l, struct conn *c)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	atomic_fetch_sub(&l->srv->conns, 1);
}

/* Parses and answers every complete request in c->in. */
static void process(struct server *srv, struct conn *c)
{
	size_t pos = 0;

	if (!c->started && c->in_len > 0) {
		c->started = true;
		/* memcache's binary protocol starts with this magic; like memcached,
		 * the first byte decides, and this node speaks only text */
		if ((unsigned char)c->in[0] == 0x80) {
			atomic_fetch_add(&srv->errors, 1);
			out_str(c, "CLIENT_ERROR the binary protocol is not supported\r\n");
			c->closing = true;
			c->in_len = 0;
			return;
		}
	}
	while (pos < c->in_len && !c->closing && !c->oom) {
		if (c->swallow) {
			size_t n = c->in_len - pos < c->swallow ? c->in_len - pos : c->swallow;
			pos += n;
			c->swallow -= n;
			continue;
		}
		if (c->out_len - c->out_pos > OUT_HIGH)
			break; /* the rest waits until the client reads its replies */
		struct proto_req r;
		long used = proto_parse(c->in + pos, c->in_len - pos, &r);
		if (used < 0) {
			atomic_fetch_add(&srv->errors, 1);
			out_str(c, "CLIENT_ERROR line too long\r\n");
			c->closing = true;
			break;
		}
		if (used == 0) {
			c->need = r.need;
			break;
		}
		execute(srv, c, &r);
		pos += (size_t)used;
	}
	if (pos > 0) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
		if (c->in_len == 0)
			c->need = 0;
	}
	if (c->in_len == 0 && c->in_cap > KEEP_IDLE) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* Sends what it can; false when the connection failed. */
static bool flush_out(struct conn *c)
{
	while (c->out_pos < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		c->out_pos += (size_t)w;
	}
	c->out_pos = c->out_len = 0;
	if (c->out_cap > KEEP_IDLE) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return true;
}

/* Reads what is there (a bounded amount per wakeup); false on end or error. */
static bool read_in(struct conn *c)
{
	for (int round = 0; round < 8; round++) {
		if (c->in_len == c->in_cap) {
			if (c->in_cap >= IN_MAX)
				return false; /* cannot happen: the parser bounds a request */
			size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
			if (c->need > cap)
				cap = c->need; /* the whole value at once, not by doublings */
			if (cap > IN_MAX)
				cap = IN_MAX;
			char *b = realloc(c->in, cap);
			if (!b)
				return false;
			c->in = b;
			c->in_cap = cap;
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (r > 0) {
			c->in_len += (size_t)r;
			if (c->in_len < c->in_cap)
				return true;
			continue;
		}
		if (r == 0)
			return false;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN;
	}
	return true;
}

static void conn_event(struct loop *l, struct conn *c, uint32_t ev)
{
	struct server *srv = l->srv;

	if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
		conn_close(l, c);
		return;
	}
	if ((ev & EPOLLIN) && !c->closing) {
		bool open = read_in(c);
		process(srv, c);
		if (!open)
			c->closing = true;
	}
	if (!flush_out(c) || c->oom) {
		conn_close(l, c);
		return;
	}
	/* input left over because the output was full: parse it as output drains */
	if (c->in_len && !c->closing && c->out_len - c->out_pos <= OUT_HIGH) {
		process(srv, c);
		if (!flush_out(c) || c->oom) {
			conn_close(l, c);
			return;
		}
	}
	if (c->closing && c->out_len == c->out_pos) {
		conn_close(l, c);
		return;
	}
	uint32_t want = c->out_len > c->out_pos ? EPOLLOUT : 0;
	if (!c->closing && c->out_len - c->out_pos <= OUT_HIGH)
		want |= EPOLLIN;
	if (want != c->events) {
		struct epoll_event e = { .events = want | EPOLLRDHUP, .data.ptr = c };
		c->events = want;
		epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e);
	}
}

static void accept_all(struct loop *l, int lfd, bool trusted)
{
	struct server *srv = l->srv;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (atomic_load(&srv->conns) >= srv->max_conns) {
			atomic_fetch_add(&srv->rejected_conns, 1);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->events = EPOLLIN;
		/* the control socket is reached only through DATA_DIR's permissions */
		c->authed = srv->key == NULL || trusted;
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = l->conns;
		if (l->conns)
			l->conns->prev = c;
		l->conns = c;
		atomic_fetch_add(&srv->conns, 1);
		atomic_fetch_add(&srv->total_conns, 1);
	}
}

static void *loop_main(void *arg)
{
	struct loop *l = arg;
	struct server *srv = l->srv;
	struct epoll_event ev[64];

	for (;;) {
		int n = epoll_wait(l->ep, ev, 64, -1);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &srv->lfd)
				accept_all(l, srv->lfd, false);
			else if (ev[i].data.ptr == &srv->ufd)
				accept_all(l, srv->ufd, true);
			else if (ev[i].data.ptr == &srv->stopfd)
				goto out;
			else
				conn_event(l, ev[i].data.ptr, ev[i].events);
		}
	}
out:
	return NULL;
}

/* ---- start and stop ---- */

static bool sa_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
	return false;
}

int server_addr_is_loopback(const char *addr)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	int loop = 1;

	if (mc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0 ||
	    getaddrinfo(host, port, &hints, &res) != 0)
		return -EINVAL;
	for (ai = res; ai; ai = ai->ai_next)
		loop &= sa_loopback(ai->ai_addr);
	freeaddrinfo(res);
	return loop;
}

static int bind_listen(const char *addr)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *res;
	int fd, one = 1, rc;

	if (mc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0 ||
	    getaddrinfo(host, port, &hints, &res) != 0) {
		fprintf(stderr, "caskfs: cannot resolve listen address %s\n", addr);
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		freeaddrinfo(res);
		return rc;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		rc = -errno;
		fprintf(stderr, "caskfs: cannot listen on %s: %s\n", addr, strerror(errno));
		freeaddrinfo(res);
		close(fd);
		return rc;
	}
	freeaddrinfo(res);
	return fd;
}

static int bind_unix(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	strcpy(a.sun_path, path);
	/* a socket left by a process that died: DATA_DIR's lock says it is ours now */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	mode_t old = umask(077);
	rc = bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0 ? -errno : 0;
	umask(old);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

int server_start(struct store *s, struct cluster *c, const struct server_options *opt,
		 struct server **out)
{
	struct server *srv;
	int rc, loopback = opt->listen ? server_addr_is_loopback(opt->listen) : 1;

	*out = NULL;
	if (loopback < 0) {
		fprintf(stderr, "caskfs: bad listen address %s (want HOST:PORT)\n", opt->listen);
		return -EINVAL;
	}
	if (!loopback && !opt->key) {
		fprintf(stderr,
			"caskfs: refusing to listen on %s, which is not a loopback address, "
			"without --secret-file\n",
			opt->listen);
		return -EPERM;
	}
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->store = s;
	srv->cluster = c;
	if (opt->key) {
		srv->key_copy = *opt->key;
		srv->key = &srv->key_copy;
	}
	srv->max_conns = opt->max_conns > 0 ? opt->max_conns : 10000;
	srv->ext = opt->ext;
	srv->stats_ext = opt->stats_ext;
	srv->ext_arg = opt->ext_arg;
	srv->nloops = opt->threads > 0 ? opt->threads : 4;
	srv->started = time(NULL);
	srv->stopfd = -1;
	srv->ufd = -1;
	srv->lfd = opt->listen ? bind_listen(opt->listen) : -1;
	if (opt->listen && srv->lfd < 0) {
		rc = srv->lfd;
		free(srv);
		return rc;
	}
	if (opt->control) {
		srv->ufd = bind_unix(opt->control);
		if (srv->ufd < 0)
			fprintf(stderr, "caskfs: no control socket %s: %s\n", opt->control,
				strerror(-srv->ufd));
		else
			snprintf(srv->upath, sizeof(srv->upath), "%s", opt->control);
	}
	srv->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv->loops = calloc((size_t)srv->nloops, sizeof(*srv->loops));
	if (srv->stopfd < 0 || !srv->loops) {
		rc = -ENOMEM;
		goto fail;
	}
	for (int i = 0; i < srv->nloops; i++) {
		struct loop *l = &srv->loops[i];
		l->srv = srv;
		l->ep = epoll_create1(EPOLL_CLOEXEC);
		struct epoll_event le = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &srv->lfd };
		struct epoll_event ue = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &srv->ufd };
		struct epoll_event se = { .events = EPOLLIN, .data.ptr = &srv->stopfd };
		if (l->ep < 0 ||
		    (srv->lfd >= 0 && epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->lfd, &le) < 0) ||
		    (srv->ufd >= 0 && epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->ufd, &ue) < 0) ||
		    epoll_ctl(l->ep, EPOLL_CTL_ADD, srv->stopfd, &se) < 0 ||
		    pthread_create(&l->thread, NULL, loop_main, l) != 0) {
			rc = -errno ? -errno : -EAGAIN;
			if (l->ep >= 0)
				close(l->ep);
			l->ep = -1;
			srv->nloops = i;
			goto fail;
		}
	}
	*out = srv;
	return 0;
fail:
	server_stop(srv);
	return rc;
}

void server_stop(struct server *srv)
{
	if (!srv)
		return;
	uint64_t one = 1;
	if (srv->stopfd >= 0 && write(srv->stopfd, &one, sizeof(one)) < 0)
		fprintf(stderr, "caskfs: cannot signal the server threads: %s\n", strerror(errno));
	for (int i = 0; i < srv->nloops; i++) {
		struct loop *l = &srv->loops[i];
		pthread_join(l->thread, NULL);
		while (l->conns)
			conn_close(l, l->conns);
		close(l->ep);
	}
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->ufd >= 0) {
		close(srv->ufd);
		unlink(srv->upath);
	}
	if (srv->stopfd >= 0)
		close(srv->stopfd);
	free(srv->loops);
	free(srv);
}
