/*
 * quorum - put, get and delete over the key's N replicas (cluster.h). A put
 * is sent to every replica at once (the remote ones first, so they work while
 * the local one writes), then the replies are collected: it succeeds when W
 * acknowledged it, and every replica that could not take it gets a hint
 * (handoff.c). A get asks the replicas in turn, this node first, answers from
 * the first that has the key, and puts the copy back on those that lacked
 * it (read repair). While a bucket moves, a get that finds nothing on its
 * owners asks its previous owners too. The one idea: every copy carries
 * its version, so a replica only ever takes a record newer than its own.
 * Each call works with one view of the map (cluster_i.h). docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"
#include "../xxh_i.h"

static int check_args(size_t klen, size_t vlen)
{
	return klen == 0 || klen > STORE_KEY_MAX || vlen > STORE_VALUE_MAX ? -EINVAL : 0;
}

/* Whether the map in view is this node alone: every call goes straight to
 * the local store. */
static bool alone(const struct cluster_view *v)
{
	return v->nmembers == 1 && v->self_member == 0 && v->settled;
}

/* Writes one version of key to its replicas under view; see cluster_put(). */
static int replicate(struct cluster *c, const struct cluster_view *view, const void *key,
		     size_t klen, const void *val, size_t vlen, const struct store_version *v,
		     bool tombstone, const struct store_attr *attr)
{
	int reps[CLUSTER_MAX_NODES], acks = 0, rc, local_rc = 0;
	struct mc_conn *conns[CLUSTER_MAX_NODES] = { NULL };
	bool pooled[CLUSTER_MAX_NODES], ok[CLUSTER_MAX_NODES] = { false };
	char err[256];
	const int n = view->n;

	cluster_view_owners(view, cluster_bucket(key, klen), reps);
	/* remote replicas first, so they store while this node does */
	for (int k = 0; k < n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (p->self || cluster_peer_is_down(p))
			continue;
		rc = cluster_peer_conn_get(c, p, &conns[k], &pooled[k]);
		if (rc == 0 &&
		    (rc = mc_xset_send(conns[k], key, klen, val, vlen, v, tombstone, attr)) < 0) {
			mc_close(conns[k]);
			conns[k] = NULL;
			/* a dead pooled connection: the retry below uses a new one */
			if (!pooled[k])
				cluster_peer_mark_down(p, rc);
		} else if (rc < 0) {
			cluster_peer_mark_down(p, rc);
		}
	}
	for (int k = 0; k < n; k++) {
		if (!c->peers[reps[k]].self)
			continue;
		local_rc = store_apply_attr(c->local, key, klen, val, vlen, v, tombstone, attr);
		ok[k] = local_rc >= 0;
		if (local_rc < 0)
			fprintf(stderr, "caskfs: local store refused %.*s: %s\n", (int)klen,
				(const char *)key, strerror(-local_rc));
	}
	for (int k = 0; k < n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (p->self)
			continue;
		if (conns[k]) {
			rc = mc_xset_recv(conns[k], err, sizeof(err));
			if (rc >= 0 || rc == -EIO) {
				cluster_peer_conn_put(p, conns[k]);
				ok[k] = rc >= 0;
				if (rc == -EIO)
					fprintf(stderr, "caskfs: %s refused %.*s: %s\n", p->addr,
						(int)klen, (const char *)key, err);
				continue;
			}
			mc_close(conns[k]);
			if (!pooled[k]) {
				cluster_peer_mark_down(p, rc);
				continue;
			}
		} else if (cluster_peer_is_down(p)) {
			continue;
		}
		/* a pooled connection had died: once more on a fresh one */
		ok[k] = cluster_peer_send(c, p, key, klen, val, vlen, v, tombstone, attr) == 0;
	}
	char missing[CLUSTER_MAX_NODES * 32] = "";
	size_t mlen = 0;
	for (int k = 0; k < n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (ok[k]) {
			acks++;
			continue;
		}
		if (!p->self)
			cluster_hint_add(c, p, key, klen, val, vlen, v, tombstone, attr);
		mlen += (size_t)snprintf(missing + mlen, sizeof(missing) - mlen, "%s%s",
					 mlen ? ", " : "", p->self ? "this node" : p->addr);
		if (mlen >= sizeof(missing))
			mlen = sizeof(missing) - 1;
	}
	if (acks >= view->w)
		return 0;
	atomic_fetch_add(&c->put_failures, 1);
	fprintf(
	    stderr, "caskfs: %s %.*s: %d of %d replicas acknowledged, %d needed (W); missing: %s\n",
	    tombstone ? "delete" : "put", (int)klen, (const char *)key, acks, n, view->w, missing);
	return local_rc < 0 && n == 1 ? local_rc : -EIO;
}

int cluster_replicate(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen,
		      const struct store_version *v, bool tombstone, const struct store_attr *attr)
{
	struct cluster_view *view = cluster_view_get(c);
	int rc = alone(view) ? store_apply_attr(c->local, key, klen, val, vlen, v, tombstone, attr)
			     : replicate(c, view, key, klen, val, vlen, v, tombstone, attr);

	cluster_view_put(c, view);
	return rc;
}

int cluster_put_attr(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen,
		     const struct store_attr *attr, struct store_meta *meta)
{
	int rc = check_args(klen, vlen);

	if (rc < 0)
		return rc;
	atomic_fetch_add(&c->puts, 1);
	struct cluster_view *view = cluster_view_get(c);
	if (alone(view)) {
		cluster_view_put(c, view);
		return store_put_attr(c->local, key, klen, val, vlen, attr, meta);
	}
	struct store_version v = { store_clock_now(store_clock(c->local)), c->node_id };
	rc = replicate(c, view, key, klen, val, vlen, &v, false, attr);
	cluster_view_put(c, view);
	if (rc == 0 && meta) {
		memset(meta, 0, sizeof(*meta));
		meta->version = v;
		meta->size = (uint32_t)vlen;
		if (attr)
			meta->attr = *attr;
	}
	return rc;
}

int cluster_put(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen)
{
	return cluster_put_attr(c, key, klen, val, vlen, NULL, NULL);
}

int cluster_put_hashed(struct cluster *c, const void *key, size_t klen, const void *val,
		       size_t vlen, uint64_t value_hash)
{
	struct cluster_view *view = cluster_view_get(c);
	bool one = alone(view);

	cluster_view_put(c, view);
	if (!one || check_args(klen, vlen) < 0)
		return cluster_put_attr(c, key, klen, val, vlen, NULL, NULL);
	atomic_fetch_add(&c->puts, 1);
	return store_put_hashed(c->local, key, klen, val, vlen, value_hash, NULL);
}

struct xget_call {
	const void *key;
	size_t klen;
	void **val;
	size_t *vlen;
	struct store_meta *m;
};

static int xget_call(void *arg, struct peer *p, struct mc_conn *conn, bool *answered)
{
	struct xget_call *x = arg;
	void *v = NULL;
	size_t n = 0;
	int rc = mc_xget(conn, x->key, x->klen, &v, &n, x->m);

	if (rc != 0 && rc != -ENOENT)
		return rc;
	*answered = true;
	if (rc == -ENOENT)
		memset(x->m, 0, sizeof(*x->m));
	if (rc == 0 && !x->m->tombstone && XXH3_64bits(v, n) != x->m->value_hash) {
		fprintf(stderr, "caskfs: %s sent %.*s with a wrong hash\n", p->addr, (int)x->klen,
			(const char *)x->key);
		rc = -EBADMSG;
	} else if (rc == 0 && x->m->tombstone) {
		rc = -ENOENT;
	}
	if (rc == 0 && x->val) {
		*x->val = v;
		*x->vlen = n;
	} else {
		free(v);
	}
	return rc;
}

int cluster_fetch(struct cluster *c, struct peer *p, const void *key, size_t klen, void **val,
		  size_t *vlen, struct store_meta *m)
{
	struct xget_call x = { .key = key, .klen = klen, .val = val, .vlen = vlen, .m = m };

	if (p->self)
		return val ? store_get(c->local, key, klen, val, vlen, m)
			   : store_stat(c->local, key, klen, m);
	if (cluster_peer_is_down(p))
		return -EHOSTDOWN;
	return cluster_peer_call(c, p, xget_call, &x);
}

/* Puts the copy found back on the replicas that lacked it or held an older
 * or damaged one. */
static void repair(struct cluster *c, const int *order, const bool *stale, int count,
		   const void *key, size_t klen, const void *val, size_t vlen,
		   const struct store_meta *m)
{
	for (int k = 0; k < count; k++) {
		if (!stale[k])
			continue;
		struct peer *p = &c->peers[order[k]];
		int rc = p->self ? store_apply_attr(c->local, key, klen, val, vlen, &m->version,
						    false, &m->attr)
				 : cluster_peer_send(c, p, key, klen, val, vlen, &m->version, false,
						     &m->attr);
		if (rc >= 0) {
			atomic_fetch_add(&c->read_repairs, 1);
			atomic_fetch_add(&c->read_repair_bytes, vlen);
		}
	}
}

/*
 * The nodes a read asks, in order: key's owners (this node first), then,
 * while its bucket moves, its previous owners that are no owners now.
 * Returns their count; *owners receives how many of them are owners (the
 * only ones a read repairs).
 */
static int read_order(struct cluster *c, const struct cluster_view *v, const void *key, size_t klen,
		      int *order, int *owners)
{
	uint32_t b = cluster_bucket(key, klen);
	int reps[CLUSTER_MAX_NODES], n = 0;

	cluster_view_owners(v, b, reps);
	for (int k = 0; k < v->n; k++)
		if (c->peers[reps[k]].self)
			order[n++] = reps[k];
	for (int k = 0; k < v->n; k++)
		if (!c->peers[reps[k]].self)
			order[n++] = reps[k];
	*owners = n;
	if (v->prev_owners) {
		const uint8_t *o = v->prev_owners + (size_t)b * (size_t)v->pn;
		for (int k = 0; k < v->pn; k++) {
			int slot = v->prev[o[k]];
			if (!cluster_view_owns(v, b, slot, false))
				order[n++] = slot;
		}
	}
	return n;
}

/* A get (val not NULL) or a stat of key under view v; see cluster_get(). */
static int get_with(struct cluster *c, const struct cluster_view *v, const void *key, size_t klen,
		    void **val, size_t *vlen, struct store_meta *meta)
{
	int order[2 * CLUSTER_MAX_NODES], count, owners, rc = -EIO, answered = 0;
	bool stale[2 * CLUSTER_MAX_NODES] = { false }, damaged = false;
	struct store_meta m;

	count = read_order(c, v, key, klen, order, &owners);
	for (int k = 0; k < count; k++) {
		rc = cluster_fetch(c, &c->peers[order[k]], key, klen, val, vlen, &m);
		if (rc == 0) {
			if (meta)
				*meta = m;
			/* only owners are repaired: a previous owner lets go of it soon */
			if (val)
				repair(c, order, stale, k < owners ? k : owners, key, klen, *val,
				       *vlen, &m);
			return 0;
		}
		if (rc == -ENOENT && m.tombstone) {
			/* the first replica that knows the key answers, as R=1 reads do */
			if (meta)
				*meta = m;
			atomic_fetch_add(&c->get_misses, 1);
			return -ENOENT;
		}
		if (rc == -ENOENT || rc == -EBADMSG) {
			answered++;
			stale[k] = true;
			damaged |= rc == -EBADMSG;
		}
	}
	if (answered == 0 && count > 0)
		return rc == -EHOSTDOWN ? -EIO : rc;
	atomic_fetch_add(&c->get_misses, 1);
	return damaged ? -EBADMSG : -ENOENT;
}

static int get_or_stat(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		       struct store_meta *meta)
{
	struct cluster_view *v = cluster_view_get(c);
	int rc;

	atomic_fetch_add(&c->gets, 1);
	if (alone(v))
		rc = val ? store_get(c->local, key, klen, val, vlen, meta)
			 : store_stat(c->local, key, klen, meta);
	else
		rc = get_with(c, v, key, klen, val, vlen, meta);
	cluster_view_put(c, v);
	return rc;
}

int cluster_get(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		struct store_meta *meta)
{
	return get_or_stat(c, key, klen, val, vlen, meta);
}

int cluster_stat(struct cluster *c, const void *key, size_t klen, struct store_meta *meta)
{
	return get_or_stat(c, key, klen, NULL, NULL, meta);
}

bool cluster_is_replica(struct cluster *c, const void *key, size_t klen)
{
	return cluster_owns_bucket(c, cluster_bucket(key, klen), true);
}

/* cluster_read and cluster_read_content: by_caller picks store_read_content */
static int read_into(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
		     size_t *vlen, struct store_meta *meta, bool by_caller)
{
	struct cluster_view *v = cluster_view_get(c);
	uint32_t b = cluster_bucket(key, klen);
	struct store_meta m;
	void *val;
	int rc;

	if (!meta)
		meta = &m;
	bool one = alone(v), mine = v->self >= 0 && (cluster_view_owns(v, b, v->self, false) ||
						     cluster_view_owns(v, b, v->self, true));
	if (one || mine) {
		rc = (by_caller ? store_read_content : store_read)(c->local, key, klen, buf, cap,
								   vlen, meta);
		if (one || rc == 0 || rc == -ERANGE || (rc == -ENOENT && meta->tombstone)) {
			cluster_view_put(c, v);
			return rc;
		}
	}
	atomic_fetch_add(&c->gets, 1);
	rc = get_with(c, v, key, klen, &val, vlen, meta);
	cluster_view_put(c, v);
	meta->segment = 0;
	if (rc < 0)
		return rc;
	if (*vlen > cap)
		rc = -ERANGE;
	else
		memcpy(buf, val, *vlen);
	free(val);
	return rc;
}

int cluster_read(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
		 size_t *vlen, struct store_meta *meta)
{
	return read_into(c, key, klen, buf, cap, vlen, meta, false);
}

int cluster_read_content(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
			 size_t *vlen, struct store_meta *meta)
{
	return read_into(c, key, klen, buf, cap, vlen, meta, true);
}

int cluster_delete(struct cluster *c, const void *key, size_t klen)
{
	struct store_meta m;
	int rc = check_args(klen, 0);

	if (rc < 0)
		return rc;
	struct cluster_view *v = cluster_view_get(c);
	if (alone(v)) {
		cluster_view_put(c, v);
		return store_delete(c->local, key, klen, NULL);
	}
	atomic_fetch_add(&c->gets, 1);
	rc = get_with(c, v, key, klen, NULL, NULL, &m);
	if (rc == 0) {
		struct store_version ver = { store_clock_now(store_clock(c->local)), c->node_id };
		rc = replicate(c, v, key, klen, NULL, 0, &ver, true, NULL);
	}
	cluster_view_put(c, v);
	return rc;
}

struct flush_ctx {
	struct cluster *c;
	uint64_t deleted;
	int err;
};

static int flush_key(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	struct flush_ctx *f = arg;
	struct cluster_view *v = cluster_view_get(f->c);
	int rc;

	(void)m;
	if (alone(v)) {
		rc = store_delete(f->c->local, key, klen, NULL);
	} else {
		struct store_version ver = { store_clock_now(store_clock(f->c->local)),
					     f->c->node_id };
		rc = replicate(f->c, v, key, klen, NULL, 0, &ver, true, NULL);
	}
	cluster_view_put(f->c, v);
	if (rc == 0)
		f->deleted++;
	else if (rc != -ENOENT && !f->err)
		f->err = rc;
	return 0;
}

int cluster_flush(struct cluster *c, uint64_t *deleted)
{
	struct flush_ctx f = { .c = c };
	int rc = store_scan(c->local, "", 0, false, flush_key, &f);

	*deleted = f.deleted;
	return rc < 0 ? rc : f.err;
}
