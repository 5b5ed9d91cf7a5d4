/*
 * metrics - the node's numbers: `stats` (memcache's STAT lines, plus
 * `stats segments` and `stats peers`) and GET /metrics (the same numbers as
 * Prometheus text). The one idea: both are drawn from one table, collect(),
 * so a number added there shows in both. docs/PROTOCOL.md ("stats").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server_i.h"

#define STAT_MAX 96 /* numbers collect() may give */

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
#define NUM(nm, val, hp, ctr)                                                                      \
	if (n < cap)                                                                               \
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
	NUM("tls_handshakes", atomic_load(&srv->tls_handshakes), "TLS handshakes completed", true);
	NUM("tls_handshake_failures", atomic_load(&srv->tls_failures),
	    "TLS handshakes that failed (plaintext, garbage, a certificate refused)", true);
	NUM("tls_handshakes_dropped", atomic_load(&srv->tls_dropped),
	    "TLS handshakes dropped unfinished (timeout, or too many at once)", true);
	NUM("curr_items", s.keys, "live objects in the local store", false);
	NUM("bytes", s.live_bytes, "bytes of the newest records in the local store", false);
	NUM("threads", srv->nloops, NULL, false);
	NUM("caskfs_node_id", s.node_id, "this node's id", false);
	NUM("caskfs_tombstones", s.tombstones, "deleted keys kept as tombstones", false);
	NUM("caskfs_expiring", s.expiring, "live objects with an expiry time", false);
	NUM("caskfs_expired", s.expired, "objects replaced by their expiry tombstone", true);
	NUM("caskfs_disk_bytes", s.disk_bytes, "bytes of all log segments", false);
	NUM("caskfs_segments", s.segments, "log segment files", false);
	NUM("caskfs_keydir_bytes", s.keydir_bytes, "memory held by the in-memory index", false);
	NUM("caskfs_read_bytes", s.read_bytes, "value bytes read from the local log", true);
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
	NUM("caskfs_decided", cs.decided, "conditional operations decided here", true);
	NUM("caskfs_forwarded", cs.forwarded, "conditional operations sent to their decider", true);
	NUM("caskfs_read_repair_bytes", cs.read_repair_bytes,
	    "value bytes of the copies put back by reads", true);
	NUM("caskfs_hints_pending", cs.hints_pending, "hinted-handoff records waiting", false);
	NUM("caskfs_hint_bytes_pending", cs.hint_bytes_pending, "bytes of hints waiting", false);
	NUM("caskfs_hints_queued", cs.hints_queued, "hints written", true);
	NUM("caskfs_hints_replayed", cs.hints_replayed, "hints delivered", true);
	NUM("caskfs_hints_redirected", cs.hints_redirected, "hints handed to a bucket's new owners",
	    true);
	NUM("caskfs_map_epoch", cs.epoch, "epoch of the cluster map in force", false);
	NUM("caskfs_map_settled", cs.settled, "1 when no bucket is moving", false);
	NUM("caskfs_map_prev_nodes", cs.prev_nodes, "nodes of the last settled map", false);
	NUM("caskfs_done_epoch", cs.done_epoch, "this node holds what maps up to it gave it",
	    false);
	NUM("caskfs_rebalance_sources", cs.progress.sources, "nodes to take gained buckets from",
	    false);
	NUM("caskfs_rebalance_sources_done", cs.progress.sources_done,
	    "nodes taken gained buckets from", false);
	NUM("caskfs_rebalance_objects_in", cs.progress.objects_in, "objects taken by rebalancing",
	    true);
	NUM("caskfs_rebalance_bytes_in", cs.progress.bytes_in, "value bytes taken by rebalancing",
	    true);
	NUM("caskfs_rebalance_objects_out", cs.progress.objects_out,
	    "objects handed to owners before letting go", true);
	NUM("caskfs_rebalance_bytes_out", cs.progress.bytes_out,
	    "value bytes handed to owners before letting go", true);
	NUM("caskfs_rebalance_dropped", cs.progress.objects_dropped,
	    "objects let go of (other nodes own them)", true);
	NUM("caskfs_rebalance_to_drop", cs.progress.buckets_to_drop,
	    "buckets held here that other nodes own", false);
	NUM("caskfs_rebalance_clean_epoch", cs.progress.clean_epoch,
	    "map epoch as of which this node holds nothing it does not own", false);
	struct store_scrub_stats sc;
	store_scrub_stats(srv->store, &sc);
	NUM("caskfs_scrub_enabled", sc.enabled, "whether the scrubber runs (1)", false);
	NUM("caskfs_scrub_running", sc.running, "whether a scrub pass is under way (1)", false);
	NUM("caskfs_scrub_paused", sc.paused, "whether the scrubber waits for less load (1)",
	    false);
	NUM("caskfs_scrub_rate", sc.rate, "scrubber's limit, bytes a second", false);
	NUM("caskfs_scrub_passes", sc.passes, "scrub passes completed", true);
	NUM("caskfs_scrub_segment", sc.segment, "segment the scrub pass is in", false);
	NUM("caskfs_scrub_pass_bytes", sc.pass_bytes, "bytes read by this scrub pass", false);
	NUM("caskfs_scrub_pass_total", sc.pass_total, "bytes this scrub pass reads in all", false);
	NUM("caskfs_scrub_bytes", sc.bytes, "bytes read by the scrubber", true);
	NUM("caskfs_scrub_records", sc.records, "records checked by the scrubber", true);
	NUM("caskfs_scrub_damaged", sc.damaged, "damaged records the scrubber found", true);
	NUM("caskfs_scrub_repaired", sc.repaired, "damaged records repaired from a peer", true);
	NUM("caskfs_scrub_unrepaired", sc.unrepaired, "damaged records no peer could repair",
	    true);
	NUM("caskfs_scrub_stale", sc.stale, "damaged records that were garbage already", true);
	NUM("caskfs_scrub_last_pass_end", sc.last_pass_end_ms / 1000,
	    "when the last scrub pass ended (unix seconds)", false);
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
		n = snprintf(
		    line, sizeof(line),
		    "caskfs_peer_up{peer=\"%s\"} %d\ncaskfs_peer_hints{peer=\"%s\"} %" PRIu64 "\n",
		    addr, up ? 1 : 0, addr, hints);
	else
		n = snprintf(line, sizeof(line), "STAT peer:%s %s %" PRIu64 "\r\n", addr,
			     up ? "up" : "down", hints);
	pl->emit(pl->ctx, line, (size_t)n);
}

static int segment_line(void *arg, const struct store_segment_info *seg)
{
	char line[160];
	int n =
	    snprintf(line, sizeof(line), "STAT segment:%06u %" PRIu64 " %" PRIu64 " %s\r\n",
		     seg->id, seg->disk_bytes, seg->live_bytes, seg->sealed ? "sealed" : "active");
	server_out_bytes(arg, line, (size_t)n);
	return 0;
}

/* stats [segments|peers] */
void server_cmd_stats(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct stat_num v[STAT_MAX];
	const char *arg = "";
	size_t alen = 0, pos = 0;

	proto_token(r->args, r->args_len, &pos, &arg, &alen);
	if (alen == 8 && memcmp(arg, "segments", 8) == 0) {
		store_segments(srv->store, segment_line, c);
	} else if (alen == 5 && memcmp(arg, "scrub", 5) == 0) {
		/* stats scrub [now]: the scrubber's numbers, after starting a pass */
		const char *now = "";
		size_t nlen = 0;
		proto_token(r->args, r->args_len, &pos, &now, &nlen);
		if (nlen == 3 && memcmp(now, "now", 3) == 0 && store_scrub_now(srv->store) < 0) {
			server_out_str(c, "SERVER_ERROR this node runs no scrubber\r\n");
			return;
		}
		size_t n = collect(srv, v, STAT_MAX);
		for (size_t i = 0; i < n; i++)
			if (strncmp(v[i].name, "caskfs_scrub_", 13) == 0)
				server_out_fmt(c, "STAT %s %" PRIu64 "\r\n", v[i].name, v[i].value);
	} else if (alen == 5 && memcmp(arg, "peers", 5) == 0) {
		struct peer_line pl = { server_emit, c, false };
		cluster_peers(srv->cluster, peer_line, &pl);
	} else if (alen == 0) {
		size_t n = collect(srv, v, STAT_MAX);
		struct store_stats s;
		store_stats(srv->store, &s);
		server_out_fmt(c, "STAT pid %d\r\nSTAT time %lld\r\n", (int)getpid(),
			       (long long)time(NULL));
		server_out_fmt(c, "STAT version %s\r\nSTAT pointer_size %d\r\n", SERVER_VERSION,
			       (int)(8 * sizeof(void *)));
		for (size_t i = 0; i < n; i++)
			server_out_fmt(c, "STAT %s %" PRIu64 "\r\n", v[i].name, v[i].value);
		server_out_fmt(c, "STAT caskfs_tree_root %016" PRIx64 "\r\n", s.tree_root);
		if (srv->stats_ext)
			srv->stats_ext(srv->ext_arg, false, server_emit, c);
	} else {
		server_out_str(c, "CLIENT_ERROR unknown stats group\r\n");
		return;
	}
	server_out_str(c, "END\r\n");
}

/* GET /metrics: the same numbers as Prometheus text, then the connection closes. */
void server_cmd_http(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct stat_num v[STAT_MAX];
	size_t n = collect(srv, v, STAT_MAX);
	struct conn body = { 0 };

	if (!(r->key_len == 8 && memcmp(r->key, "/metrics", 8) == 0)) {
		server_out_str(c, "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
				  "Connection: close\r\n\r\nonly /metrics is served here\n");
		c->closing = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (!v[i].help)
			continue;
		const char *pre = strncmp(v[i].name, "caskfs_", 7) == 0 ? "" : "caskfs_";
		server_out_fmt(&body, "# HELP %s%s%s %s\n# TYPE %s%s%s %s\n%s%s%s %" PRIu64 "\n",
			       pre, v[i].name, v[i].counter ? "_total" : "", v[i].help, pre,
			       v[i].name, v[i].counter ? "_total" : "",
			       v[i].counter ? "counter" : "gauge", pre, v[i].name,
			       v[i].counter ? "_total" : "", v[i].value);
	}
	struct peer_line pl = { server_emit, &body, true };
	server_out_str(&body, "# HELP caskfs_peer_up whether a peer answers (1) or not (0)\n"
			      "# TYPE caskfs_peer_up gauge\n");
	cluster_peers(srv->cluster, peer_line, &pl);
	if (srv->stats_ext)
		srv->stats_ext(srv->ext_arg, true, server_emit, &body);
	server_out_fmt(c,
		       "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		       "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		       body.out_len);
	server_out_bytes(c, body.out, body.out_len);
	c->oom |= body.oom;
	free(body.out);
	c->closing = true;
}
