/*
 * command - what each request of the node protocol does, one cmd_ function
 * per command, called in order for the requests of a connection (the meta
 * commands are in metacmd.c). The one idea: plain memcache commands (get,
 * set, delete) go through the quorum client, so any node answers for the
 * whole cluster; conditional and read-modify-write ones (cas, add, append,
 * incr, touch, gat...) are decided by the key's decider (cluster_decide);
 * the stamped extensions (xset, xget, xls, `get ?KEY`, `get @PATH`) act on
 * the local store only and are never forwarded. Every command:
 * docs/PROTOCOL.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_i.h"

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
		      uint32_t flags, bool with_cas, uint64_t cas)
{
	server_out_value(c, key, klen, flags, n, with_cas, cas);
	server_out_bytes(c, val, n);
	server_out_bytes(c, "\r\n", 2);
}

/* ---- commands ---- */

/* One key of get/gets. Returns false when the reply had to stop (error). */
static bool get_one(struct server *srv, struct conn *c, const char *key, size_t klen, bool with_cas)
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
					  "%" PRIu64 " %" PRIu32 " %016" PRIx64 " %" PRIu32
					  " %" PRIu32 " %" PRIu32 " %s",
					  m.version.stamp, m.version.node, m.value_hash, m.size,
					  m.attr.flags, m.attr.expires,
					  m.tombstone ? "tombstone" : "live");
			out_value(c, key, klen, text, (size_t)tl, 0, with_cas, m.version.stamp);
		} else if (rc != -ENOENT) {
			server_out_error(c, rc);
			return false;
		}
		return true;
	}
	if (key[0] == '@') {
		struct server_text t = { 0 };
		rc = tree_text(srv, key + 1, klen - 1, &t);
		if (rc == 0 && !t.oom)
			out_value(c, key, klen, t.p ? t.p : "", t.len, 0, with_cas, 0);
		free(t.p);
		if (rc < 0 || t.oom) {
			server_out_fmt(c, "CLIENT_ERROR bad tree path %.*s\r\n", (int)klen, key);
			return false;
		}
		return true;
	}
	rc = cluster_get(srv->cluster, key, klen, &val, &n, &m);
	if (rc == 0) {
		atomic_fetch_add(&srv->get_hits, 1);
		out_value(c, key, klen, val, n, m.attr.flags, with_cas, m.version.stamp);
		free(val);
		return true;
	}
	if (rc == -ENOENT) {
		atomic_fetch_add(&srv->get_misses, 1);
		return true;
	}
	server_out_error(c, rc);
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
	server_out_str(c, "END\r\n");
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
			server_out_error(c, rc);
			return;
		}
		char attr[32] = "";
		if (!m.tombstone && (m.attr.flags || m.attr.expires))
			snprintf(attr, sizeof(attr), " F%" PRIu32 " E%" PRIu32, m.attr.flags,
				 m.attr.expires);
		server_out_fmt(c, "XVALUE %.*s %" PRIu64 " %" PRIu32 " %zu %016" PRIx64 "%s%s\r\n",
			       (int)kl, k, m.version.stamp, m.version.node, n, m.value_hash,
			       m.tombstone ? " T" : "", attr);
		server_out_bytes(c, val, n);
		server_out_bytes(c, "\r\n", 2);
		free(val);
	}
	server_out_str(c, "END\r\n");
}

static int xls_line(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	struct conn *c = arg;

	server_out_fmt(c, "%.*s %" PRIu64 " %" PRIu32 " %016" PRIx64 "%s\r\n", (int)klen,
		       (const char *)key, m->version.stamp, m->version.node, m->value_hash,
		       m->tombstone ? " T" : "");
	return c->oom ? -ENOMEM : 0;
}

/* The reply of a decided storage command. */
static const char *stored_line(enum cluster_status st)
{
	switch (st) {
	case CLUSTER_DONE:
		return "STORED\r\n";
	case CLUSTER_EXISTS:
		return "EXISTS\r\n";
	case CLUSTER_NOT_FOUND:
		return "NOT_FOUND\r\n";
	default:
		return "NOT_STORED\r\n";
	}
}

/* set, add, replace, append, prepend, cas */
static void cmd_store(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct store_attr attr = { r->flags, server_expires(srv, r->exptime) };
	struct cluster_result res;
	int rc;

	atomic_fetch_add(&srv->cmd_set, 1);
	if (r->cmd == PROTO_SET) {
		rc = cluster_put_attr(srv->cluster, r->key, r->key_len, r->data, r->data_len, &attr,
				      NULL);
		res.status = CLUSTER_DONE;
	} else {
		struct cluster_op op = { .val = r->data,
					 .vlen = r->data_len,
					 .attr = attr,
					 .has_cas = r->has_cas,
					 .cas = r->cas };
		op.mode = r->cmd == PROTO_ADD	    ? CLUSTER_ADD
			  : r->cmd == PROTO_REPLACE ? CLUSTER_REPLACE
			  : r->cmd == PROTO_APPEND  ? CLUSTER_APPEND
			  : r->cmd == PROTO_PREPEND ? CLUSTER_PREPEND
						    : CLUSTER_SET;
		rc = cluster_decide(srv->cluster, r->key, r->key_len, &op, &res);
		free(res.val);
	}
	if (r->noreply)
		return;
	if (rc == -EFBIG)
		server_out_str(c, "SERVER_ERROR object too large for cache\r\n");
	else if (rc < 0)
		server_out_error(c, rc);
	else
		server_out_str(c, stored_line(res.status));
}

static void cmd_incr(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct cluster_op op = { .mode = r->cmd == PROTO_INCR ? CLUSTER_INCR : CLUSTER_DECR,
				 .delta = r->delta };
	struct cluster_result res;
	int rc = cluster_decide(srv->cluster, r->key, r->key_len, &op, &res);

	if (r->noreply)
		return;
	if (rc < 0)
		server_out_error(c, rc);
	else if (res.status == CLUSTER_DONE)
		server_out_fmt(c, "%" PRIu64 "\r\n", res.number);
	else if (res.status == CLUSTER_NOT_NUMERIC)
		server_out_str(c,
			       "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
	else
		server_out_str(c, "NOT_FOUND\r\n");
}

/* touch; gat and gats of one key: *res (its value, for gat) or -errno. With
 * --no-expiry nothing is written: touch only looks, gat only gets. */
static int touch_one(struct server *srv, const char *key, size_t klen, int64_t exptime, bool gat,
		     struct cluster_result *res)
{
	struct cluster_op op = { .mode = gat ? CLUSTER_GAT : CLUSTER_TOUCH,
				 .attr = { 0, server_expires(srv, exptime) } };
	int rc;

	if (!srv->no_expiry)
		return cluster_decide(srv->cluster, key, klen, &op, res);
	memset(res, 0, sizeof(*res));
	rc = gat ? cluster_get(srv->cluster, key, klen, &res->val, &res->vlen, &res->meta)
		 : cluster_stat(srv->cluster, key, klen, &res->meta);
	res->status = rc == 0 ? CLUSTER_DONE : CLUSTER_NOT_FOUND;
	return rc == -ENOENT ? 0 : rc;
}

static void cmd_touch(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct cluster_result res;
	int rc = touch_one(srv, r->key, r->key_len, r->exptime, false, &res);

	if (r->noreply)
		return;
	if (rc < 0)
		server_out_error(c, rc);
	else
		server_out_str(c, res.status == CLUSTER_DONE ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
}

static void cmd_gat(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const char *k;
	size_t kl, pos = 0;

	while (proto_token(r->args, r->args_len, &pos, &k, &kl)) {
		struct cluster_result res;
		int rc = touch_one(srv, k, kl, r->exptime, true, &res);

		atomic_fetch_add(&srv->cmd_get, 1);
		if (rc < 0) {
			server_out_error(c, rc);
			return;
		}
		if (res.status == CLUSTER_DONE) {
			atomic_fetch_add(&srv->get_hits, 1);
			out_value(c, k, kl, res.val, res.vlen, res.meta.attr.flags,
				  r->cmd == PROTO_GATS, res.meta.version.stamp);
		} else {
			atomic_fetch_add(&srv->get_misses, 1);
		}
		free(res.val);
	}
	server_out_str(c, "END\r\n");
}

static void cmd_flush_all(struct server *srv, struct conn *c, const struct proto_req *r)
{
	uint64_t deleted = 0;
	int rc;

	if (!srv->allow_flush) {
		server_out_status(c, r, "CLIENT_ERROR flush_all not allowed\r\n");
		return;
	}
	if (r->exptime > 0) {
		server_out_status(c, r, "CLIENT_ERROR flush_all with a delay is not supported\r\n");
		return;
	}
	rc = cluster_flush(srv->cluster, &deleted);
	fprintf(stderr, "caskfs: flush_all: %" PRIu64 " keys deleted%s%s\n", deleted,
		rc < 0 ? ", then: " : "", rc < 0 ? strerror(-rc) : "");
	if (r->noreply)
		return;
	if (rc < 0)
		server_out_error(c, rc);
	else
		server_out_str(c, "OK\r\n");
}

/* xop: a decided operation forwarded by a node that is not its decider. */
static void cmd_xop(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct cluster_op op = { .val = r->data,
				 .vlen = r->data_len,
				 .attr = { r->flags, r->expires },
				 .has_cas = r->has_cas,
				 .cas = r->cas,
				 .delta = r->delta };
	struct cluster_result res;
	int rc = cluster_mode_parse(r->mode, r->mode_len, &op.mode);

	if (rc < 0) {
		server_out_str(c, "CLIENT_ERROR unknown xop mode\r\n");
		return;
	}
	rc = cluster_decide_local(srv->cluster, r->key, r->key_len, &op, &res);
	if (rc < 0) {
		server_out_fmt(c, "XERR %d\r\n", -rc);
		return;
	}
	server_out_fmt(c,
		       "XOP %s %" PRIu64 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu32 " %" PRIu64
		       " %zu\r\n",
		       cluster_status_name(res.status), res.meta.version.stamp,
		       res.meta.version.node, res.meta.attr.flags, res.meta.attr.expires,
		       res.meta.size, res.number, res.vlen);
	server_out_bytes(c, res.val, res.vlen);
	server_out_bytes(c, "\r\n", 2);
	free(res.val);
}

static void cmd_xset(struct server *srv, struct conn *c, const struct proto_req *r)
{
	struct store_version v = { r->stamp, r->node };
	struct store_attr attr = { r->flags, r->expires };
	int rc = store_apply_attr(srv->store, r->key, r->key_len, r->tombstone ? NULL : r->data,
				  r->tombstone ? 0 : r->data_len, &v, r->tombstone, &attr);

	if (r->noreply)
		return;
	if (rc < 0)
		server_out_error(c, rc);
	else
		server_out_str(c, rc == STORE_STALE ? "NOT_STORED\r\n" : "STORED\r\n");
}

static void cmd_delete(struct server *srv, struct conn *c, const struct proto_req *r)
{
	int rc = cluster_delete(srv->cluster, r->key, r->key_len);

	atomic_fetch_add(&srv->cmd_delete, 1);
	if (r->noreply)
		return;
	if (rc == 0)
		server_out_str(c, "DELETED\r\n");
	else if (rc == -ENOENT)
		server_out_str(c, "NOT_FOUND\r\n");
	else
		server_out_error(c, rc);
}
static void cmd_auth(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const char *t[2];
	size_t tl[2], pos = 0;
	int n = 0;
	uint8_t cn[AUTH_NONCE], proof[AUTH_PROOF];

	if (!srv->key) {
		server_out_str(c, "CLIENT_ERROR authentication is not enabled on this node\r\n");
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
		server_out_fmt(c, "NONCE %s\r\n", hex);
		return;
	}
	if (!c->nonce_sent || memcmp(cn, c->cn, sizeof(cn)) != 0 ||
	    !auth_unhex(t[1], tl[1], proof, sizeof(proof)) ||
	    !auth_check(srv->key, 'c', c->cn, c->sn, proof))
		goto fail;
	c->authed = true;
	c->nonce_sent = false;
	/* without TLS, everything after this answer is sealed (seal.h) */
	c->seal_next = !c->tls;
	char hex[2 * AUTH_PROOF + 1];
	auth_proof(srv->key, 's', c->cn, c->sn, proof);
	auth_hex(proof, sizeof(proof), hex);
	server_out_fmt(c, "OK %s\r\n", hex);
	return;
fail:
	server_out_str(c, "CLIENT_ERROR authentication failed\r\n");
	c->closing = true;
}

void server_execute(struct server *srv, struct conn *c, const struct proto_req *r)
{
	if (srv->key && !c->authed && r->cmd != PROTO_VERSION && r->cmd != PROTO_AUTH &&
	    r->cmd != PROTO_HTTP && r->cmd != PROTO_QUIT && r->cmd != PROTO_ERROR &&
	    r->cmd != PROTO_SWALLOW) {
		server_out_str(c, "CLIENT_ERROR authenticate first\r\n");
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
	case PROTO_APPEND:
	case PROTO_PREPEND:
	case PROTO_CAS:
		cmd_store(srv, c, r);
		break;
	case PROTO_INCR:
	case PROTO_DECR:
		cmd_incr(srv, c, r);
		break;
	case PROTO_TOUCH:
		cmd_touch(srv, c, r);
		break;
	case PROTO_GAT:
	case PROTO_GATS:
		cmd_gat(srv, c, r);
		break;
	case PROTO_FLUSH_ALL:
		cmd_flush_all(srv, c, r);
		break;
	case PROTO_MG:
		server_cmd_mg(srv, c, r);
		break;
	case PROTO_MS:
		server_cmd_ms(srv, c, r);
		break;
	case PROTO_MD:
		server_cmd_md(srv, c, r);
		break;
	case PROTO_MN:
		server_out_str(c, "MN\r\n");
		break;
	case PROTO_XOP:
		cmd_xop(srv, c, r);
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
			server_out_error(c, rc);
		else
			server_out_str(c, "END\r\n");
		break;
	}
	case PROTO_STATS:
		server_cmd_stats(srv, c, r);
		break;
	case PROTO_HTTP:
		server_cmd_http(srv, c, r);
		break;
	case PROTO_VERSION:
		server_out_str(c, "VERSION " SERVER_VERSION "\r\n");
		break;
	case PROTO_VERBOSITY:
		if (!r->noreply)
			server_out_str(c, "OK\r\n");
		break;
	case PROTO_QUIT:
		c->closing = true;
		break;
	case PROTO_AUTH:
		cmd_auth(srv, c, r);
		break;
	case PROTO_XMAP:
		server_cmd_xmap(srv, c, r);
		break;
	case PROTO_PTREE:
		server_cmd_ptree(srv, c, r);
		break;
	case PROTO_MPUT:
	case PROTO_MEXT:
		if (srv->ext)
			srv->ext(srv->ext_arg, r, server_emit, c);
		else
			server_out_str(c, "ERROR\r\n");
		break;
	case PROTO_ERROR:
	case PROTO_SWALLOW:
		atomic_fetch_add(&srv->errors, 1);
		server_out_fmt(c, "%s\r\n", r->error);
		c->swallow = r->swallow;
		break;
	}
}
