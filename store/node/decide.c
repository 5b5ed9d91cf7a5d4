/*
 * decide - conditional and read-modify-write operations (cas, add, replace,
 * append, prepend, incr, decr, touch, gat, and the meta commands' variants)
 * over the key's replicas (cluster.h, cluster_decide). The one idea: each key
 * has one decider, the first owner of its bucket in the view in force that is this
 * node or believed up; every other node forwards the operation to it (xop),
 * and it holds the key's lock from reading the newest copy on the replicas
 * to the quorum's acknowledgement of the result, so two racing operations
 * are decided one after the other and the second sees the first.
 * Protocol: docs/PROTOCOL.md ("Decided operations", `xop`).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"
#include "proto.h"
#include "../xxh_i.h"

static const char *const mode_names[] = {
	[CLUSTER_SET] = "set",	     [CLUSTER_ADD] = "add",	    [CLUSTER_REPLACE] = "replace",
	[CLUSTER_APPEND] = "append", [CLUSTER_PREPEND] = "prepend", [CLUSTER_INCR] = "incr",
	[CLUSTER_DECR] = "decr",     [CLUSTER_TOUCH] = "touch",	    [CLUSTER_GAT] = "gat",
	[CLUSTER_DELETE] = "delete",
};
#define NMODES (sizeof(mode_names) / sizeof(mode_names[0]))

static const char *const status_names[] = {
	[CLUSTER_DONE] = "DONE",
	[CLUSTER_NOT_STORED] = "NOT_STORED",
	[CLUSTER_EXISTS] = "EXISTS",
	[CLUSTER_NOT_FOUND] = "NOT_FOUND",
	[CLUSTER_NOT_NUMERIC] = "NOT_NUMERIC",
};
#define NSTATUS (sizeof(status_names) / sizeof(status_names[0]))

const char *cluster_mode_name(enum cluster_mode mode)
{
	return (unsigned)mode < NMODES ? mode_names[mode] : "?";
}

int cluster_mode_parse(const char *word, size_t len, enum cluster_mode *mode)
{
	for (size_t i = 0; i < NMODES; i++) {
		if (strlen(mode_names[i]) == len && memcmp(mode_names[i], word, len) == 0) {
			*mode = (enum cluster_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

static bool needs_value(enum cluster_mode mode)
{
	return mode == CLUSTER_APPEND || mode == CLUSTER_PREPEND || mode == CLUSTER_INCR ||
	       mode == CLUSTER_DECR || mode == CLUSTER_TOUCH || mode == CLUSTER_GAT;
}

/*
 * The newest record of key on the replicas that answer (this node's own
 * copy among them when it is one). *live tells a value from a tombstone or
 * nothing; *val (when val) holds the value, malloc'd. -EIO when no replica
 * answered.
 */
static int read_newest(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		       struct store_meta *m, bool *live)
{
	struct cluster_view *view = cluster_view_get(c);
	uint32_t b = cluster_bucket(key, klen);
	int reps[CLUSTER_MAX_NODES], order[2 * CLUSTER_MAX_NODES], count = 0;
	int answered = 0;
	bool have = false;

	/* the owners (this node first), then, while the bucket moves, its
	 * previous owners that are no owners now */
	cluster_view_owners(view, b, reps);
	for (int k = 0; k < view->n; k++)
		if (c->peers[reps[k]].self)
			order[count++] = reps[k];
	for (int k = 0; k < view->n; k++)
		if (!c->peers[reps[k]].self)
			order[count++] = reps[k];
	if (view->prev_owners) {
		const uint8_t *o = view->prev_owners + (size_t)b * (size_t)view->pn;
		for (int k = 0; k < view->pn; k++) {
			int slot = view->prev[o[k]];
			if (!cluster_view_owns(view, b, slot, false))
				order[count++] = slot;
		}
	}

	memset(m, 0, sizeof(*m));
	*live = false;
	for (int k = 0; k < count; k++) {
		struct store_meta pm;
		void *v = NULL;
		size_t n = 0;
		int rc = cluster_fetch(c, &c->peers[order[k]], key, klen, val ? &v : NULL, &n, &pm);

		if (rc == 0 || rc == -ENOENT || rc == -EBADMSG)
			answered++;
		if ((rc == 0 || (rc == -ENOENT && pm.tombstone)) &&
		    (!have || store_version_cmp(&pm.version, &m->version) > 0)) {
			if (val) {
				free(*val);
				*val = v;
				*vlen = n;
				v = NULL;
			}
			*m = pm;
			*live = rc == 0;
			have = true;
		}
		free(v);
	}
	cluster_view_put(c, view);
	return answered ? 0 : -EIO;
}

/* The decimal number a value holds (memcached's rule: spaces around it are
 * allowed); false when it holds anything else or 2^64 or more. */
static bool value_number(const char *p, size_t n, uint64_t *out)
{
	size_t i = 0, digits = 0;
	uint64_t v = 0;
	bool minus = false;

	/* As memcached's safe_strtoull() on the stored bytes (followed there by
	 * "\r\n"): strtoull's leading white space and sign, then the end or a
	 * white space character (what follows it is not looked at); a minus
	 * sign only where the result stays below 2^63. */
	while (i < n && strchr(" \t\n\v\f\r", p[i]) && p[i])
		i++;
	if (i < n && (p[i] == '+' || p[i] == '-'))
		minus = p[i++] == '-';
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, digits++) {
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (!digits || (i < n && !(p[i] && strchr(" \t\n\v\f\r", p[i]))))
		return false;
	if (minus)
		v = 0 - v;
	if (minus && v > INT64_MAX)
		return false;
	*out = v;
	return true;
}

/* Writes the result of a decision with a version newer than cur's. */
static int write_result(struct cluster *c, const void *key, size_t klen, const void *val,
			size_t vlen, bool tombstone, const struct store_attr *attr,
			const struct store_meta *cur, struct cluster_result *res)
{
	struct store_clock *clock = store_clock(c->local);
	struct store_attr none = { 0, 0 };
	int rc;

	store_clock_observe(clock, cur->version.stamp);
	struct store_version v = { store_clock_now(clock), c->node_id };
	rc = cluster_replicate(c, key, klen, val, vlen, &v, tombstone, tombstone ? &none : attr);
	if (rc < 0)
		return rc;
	memset(&res->meta, 0, sizeof(res->meta));
	res->meta.version = v;
	res->meta.tombstone = tombstone;
	res->meta.size = (uint32_t)vlen;
	if (!tombstone)
		res->meta.attr = *attr;
	return 0;
}

/* Decides op on this node (the caller holds the key's lock). */
static int decide_locked(struct cluster *c, const void *key, size_t klen,
			 const struct cluster_op *op, struct cluster_result *res)
{
	struct store_meta cur;
	void *val = NULL;
	size_t vlen = 0;
	bool live;
	int rc = read_newest(c, key, klen, needs_value(op->mode) ? &val : NULL, &vlen, &cur, &live);

	if (rc < 0)
		return rc;
	res->meta = cur;
	res->status = CLUSTER_DONE;
	/* As memcached: an add never looks at a CAS; with nothing to compare
	 * with, append and prepend are NOT_STORED, the others NOT_FOUND. */
	bool cas = op->has_cas && op->mode != CLUSTER_ADD;
	if (cas && !live) {
		res->status = op->mode == CLUSTER_APPEND || op->mode == CLUSTER_PREPEND
				      ? CLUSTER_NOT_STORED
				      : CLUSTER_NOT_FOUND;
	} else if (cas && cur.version.stamp != op->cas) {
		res->status = CLUSTER_EXISTS;
	} else {
		switch (op->mode) {
		case CLUSTER_SET:
		case CLUSTER_ADD:
		case CLUSTER_REPLACE:
			if ((op->mode == CLUSTER_ADD && live) ||
			    (op->mode == CLUSTER_REPLACE && !live))
				res->status = CLUSTER_NOT_STORED;
			else
				rc = write_result(c, key, klen, op->val, op->vlen, false, &op->attr,
						  &cur, res);
			break;
		case CLUSTER_APPEND:
		case CLUSTER_PREPEND: {
			if (!live) {
				res->status = CLUSTER_NOT_STORED;
				break;
			}
			if (vlen + op->vlen > PROTO_VALUE_MAX) {
				rc = -EFBIG;
				break;
			}
			char *both = malloc(vlen + op->vlen + 1);
			if (!both) {
				rc = -ENOMEM;
				break;
			}
			bool after = op->mode == CLUSTER_APPEND;
			memcpy(both + (after ? 0 : op->vlen), val, vlen);
			if (op->vlen)
				memcpy(both + (after ? vlen : 0), op->val, op->vlen);
			rc = write_result(c, key, klen, both, vlen + op->vlen, false, &cur.attr,
					  &cur, res);
			free(both);
			break;
		}
		case CLUSTER_INCR:
		case CLUSTER_DECR: {
			uint64_t n;
			if (!live) {
				res->status = CLUSTER_NOT_FOUND;
				break;
			}
			if (!value_number(val, vlen, &n)) {
				res->status = CLUSTER_NOT_NUMERIC;
				break;
			}
			if (op->mode == CLUSTER_INCR)
				n += op->delta; /* wraps at 2^64, as memcached's does */
			else
				n = n > op->delta ? n - op->delta : 0;
			/* A shorter number keeps the old length, padded with spaces, as
			 * memcached's in-place update does. */
			char text[24];
			size_t tl = (size_t)snprintf(text, sizeof(text), "%" PRIu64, n);
			if (tl < vlen) {
				memcpy(val, text, tl);
				memset((char *)val + tl, ' ', vlen - tl);
				rc = write_result(c, key, klen, val, vlen, false, &cur.attr, &cur,
						  res);
			} else {
				rc = write_result(c, key, klen, text, tl, false, &cur.attr, &cur,
						  res);
			}
			res->number = n;
			break;
		}
		case CLUSTER_TOUCH:
		case CLUSTER_GAT: {
			struct store_attr attr = { cur.attr.flags, op->attr.expires };
			if (!live) {
				res->status = CLUSTER_NOT_FOUND;
				break;
			}
			rc = write_result(c, key, klen, val, vlen, false, &attr, &cur, res);
			if (rc == 0 && op->mode == CLUSTER_GAT) {
				res->val = val ? val : malloc(1);
				res->vlen = vlen;
				val = NULL;
				if (!res->val)
					rc = -ENOMEM;
			}
			break;
		}
		case CLUSTER_DELETE:
			if (!live)
				res->status = CLUSTER_NOT_FOUND;
			else
				rc = write_result(c, key, klen, NULL, 0, true, NULL, &cur, res);
			break;
		}
	}
	free(val);
	return rc;
}

static int decide_here(struct cluster *c, const void *key, size_t klen, const struct cluster_op *op,
		       struct cluster_result *res)
{
	pthread_mutex_t *mu = &c->key_mu[XXH3_64bits(key, klen) % KEY_LOCKS];

	atomic_fetch_add(&c->decided, 1);
	pthread_mutex_lock(mu);
	int rc = decide_locked(c, key, klen, op, res);
	pthread_mutex_unlock(mu);
	return rc;
}

/* One xop exchange over conn: 0 with *res, or -errno (-EIO and the like
 * for the decider's own error, reported as XERR; else the connection's). */
static int xop_exchange(struct mc_conn *conn, const void *key, size_t klen,
			const struct cluster_op *op, struct cluster_result *res, bool *answered)
{
	char head[160], tail[128], word[16], *line;
	size_t len, bytes, size;
	uint64_t stamp, number;
	uint32_t node, flags, expires;
	int n, rc;

	*answered = false;
	char cas[24];
	snprintf(cas, sizeof(cas), "%" PRIu64, op->cas);
	snprintf(head, sizeof(head), "xop %s ", cluster_mode_name(op->mode));
	n = snprintf(tail, sizeof(tail), " %s %" PRIu64 " %" PRIu32 " %" PRIu32 " %zu\r\n",
		     op->has_cas ? cas : "-", op->delta, op->attr.flags, op->attr.expires,
		     op->vlen);
	struct iovec iov[5] = { { head, strlen(head) },
				{ (void *)key, klen },
				{ tail, (size_t)n },
				{ (void *)op->val, op->vlen },
				{ "\r\n", 2 } };
	if ((rc = mc_send(conn, iov, 5)) < 0 || (rc = mc_line(conn, &line, &len)) < 0)
		return rc;
	if (sscanf(line, "XERR %d", &n) == 1 && n > 0 && n < 4096) {
		*answered = true;
		return -n;
	}
	if (sscanf(line,
		   "XOP %15s %" SCNu64 " %" SCNu32 " %" SCNu32 " %" SCNu32 " %zu %" SCNu64 " %zu",
		   word, &stamp, &node, &flags, &expires, &size, &number, &bytes) != 8 ||
	    bytes > PROTO_VALUE_MAX || size > STORE_VALUE_MAX)
		return -EPROTO;
	res->status = NSTATUS;
	for (size_t i = 0; i < NSTATUS; i++)
		if (strcmp(word, status_names[i]) == 0)
			res->status = (enum cluster_status)i;
	if (res->status == NSTATUS)
		return -EPROTO;
	memset(&res->meta, 0, sizeof(res->meta));
	res->meta.version.stamp = stamp;
	res->meta.version.node = node;
	res->meta.attr.flags = flags;
	res->meta.attr.expires = expires;
	res->meta.size = (uint32_t)size;
	res->number = number;
	res->val = malloc(bytes ? bytes : 1);
	if (!res->val)
		return -ENOMEM;
	if ((rc = mc_block(conn, res->val, bytes)) < 0) {
		free(res->val);
		res->val = NULL;
		return rc;
	}
	res->vlen = bytes;
	if (op->mode != CLUSTER_GAT || res->status != CLUSTER_DONE) {
		free(res->val);
		res->val = NULL;
		res->vlen = 0;
	}
	*answered = true;
	return 0;
}

/*
 * Sends op to the decider p, on an idle connection that still looks open
 * or a new one. Once the request is sent, a failure is -EIO: the operation
 * may have been applied, and must not be decided again elsewhere. Returns
 * -EHOSTDOWN when p cannot be reached at all (the next replica decides).
 */
static int forward(struct cluster *c, struct peer *p, const void *key, size_t klen,
		   const struct cluster_op *op, struct cluster_result *res)
{
	struct mc_conn *conn;
	bool pooled, answered;
	int rc;

	atomic_fetch_add(&c->forwarded, 1);
	for (;;) {
		rc = cluster_peer_conn_get(c, p, &conn, &pooled);
		if (rc < 0) {
			cluster_peer_mark_down(p, rc);
			return -EHOSTDOWN;
		}
		if (!pooled || mc_idle_ok(conn))
			break;
		mc_close(conn); /* closed by p while idle: it never saw a request */
	}
	rc = xop_exchange(conn, key, klen, op, res, &answered);
	if (answered) {
		cluster_peer_conn_put(p, conn);
		return rc;
	}
	mc_close(conn);
	cluster_peer_mark_down(p, rc);
	fprintf(stderr, "caskfs: %s %.*s: the decider %s failed: %s\n", cluster_mode_name(op->mode),
		(int)klen, (const char *)key, p->addr, strerror(-rc));
	return -EIO;
}

int cluster_decide(struct cluster *c, const void *key, size_t klen, const struct cluster_op *op,
		   struct cluster_result *res)
{
	int reps[CLUSTER_MAX_NODES], rc = -EIO;

	memset(res, 0, sizeof(*res));
	if (klen == 0 || klen > STORE_KEY_MAX || op->vlen > STORE_VALUE_MAX ||
	    (unsigned)op->mode >= NMODES)
		return -EINVAL;
	/* the decider: the first owner of the key's bucket in the view in
	 * force that is this node or believed up */
	struct cluster_view *view = cluster_view_get(c);
	if (view->nmembers == 1 && view->self_member == 0 && view->settled) {
		cluster_view_put(c, view);
		return decide_here(c, key, klen, op, res);
	}
	cluster_view_owners(view, cluster_bucket(key, klen), reps);
	for (int k = 0; k < view->n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (p->self) {
			cluster_view_put(c, view);
			return decide_here(c, key, klen, op, res);
		}
		if (cluster_peer_is_down(p))
			continue;
		rc = forward(c, p, key, klen, op, res);
		if (rc != -EHOSTDOWN) {
			cluster_view_put(c, view);
			return rc;
		}
	}
	cluster_view_put(c, view);
	fprintf(stderr, "caskfs: %s %.*s: no replica of the key answers\n",
		cluster_mode_name(op->mode), (int)klen, (const char *)key);
	return -EIO;
}

int cluster_decide_local(struct cluster *c, const void *key, size_t klen,
			 const struct cluster_op *op, struct cluster_result *res)
{
	memset(res, 0, sizeof(*res));
	if (klen == 0 || klen > STORE_KEY_MAX || op->vlen > STORE_VALUE_MAX ||
	    (unsigned)op->mode >= NMODES)
		return -EINVAL;
	return decide_here(c, key, klen, op, res);
}

int cluster_nodes(struct cluster *c)
{
	struct cluster_view *v = cluster_view_get(c);
	int n = v->nmembers > v->nprev ? v->nmembers : v->nprev;

	cluster_view_put(c, v);
	return n;
}

const char *cluster_status_name(enum cluster_status status)
{
	return (unsigned)status < NSTATUS ? status_names[status] : "?";
}
