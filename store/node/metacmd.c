/*
 * metacmd - memcached's meta commands mg, ms and md (protocol.txt of
 * memcached 1.6, "Meta Commands"), with the flags docs/PROTOCOL.md lists:
 * each is the classic command it stands for (get, set, cas, add, append,
 * touch, delete...), reached through the same quorum client or decider, and
 * answered with two-letter codes and the return flags in the order asked.
 * The one idea: q leaves out only the reply that means "as expected" (EN
 * for mg, HD for ms and md); errors are always sent.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_i.h"

/* Appends the return flags asked for (m->ret, in order) that apply to the
 * reply: c, f, s and t only when the object is there (hit), k and O always. */
static void ret_flags(struct conn *c, const struct proto_req *r, const char *allowed, bool hit,
		      const struct store_meta *m, size_t size)
{
	const struct proto_meta *mf = &r->meta;

	for (int i = 0; i < mf->nret; i++) {
		char f = mf->ret[i];
		if (!strchr(allowed, f))
			continue;
		if (f == 'k')
			server_out_fmt(c, " k%.*s", (int)r->key_len, r->key);
		else if (f == 'O')
			server_out_fmt(c, " O%.*s", (int)mf->opaque_len, mf->opaque);
		else if (f == 'c')
			server_out_fmt(c, " c%" PRIu64, hit ? m->version.stamp : 0);
		else if (!hit)
			continue;
		else if (f == 'f')
			server_out_fmt(c, " f%" PRIu32, m->attr.flags);
		else if (f == 's')
			server_out_fmt(c, " s%zu", size);
		else if (f == 't') {
			int64_t left = m->attr.expires ? (int64_t)m->attr.expires - time(NULL) : -1;
			server_out_fmt(c, " t%" PRId64, left < -1 ? 0 : left);
		}
	}
	server_out_str(c, "\r\n");
}

void server_cmd_mg(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const struct proto_meta *mf = &r->meta;
	struct store_meta m;
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	atomic_fetch_add(&srv->cmd_get, 1);
	if (mf->has_ttl && !srv->no_expiry) {
		/* T: a gat, decided like touch */
		struct cluster_op op = { .mode = CLUSTER_GAT,
					 .attr = { 0, server_expires(srv, mf->ttl) } };
		struct cluster_result res;
		struct store_meta before = { 0 };
		/* flags act in the order given (memcached): "t T30" reports the
		 * TTL the object had */
		if (mf->t_first && cluster_stat(srv->cluster, r->key, r->key_len, &before) < 0)
			before.attr.expires = 0;
		rc = cluster_decide(srv->cluster, r->key, r->key_len, &op, &res);
		if (rc == 0 && res.status != CLUSTER_DONE)
			rc = -ENOENT;
		m = res.meta;
		if (mf->t_first)
			m.attr.expires = before.attr.expires;
		val = res.val;
		vlen = res.vlen;
	} else if (mf->value) {
		rc = cluster_get(srv->cluster, r->key, r->key_len, &val, &vlen, &m);
	} else {
		rc = cluster_stat(srv->cluster, r->key, r->key_len, &m);
		vlen = m.size;
	}
	if (rc == -ENOENT) {
		atomic_fetch_add(&srv->get_misses, 1);
		if (!mf->quiet) {
			server_out_str(c, "EN");
			ret_flags(c, r, "kO", false, &m, 0);
		}
	} else if (rc < 0) {
		server_out_error(c, rc);
	} else {
		atomic_fetch_add(&srv->get_hits, 1);
		if (mf->value)
			server_out_fmt(c, "VA %zu", vlen);
		else
			server_out_str(c, "HD");
		ret_flags(c, r, "cfksOt", true, &m, vlen);
		if (mf->value) {
			server_out_bytes(c, val, vlen);
			server_out_bytes(c, "\r\n", 2);
		}
	}
	free(val);
}

void server_cmd_ms(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const struct proto_meta *mf = &r->meta;
	struct store_attr attr = { mf->flags, mf->has_ttl ? server_expires(srv, mf->ttl) : 0 };
	struct cluster_result res = { 0 };
	int rc;

	atomic_fetch_add(&srv->cmd_set, 1);
	if (mf->mode == 'S' && !mf->has_cas) {
		rc = cluster_put_attr(srv->cluster, r->key, r->key_len, r->data, r->data_len, &attr,
				      &res.meta);
		res.status = CLUSTER_DONE;
	} else {
		struct cluster_op op = { .val = r->data,
					 .vlen = r->data_len,
					 .attr = attr,
					 .has_cas = mf->has_cas,
					 .cas = mf->cas };
		op.mode = mf->mode == 'E'   ? CLUSTER_ADD
			  : mf->mode == 'A' ? CLUSTER_APPEND
			  : mf->mode == 'P' ? CLUSTER_PREPEND
			  : mf->mode == 'R' ? CLUSTER_REPLACE
					    : CLUSTER_SET;
		rc = cluster_decide(srv->cluster, r->key, r->key_len, &op, &res);
		free(res.val);
	}
	if (rc == -EFBIG) {
		server_out_str(c, "SERVER_ERROR object too large for cache\r\n");
		return;
	}
	if (rc < 0) {
		server_out_error(c, rc);
		return;
	}
	static const char *const code[] = { [CLUSTER_DONE] = "HD",
					    [CLUSTER_NOT_STORED] = "NS",
					    [CLUSTER_EXISTS] = "EX",
					    [CLUSTER_NOT_FOUND] = "NF",
					    [CLUSTER_NOT_NUMERIC] = "NS" };
	if (res.status == CLUSTER_DONE && mf->quiet)
		return;
	server_out_str(c, code[res.status]);
	ret_flags(c, r, "kOc", res.status == CLUSTER_DONE, &res.meta, 0);
}

void server_cmd_md(struct server *srv, struct conn *c, const struct proto_req *r)
{
	const struct proto_meta *mf = &r->meta;
	const char *code;
	int rc;

	atomic_fetch_add(&srv->cmd_delete, 1);
	if (mf->has_cas) {
		struct cluster_op op = { .mode = CLUSTER_DELETE, .has_cas = true, .cas = mf->cas };
		struct cluster_result res;
		rc = cluster_decide(srv->cluster, r->key, r->key_len, &op, &res);
		code = res.status == CLUSTER_DONE     ? "HD"
		       : res.status == CLUSTER_EXISTS ? "EX"
						      : "NF";
	} else {
		rc = cluster_delete(srv->cluster, r->key, r->key_len);
		code = rc == 0 ? "HD" : "NF";
		if (rc == -ENOENT)
			rc = 0;
	}
	if (rc < 0) {
		server_out_error(c, rc);
		return;
	}
	if (code[0] == 'H' && mf->quiet)
		return;
	server_out_str(c, code);
	ret_flags(c, r, "kO", false, NULL, 0);
}
