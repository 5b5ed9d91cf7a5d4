/*
 * cmd_cluster - the node's answers about the cluster map (xmap: gossip,
 * `caskfs cluster`) and about its store's hash tree restricted to a set of
 * buckets (ptree: anti-entropy and rebalancing between two nodes, over the
 * buckets both own or one hands the other). The one idea: a ptree query
 * names its set by the map's digest and a pair of nodes, never by listing
 * buckets, and a node whose map differs says so instead of answering over
 * another set. docs/PROTOCOL.md ("xmap", "ptree").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmap.h"
#include "server_i.h"

void server_cmd_xmap(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct cmap *m = malloc(sizeof(*m));
	uint8_t *enc = malloc(CMAP_WIRE_MAX);
	struct store_stats st;
	uint64_t done;

	if (!m || !enc) {
		server_out_error(c, -ENOMEM);
		goto out;
	}
	if (r->data) {
		if (cmap_decode(r->data, r->data_len, m) < 0) {
			server_out_str(c, "CLIENT_ERROR bad cluster map\r\n");
			goto out;
		}
		if (cluster_map_offer(srv->cluster, m) == -EXDEV) {
			server_out_str(c, "SERVER_ERROR another cluster (the map's cluster id "
					  "differs)\r\n");
			goto out;
		}
	}
	cluster_map_get(srv->cluster, m, &done);
	size_t len = cmap_encode(m, enc, CMAP_WIRE_MAX);
	const char *self = cluster_self(srv->cluster);
	store_stats(srv->store, &st);
	server_out_fmt(c, "MAP %s %" PRIu32 " %" PRIu64 " %d %zu\r\n", self[0] ? self : "-",
		       st.node_id, done, cluster_replicas(srv->cluster), len);
	server_out_bytes(c, enc, len);
	server_out_str(c, "\r\nEND\r\n");
out:
	free(m);
	free(enc);
}

static int bucket_line(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	server_text_fmt(arg, "%.*s %" PRIu64 " %" PRIu32 " %016" PRIx64 "%s\n", (int)klen,
			(const char *)key, m->version.stamp, m->version.node, m->value_hash,
			m->tombstone ? " T" : "");
	return 0;
}

/* The tree text of ptree; 0, -EINVAL (a bad path), or an error of the store. */
static int tree_text(struct server *srv, const struct cluster_bucket_set *set, const char *path,
		     size_t n, struct server_text *t)
{
	uint8_t nib[STORE_TREE_DEPTH];
	struct store_tree_node self, kids[16];
	uint32_t leaf = 0;

	if (proto_tree_path(path, n, nib, STORE_TREE_DEPTH) < 0)
		return -EINVAL;
	if (n < STORE_TREE_DEPTH) {
		int rc = store_tree_children_in(srv->store, nib, (int)n, set->bits, &self, kids);
		if (rc == 0)
			server_text_tree_node(t, &self, kids);
		return rc;
	}
	for (size_t i = 0; i < n; i++)
		leaf = leaf << 4 | nib[i];
	if (!(set->bits[leaf >> 6] >> (leaf & 63) & 1))
		return 0; /* not in the set: no records */
	return store_tree_bucket(srv->store, nib, bucket_line, t);
}

void server_cmd_ptree(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const char *t[6];
	size_t tl[6], pos = 0;
	int n = 0;
	char peer[CMAP_ADDR_MAX + 1], hex[17];
	uint64_t want, digest;
	unsigned long nrep;
	char *end;

	while (n < 6 && proto_token(r->args, r->args_len, &pos, &t[n], &tl[n]))
		n++;
	enum cluster_set_kind kind = n >= 4 ? cluster_set_kind_parse(t[2], tl[2]) : 0;
	if (n < 4 || n > 5 || tl[0] != 16 || !kind || tl[3] > CMAP_ADDR_MAX || tl[1] > 3) {
		server_out_str(c, "CLIENT_ERROR bad command line format\r\n");
		return;
	}
	memcpy(hex, t[0], 16);
	hex[16] = 0;
	want = strtoull(hex, &end, 16);
	char nb[4];
	memcpy(nb, t[1], tl[1]);
	nb[tl[1]] = 0;
	nrep = strtoul(nb, NULL, 10);
	if (*end) {
		server_out_str(c, "CLIENT_ERROR bad command line format\r\n");
		return;
	}
	memcpy(peer, t[3], tl[3]);
	peer[tl[3]] = 0;
	struct cluster_bucket_set *set = malloc(sizeof(*set));
	if (!set) {
		server_out_error(c, -ENOMEM);
		return;
	}
	int rc = cluster_bucket_set(srv->cluster, kind, peer, set, &digest);
	if (rc == -ENOENT) {
		server_out_fmt(c, "SERVER_ERROR %s is not in this node's cluster map\r\n", peer);
	} else if (rc < 0) {
		server_out_error(c, rc);
	} else if (digest != want || nrep != (unsigned long)cluster_replicas(srv->cluster)) {
		server_out_str(c, "SERVER_ERROR map differs\r\n");
	} else {
		struct server_text text = { 0 };
		const char *path = n == 5 ? t[4] : "";
		size_t plen = n == 5 ? tl[4] : 0;
		rc = tree_text(srv, set, path, plen, &text);
		if (rc < 0 || text.oom) {
			server_out_fmt(c, "CLIENT_ERROR bad tree path %.*s\r\n", (int)plen, path);
		} else {
			server_out_fmt(c, "VALUE @%.*s 0 %zu\r\n", (int)plen, path, text.len);
			server_out_bytes(c, text.p ? text.p : "", text.len);
			server_out_str(c, "\r\nEND\r\n");
		}
		free(text.p);
	}
	free(set);
}
