/*
 * map - what cluster.h shows of the cluster map and its buckets: the map in
 * force, offering a newer one, what peers said of themselves, the
 * rebalancer's durable progress, and the bucket sets two nodes compare or
 * move (cached in the view: a peer's tree walk asks for the same set many
 * times). The one idea: a set is a function of the map, the pair and N
 * alone, so both sides of an exchange compute it and nothing of it crosses
 * the wire but the map's digest. docs/REPLICATION.md, docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"

const char *cluster_self(struct cluster *c)
{
	return c->has_addr ? c->self : "";
}

int cluster_replicas(struct cluster *c)
{
	struct cluster_view *v = cluster_view_get(c);
	int n = v->n;

	cluster_view_put(c, v);
	return n;
}

void cluster_map_get(struct cluster *c, struct cmap *out, uint64_t *done_epoch)
{
	pthread_mutex_lock(&c->mu);
	*out = *c->map;
	if (done_epoch)
		*done_epoch = c->state.done_epoch;
	pthread_mutex_unlock(&c->mu);
}

int cluster_map_offer(struct cluster *c, const struct cmap *m)
{
	return cluster_view_offer(c, m);
}

void cluster_peer_heard(struct cluster *c, const char *addr, uint32_t id, uint64_t done_epoch)
{
	int slot = cluster_slot_find(c, addr);

	if (slot < 0)
		return;
	struct peer *p = &c->peers[slot];
	if (id)
		atomic_store(&p->id, id);
	uint64_t cur = atomic_load(&p->done_epoch);
	while (cur < done_epoch && !atomic_compare_exchange_weak(&p->done_epoch, &cur, done_epoch))
		;
	cluster_slot_release(c, slot);
}

void cluster_map_done(struct cluster *c, uint64_t epoch)
{
	pthread_mutex_lock(&c->mu);
	if (c->state.done_epoch < epoch) {
		c->state.done_epoch = epoch;
		cluster_view_save_locked(c);
		c->map_dirty = true;
	}
	pthread_mutex_unlock(&c->mu);
	cluster_kick(c);
}

bool cluster_map_pulled(struct cluster *c, uint64_t epoch, const char *source)
{
	bool pulled = false;

	pthread_mutex_lock(&c->mu);
	int at = cmap_find(c->map, source);
	if (at >= 0 && c->map->epoch == epoch && c->state.work_epoch == epoch)
		pulled = c->state.pulled[at / 8] >> (at % 8) & 1;
	pthread_mutex_unlock(&c->mu);
	return pulled;
}

int cluster_map_mark_pulled(struct cluster *c, uint64_t epoch, const char *source)
{
	int rc = -ESTALE;

	pthread_mutex_lock(&c->mu);
	int at = cmap_find(c->map, source);
	if (at >= 0 && c->map->epoch == epoch) {
		if (c->state.work_epoch != epoch) {
			c->state.work_epoch = epoch;
			memset(c->state.pulled, 0, sizeof(c->state.pulled));
		}
		c->state.pulled[at / 8] |= (uint8_t)(1u << (at % 8));
		cluster_view_save_locked(c);
		rc = 0;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void cluster_progress_set(struct cluster *c, const struct cluster_progress *p)
{
	pthread_mutex_lock(&c->mu);
	c->progress = *p;
	pthread_mutex_unlock(&c->mu);
}

enum cluster_set_kind cluster_set_kind_parse(const char *w, size_t len)
{
	static const char *names[] = { "shared", "pull", "give", "owned" };

	for (int i = 0; i < 4; i++)
		if (strlen(names[i]) == len && memcmp(w, names[i], len) == 0)
			return (enum cluster_set_kind)(i + 1);
	return 0;
}

const char *cluster_set_kind_name(enum cluster_set_kind k)
{
	return k == CLUSTER_SET_SHARED ? "shared"
	       : k == CLUSTER_SET_PULL ? "pull"
	       : k == CLUSTER_SET_GIVE ? "give"
				       : "owned";
}

/* The indexes of slot among v's members and previous members. */
static void indexes(const struct cluster_view *v, int slot, int *m, int *p)
{
	*m = *p = -1;
	for (int i = 0; i < v->nmembers; i++)
		if (v->member[i] == slot)
			*m = i;
	for (int i = 0; i < v->nprev; i++)
		if (v->prev[i] == slot)
			*p = i;
}

int cluster_bucket_set(struct cluster *c, enum cluster_set_kind kind, const char *peer,
		       struct cluster_bucket_set *out, uint64_t *digest)
{
	if (kind < CLUSTER_SET_SHARED || kind > CLUSTER_SET_OWNED)
		return -EINVAL;
	struct cluster_view *v = cluster_view_get(c);
	int slot = -1, rc = 0;

	for (int i = 0; i < v->nmembers && slot < 0; i++)
		if (strcmp(c->peers[v->member[i]].addr, peer) == 0)
			slot = v->member[i];
	for (int i = 0; i < v->nprev && slot < 0; i++)
		if (strcmp(c->peers[v->prev[i]].addr, peer) == 0)
			slot = v->prev[i];
	if (digest)
		*digest = v->digest;
	if (slot < 0 || v->self < 0) {
		cluster_view_put(c, v);
		return -ENOENT;
	}
	bool cached = false;
	pthread_mutex_lock(&v->cache_mu);
	for (int i = 0; i < VIEW_SETS && !cached; i++)
		if (v->sets[i].set && v->sets[i].kind == (int)kind && v->sets[i].peer == slot) {
			*out = *v->sets[i].set;
			cached = true;
		}
	pthread_mutex_unlock(&v->cache_mu);
	if (!cached) {
		struct cluster_place pl = { v->n, v->pn, v->owners, v->prev_owners };
		int am, ap, bm, bp;
		indexes(v, v->self, &am, &ap);
		indexes(v, slot, &bm, &bp);
		if (!pl.prev_owners) /* settled: the members are the previous members */
			ap = am, bp = bm;
		cluster_set_fill(&pl, kind, am, ap, bm, bp, out);
		struct cluster_bucket_set *copy = malloc(sizeof(*copy));
		if (copy) {
			*copy = *out;
			pthread_mutex_lock(&v->cache_mu);
			int at = v->next_set;
			v->next_set = (at + 1) % VIEW_SETS;
			free(v->sets[at].set);
			v->sets[at].set = copy;
			v->sets[at].kind = (int)kind;
			v->sets[at].peer = slot;
			pthread_mutex_unlock(&v->cache_mu);
		}
	}
	cluster_view_put(c, v);
	return rc;
}

int cluster_bucket_set_of(const struct cmap *m, int replicas, enum cluster_set_kind kind,
			  const char *a, const char *b, struct cluster_bucket_set *out)
{
	uint64_t seeds[CLUSTER_MAX_NODES], pseeds[CLUSTER_MAX_NODES];
	int nm = 0, np = 0, am = -1, ap = -1, bm = -1, bp = -1;
	bool settled = cmap_settled(m);

	if (kind < CLUSTER_SET_SHARED || kind > CLUSTER_SET_OWNED)
		return -EINVAL;
	for (int i = 0; i < m->count; i++) {
		const struct cmap_node *n = &m->node[i];
		if ((n->flags & CMAP_MEMBER) && nm < CLUSTER_MAX_NODES) {
			am = strcmp(n->addr, a) == 0 ? nm : am;
			bm = strcmp(n->addr, b) == 0 ? nm : bm;
			seeds[nm++] = cluster_seed(n->addr);
		}
		if ((n->flags & CMAP_PREV) && np < CLUSTER_MAX_NODES) {
			ap = strcmp(n->addr, a) == 0 ? np : ap;
			bp = strcmp(n->addr, b) == 0 ? np : bp;
			pseeds[np++] = cluster_seed(n->addr);
		}
	}
	if ((am < 0 && ap < 0) || (bm < 0 && bp < 0) || nm == 0)
		return -ENOENT;
	if (replicas <= 0)
		replicas = 3;
	int n = replicas < nm ? replicas : nm, pn = replicas < np ? replicas : np;
	uint8_t *owners = malloc((size_t)CLUSTER_BUCKETS * (size_t)n);
	uint8_t *prev = settled || np == 0 ? NULL : malloc((size_t)CLUSTER_BUCKETS * (size_t)pn);
	if (!owners || (!settled && np && !prev)) {
		free(owners);
		free(prev);
		return -ENOMEM;
	}
	cluster_owners_table(seeds, nm, n, owners);
	if (prev)
		cluster_owners_table(pseeds, np, pn, prev);
	struct cluster_place pl = { n, pn, owners, prev };
	if (!prev)
		ap = am, bp = bm;
	cluster_set_fill(&pl, kind, am, ap, bm, bp, out);
	free(owners);
	free(prev);
	return 0;
}

bool cluster_owns_bucket(struct cluster *c, uint32_t bucket, bool prev)
{
	struct cluster_view *v = cluster_view_get(c);
	bool owns = v->self >= 0 && (cluster_view_owns(v, bucket, v->self, false) ||
				     (prev && cluster_view_owns(v, bucket, v->self, true)));

	cluster_view_put(c, v);
	return owns;
}

int cluster_bucket_owners(struct cluster *c, uint32_t bucket, char (*addrs)[CLUSTER_ADDR], int cap)
{
	struct cluster_view *v = cluster_view_get(c);
	int reps[CLUSTER_MAX_NODES], n = 0;

	cluster_view_owners(v, bucket, reps);
	for (int k = 0; k < v->n && n < cap; k++)
		memcpy(addrs[n++], c->peers[reps[k]].addr, CLUSTER_ADDR);
	cluster_view_put(c, v);
	return n;
}

int cluster_map_peers(struct cluster *c, char (*addrs)[CLUSTER_ADDR], uint8_t *flags, int cap)
{
	int n = 0;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < c->map->count && n < cap; i++) {
		if (strcmp(c->map->node[i].addr, c->self) == 0)
			continue;
		memcpy(addrs[n], c->map->node[i].addr, CLUSTER_ADDR);
		if (flags)
			flags[n] = c->map->node[i].flags;
		n++;
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}
