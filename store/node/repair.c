/*
 * repair - a damaged local copy replaced with a good one from a peer: each
 * of the key's replicas (then the other nodes) is asked for its own record
 * (xget, never forwarded), whose value must match its hash and the owner's
 * check, and the first good one of a version at least the damaged one's is
 * written with store_repair (which takes a copy of the same version). What
 * the scrubber's repair callback does (store/log/scrub.c). docs/OPERATIONS.md.
 */
#include <errno.h>
#include <stdlib.h>

#include "cluster_i.h"
#include "../xxh_i.h"

struct fetch_call {
	const void *key;
	size_t klen;
	void *val;
	size_t vlen;
	struct store_meta m;
};

static int fetch_call(void *arg, struct peer *p, struct mc_conn *conn, bool *answered)
{
	struct fetch_call *f = arg;
	int rc;

	(void)p;
	free(f->val);
	f->val = NULL;
	rc = mc_xget(conn, f->key, f->klen, &f->val, &f->vlen, &f->m);
	if (rc == 0 || rc == -ENOENT)
		*answered = true;
	return rc;
}

int cluster_repair(struct cluster *c, const void *key, size_t klen,
		   const struct store_version *damaged, cluster_check_fn check, void *check_arg)
{
	int order[CLUSTER_MAX_NODES], n = cluster_read_order(c, key, klen, order);
	bool asked[CLUSTER_MAX_NODES] = { false };
	int rc = -ENOENT;

	/* the replicas first, then any other node (a copy from before a move) */
	for (int i = 0; i < c->nnodes && n < CLUSTER_MAX_NODES; i++) {
		bool in = false;
		for (int k = 0; k < n; k++)
			in |= order[k] == i;
		if (!in)
			order[n++] = i;
	}
	for (int k = 0; k < n; k++) {
		struct peer *p = &c->peers[order[k]];
		struct fetch_call f = { .key = key, .klen = klen };

		if (p->self || asked[order[k]] || cluster_peer_is_down(p))
			continue;
		asked[order[k]] = true;
		int got = cluster_peer_call(c, p, fetch_call, &f);
		bool good = got == 0 && store_version_cmp(&f.m.version, damaged) >= 0 &&
			    (f.m.tombstone || (XXH3_64bits(f.val, f.vlen) == f.m.value_hash &&
					       (!check || check(check_arg, key, klen, f.val,
								f.vlen) == 0)));
		if (good) {
			int w = store_repair_attr(c->local, key, klen, f.val, f.vlen,
						  &f.m.version, f.m.tombstone, &f.m.attr);
			rc = w == 0 ? 0 : w > 0 ? -ESTALE : w;
		}
		free(f.val);
		if (rc == 0)
			return 0;
	}
	return rc;
}
