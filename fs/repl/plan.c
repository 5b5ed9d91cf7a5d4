/*
 * plan - which buckets a tree walk between two sides covers. Each side's
 * cluster map is learnt (a node's over xmap, a DATA_DIR's saved file, this
 * node's own), the newer one is given to the side that lacks it, and then
 * each side is told the set: a local side gets the set itself, a node the
 * words of a ptree query (the map's digest, N, the kind and the other
 * side's address), from which it computes the same set. The one idea: the
 * walk compares only buckets both sides should hold, so a node is never
 * sent an object it does not own. docs/REPLICATION.md ("Anti-entropy").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_i.h"
#include "store/node/cmap.h"

/* What one side says of its map. */
struct side {
	bool have; /* it holds a map */
	struct cmap *map;
	char self[256];
	int replicas; /* 0: not known */
};

static int learn(struct fs_sync_ep *e, const struct cmap *push, struct side *sd)
{
	struct cmap_peer_info info;
	struct cmap_local local;
	int rc;

	sd->have = false;
	sd->self[0] = 0;
	sd->replicas = 0;
	if (e->conn) {
		rc = cmap_exchange(e->conn, push, sd->map, &info);
		if (rc == -EIO || rc == -EPROTO)
			return 0; /* a node from before maps: no set */
		if (rc < 0)
			return rc;
		sd->have = true;
		snprintf(sd->self, sizeof(sd->self), "%s", info.self);
		sd->replicas = (int)info.replicas;
		return 0;
	}
	if (e->cluster) {
		if (push)
			cluster_map_offer(e->cluster, push);
		cluster_map_get(e->cluster, sd->map, NULL);
		snprintf(sd->self, sizeof(sd->self), "%s", cluster_self(e->cluster));
		sd->have = sd->self[0] != 0;
		sd->replicas = cluster_replicas(e->cluster);
		return 0;
	}
	if (e->owned && cmap_file_load(e->name, sd->map, &local) == 0 && local.self[0]) {
		sd->have = true;
		snprintf(sd->self, sizeof(sd->self), "%s", local.self);
		sd->replicas = (int)local.replicas;
	}
	return 0;
}

static enum cluster_set_kind mirror(enum cluster_set_kind k)
{
	return k == CLUSTER_SET_PULL   ? CLUSTER_SET_GIVE
	       : k == CLUSTER_SET_GIVE ? CLUSTER_SET_PULL
				       : k;
}

/* Sets e up for the walk over kind between self and peer under m. */
static int aim(struct fs_sync_ep *e, const struct cmap *m, int replicas, enum cluster_set_kind kind,
	       const char *self, const char *peer, struct cluster_bucket_set **set_out,
	       uint32_t *count)
{
	int rc;

	if (e->conn) {
		snprintf(e->query, sizeof(e->query), "%016llx %d %s %s",
			 (unsigned long long)cmap_digest(m), replicas, cluster_set_kind_name(kind),
			 peer);
		return 0;
	}
	struct cluster_bucket_set *set = malloc(sizeof(*set));
	if (!set)
		return -ENOMEM;
	uint64_t digest = 0;
	if (e->cluster) {
		rc = cluster_bucket_set(e->cluster, kind, peer, set, &digest);
		if (rc == 0 && digest != cmap_digest(m))
			rc = -ESTALE;
	} else {
		rc = cluster_bucket_set_of(m, replicas, kind, self, peer, set);
	}
	if (rc < 0) {
		free(set);
		return rc;
	}
	*count = set->count;
	e->set = set;
	*set_out = set;
	return 0;
}

int fs_sync_plan(struct fs_sync_ep *a, struct fs_sync_ep *b, enum cluster_set_kind kind,
		 struct fs_sync_plan *plan)
{
	struct side sa = { .map = malloc(sizeof(struct cmap)) };
	struct side sb = { .map = malloc(sizeof(struct cmap)) };
	struct cmap *m = malloc(sizeof(*m));
	int rc = 0;

	memset(plan, 0, sizeof(*plan));
	plan->kind = kind;
	a->set = b->set = NULL;
	a->query[0] = b->query[0] = 0;
	if (!sa.map || !sb.map || !m) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = learn(a, NULL, &sa)) < 0 || (rc = learn(b, NULL, &sb)) < 0)
		goto out;
	if (!sa.have && !sb.have)
		goto out; /* no maps: the whole trees, as before maps */
	/* the newer map, to both sides that keep one */
	cmap_init(m);
	if (sa.have)
		*m = *sa.map;
	if (sb.have && (rc = cmap_merge(m, sb.map)) == -EXDEV) {
		fprintf(stderr, "caskfs sync: %s and %s belong to different clusters\n", a->name,
			b->name);
		goto out;
	}
	rc = 0;
	uint64_t digest = cmap_digest(m);
	if (sa.have && cmap_digest(sa.map) != digest && (a->conn || a->cluster) &&
	    (rc = learn(a, m, &sa)) < 0)
		goto out;
	if (sb.have && cmap_digest(sb.map) != digest && (b->conn || b->cluster) &&
	    (rc = learn(b, m, &sb)) < 0)
		goto out;
	if ((sa.have && (a->conn || a->cluster) && cmap_digest(sa.map) != digest) ||
	    (sb.have && (b->conn || b->cluster) && cmap_digest(sb.map) != digest)) {
		rc = -ESTALE; /* a newer map on the way in: the next round */
		goto out;
	}
	if (!sa.self[0] || !sb.self[0])
		goto out; /* a side without an address (a DATA_DIR from before maps) */
	if (cmap_find(m, sa.self) < 0 || cmap_find(m, sb.self) < 0) {
		rc = -ENOENT;
		goto out;
	}
	if (sa.replicas && sb.replicas && sa.replicas != sb.replicas) {
		fprintf(stderr,
			"caskfs: %s places with N=%d, %s with N=%d: every node must run with the "
			"same --replicas\n",
			a->name, sa.replicas, b->name, sb.replicas);
		rc = -EINVAL;
		goto out;
	}
	int replicas = sa.replicas ? sa.replicas : sb.replicas ? sb.replicas : 3;
	plan->restricted = true;
	plan->epoch = m->epoch;
	plan->digest = digest;
	snprintf(plan->a_self, sizeof(plan->a_self), "%s", sa.self);
	snprintf(plan->b_self, sizeof(plan->b_self), "%s", sb.self);
	uint32_t ca = 0, cb = 0;
	rc = aim(a, m, replicas, kind, sa.self, sb.self, &plan->a_set, &ca);
	if (rc == 0)
		rc = aim(b, m, replicas, mirror(kind), sb.self, sa.self, &plan->b_set, &cb);
	if (rc == 0 && !a->conn)
		plan->buckets = ca;
	else if (rc == 0 && !b->conn)
		plan->buckets = cb;
	else if (rc == 0) {
		struct cluster_bucket_set *set = malloc(sizeof(*set));
		if (set && cluster_bucket_set_of(m, replicas, kind, sa.self, sb.self, set) == 0)
			plan->buckets = set->count;
		free(set);
	}
out:
	free(sa.map);
	free(sb.map);
	free(m);
	if (rc < 0) {
		a->set = b->set = NULL;
		a->query[0] = b->query[0] = 0;
	}
	return rc;
}

void fs_sync_plan_free(struct fs_sync_plan *plan)
{
	free(plan->a_set);
	free(plan->b_set);
	plan->a_set = plan->b_set = NULL;
}
