/*
 * view - the map in force and the placement built from it (cluster_i.h): a
 * view holds the members and previous members of one cluster map, each in a
 * peer slot, and every bucket's owners under both. The one idea: a view
 * never changes once published; a newer map builds a new view (its tables
 * computed outside any lock), which replaces the old one in one pointer
 * swap, and the old one is freed when the last request using it lets go.
 * The map is saved in DATA_DIR/cluster.map before anyone sees it.
 * docs/REPLICATION.md ("Membership").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"

struct cluster_view *cluster_view_get(struct cluster *c)
{
	pthread_mutex_lock(&c->mu);
	struct cluster_view *v = c->view;
	atomic_fetch_add(&v->refs, 1);
	pthread_mutex_unlock(&c->mu);
	return v;
}

/* Frees v (no reference left); caller holds c->mu. */
static void view_free_locked(struct cluster *c, struct cluster_view *v)
{
	for (int i = 0; i < v->nmembers; i++)
		c->peers[v->member[i]].uses--;
	for (int i = 0; i < v->nprev; i++)
		c->peers[v->prev[i]].uses--;
	for (int i = 0; i < VIEW_SETS; i++)
		free(v->sets[i].set);
	pthread_mutex_destroy(&v->cache_mu);
	free(v->owners);
	free(v->prev_owners);
	free(v);
}

void cluster_view_put(struct cluster *c, struct cluster_view *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	pthread_mutex_lock(&c->mu);
	view_free_locked(c, v);
	pthread_mutex_unlock(&c->mu);
}

bool cluster_view_owns(const struct cluster_view *v, uint32_t bucket, int slot, bool prev)
{
	const uint8_t *o;
	const int *list;
	int n;

	if (prev && v->prev_owners) {
		o = v->prev_owners + (size_t)bucket * (size_t)v->pn;
		list = v->prev;
		n = v->pn;
	} else if (prev) {
		return cluster_view_owns(v, bucket, slot, false);
	} else {
		o = v->owners + (size_t)bucket * (size_t)v->n;
		list = v->member;
		n = v->n;
	}
	for (int k = 0; k < n; k++)
		if (list[o[k]] == slot)
			return true;
	return false;
}

void cluster_view_owners(const struct cluster_view *v, uint32_t bucket, int *reps)
{
	const uint8_t *o = v->owners + (size_t)bucket * (size_t)v->n;

	for (int k = 0; k < v->n; k++)
		reps[k] = v->member[o[k]];
}

/* ---- slots ---- */

/* The slot for addr: the one naming it, else a free or reusable one (set
 * up for addr). Caller holds c->mu. -1 when none is left. */
static int slot_for_locked(struct cluster *c, const char *addr)
{
	int free_slot = -1, reuse = -1;

	for (int i = 0; i < CLUSTER_MAX_NODES; i++) {
		struct peer *p = &c->peers[i];
		if (strcmp(p->addr, addr) == 0)
			return i;
		if (!p->addr[0] && free_slot < 0)
			free_slot = i;
		if (p->addr[0] && reuse < 0 && !p->self && p->uses == 0 && p->holds == 0) {
			pthread_mutex_lock(&p->mu);
			bool hints = p->cur_count + p->old_count > 0;
			pthread_mutex_unlock(&p->mu);
			if (!hints)
				reuse = i;
		}
	}
	int i = free_slot >= 0 ? free_slot : reuse;
	if (i < 0)
		return -1;
	if (c->peers[i].addr[0])
		cluster_peer_reset(&c->peers[i]);
	cluster_peer_init(&c->peers[i], addr, strcmp(addr, c->self) == 0, c->data_dir);
	return i;
}

int cluster_slot_find(struct cluster *c, const char *addr)
{
	int found = -1;

	pthread_mutex_lock(&c->mu);
	for (int i = 0; i < CLUSTER_MAX_NODES && found < 0; i++)
		if (c->peers[i].addr[0] && strcmp(c->peers[i].addr, addr) == 0)
			found = i;
	if (found >= 0)
		c->peers[found].holds++;
	pthread_mutex_unlock(&c->mu);
	return found;
}

void cluster_slot_hold(struct cluster *c, int slot)
{
	pthread_mutex_lock(&c->mu);
	c->peers[slot].holds++;
	pthread_mutex_unlock(&c->mu);
}

void cluster_slot_release(struct cluster *c, int slot)
{
	pthread_mutex_lock(&c->mu);
	c->peers[slot].holds--;
	pthread_mutex_unlock(&c->mu);
}

/* ---- building and publishing ---- */

static int clamp(int v, int def, int lo, int hi)
{
	if (v <= 0)
		v = def;
	return v < lo ? lo : v > hi ? hi : v;
}

/* A view of m with its tables (no slots yet: member[]/prev[] hold map
 * indexes until publish() turns them into slots). */
static int view_build(struct cluster *c, const struct cmap *m, struct cluster_view **out)
{
	struct cluster_view *v = calloc(1, sizeof(*v));
	uint64_t seeds[CLUSTER_MAX_NODES], pseeds[CLUSTER_MAX_NODES];

	if (!v)
		return -ENOMEM;
	atomic_init(&v->refs, 1);
	pthread_mutex_init(&v->cache_mu, NULL);
	v->epoch = m->epoch;
	v->digest = cmap_digest(m);
	v->settled = cmap_settled(m);
	for (int i = 0; i < m->count; i++) {
		if ((m->node[i].flags & CMAP_MEMBER) && v->nmembers < CLUSTER_MAX_NODES) {
			seeds[v->nmembers] = cluster_seed(m->node[i].addr);
			v->member[v->nmembers++] = i;
		}
		if ((m->node[i].flags & CMAP_PREV) && v->nprev < CLUSTER_MAX_NODES) {
			pseeds[v->nprev] = cluster_seed(m->node[i].addr);
			v->prev[v->nprev++] = i;
		}
	}
	v->n = clamp(c->replicas, 3, 1, v->nmembers ? v->nmembers : 1);
	v->w = clamp(c->write_quorum, 2, 1, v->n);
	v->r = clamp(c->read_quorum, 1, 1, v->n);
	v->pn = clamp(c->replicas, 3, 1, v->nprev ? v->nprev : 1);
	v->owners = calloc(CLUSTER_BUCKETS, (size_t)v->n);
	if (!v->owners || (!v->settled && v->nprev &&
			   !(v->prev_owners = calloc(CLUSTER_BUCKETS, (size_t)v->pn)))) {
		free(v->owners);
		pthread_mutex_destroy(&v->cache_mu);
		free(v);
		return -ENOMEM;
	}
	if (v->nmembers)
		cluster_owners_table(seeds, v->nmembers, v->n, v->owners);
	if (v->prev_owners)
		cluster_owners_table(pseeds, v->nprev, v->pn, v->prev_owners);
	*out = v;
	return 0;
}

/* Gives v's nodes their slots and makes v the view in force, *old the one
 * it replaced (for cluster_view_put()); caller holds c->mu. -ENOSPC (v
 * untouched, nothing changed) when no slot is left. */
static int publish_locked(struct cluster *c, const struct cmap *m, struct cluster_view *v,
			  struct cluster_view **old)
{
	int member[CLUSTER_MAX_NODES], prev[CLUSTER_MAX_NODES], nm = 0, np = 0, rc = 0;

	/* each slot taken counts as used at once, so the next lookups do not reuse it */
	for (; nm < v->nmembers && rc == 0; nm++)
		if ((member[nm] = slot_for_locked(c, m->node[v->member[nm]].addr)) < 0)
			rc = -ENOSPC;
		else
			c->peers[member[nm]].uses++;
	for (; np < v->nprev && rc == 0; np++)
		if ((prev[np] = slot_for_locked(c, m->node[v->prev[np]].addr)) < 0)
			rc = -ENOSPC;
		else
			c->peers[prev[np]].uses++;
	if (rc < 0) {
		for (int i = 0; i < nm; i++)
			if (member[i] >= 0)
				c->peers[member[i]].uses--;
		for (int i = 0; i < np; i++)
			if (prev[i] >= 0)
				c->peers[prev[i]].uses--;
		return rc;
	}
	v->self = v->self_member = v->self_prev = -1;
	for (int i = 0; i < v->nmembers; i++) {
		const struct cmap_node *mn = &m->node[v->member[i]];
		v->member[i] = member[i];
		if (mn->id)
			atomic_store(&c->peers[member[i]].id, mn->id);
		if (c->peers[member[i]].self) {
			v->self = member[i];
			v->self_member = i;
		}
	}
	for (int i = 0; i < v->nprev; i++) {
		const struct cmap_node *mn = &m->node[v->prev[i]];
		v->prev[i] = prev[i];
		if (mn->id)
			atomic_store(&c->peers[prev[i]].id, mn->id);
		if (c->peers[prev[i]].self) {
			v->self = prev[i];
			v->self_prev = i;
		}
	}
	*old = c->view;
	c->view = v;
	return 0;
}

void cluster_view_save_locked(struct cluster *c)
{
	if (!c->data_dir[0] || !c->has_addr)
		return;
	int rc = cmap_file_save(c->data_dir, c->map, &c->state);
	if (rc < 0)
		fprintf(stderr, "caskfs: cannot save %s/cluster.map: %s\n", c->data_dir,
			strerror(-rc));
}

int cluster_view_offer(struct cluster *c, const struct cmap *m)
{
	struct cmap *next = malloc(sizeof(*next));
	struct cluster_view *v = NULL, *old = NULL;
	int rc;

	if (!next)
		return -ENOMEM;
	pthread_mutex_lock(&c->offer_mu);
	pthread_mutex_lock(&c->mu);
	*next = *c->map;
	pthread_mutex_unlock(&c->mu);
	rc = cmap_merge(next, m);
	if (rc == -EXDEV) {
		fprintf(stderr,
			"caskfs: ignored the map of another cluster (id %016llx, epoch %llu)\n",
			(unsigned long long)m->cluster_id, (unsigned long long)m->epoch);
	}
	if (rc == 1 && next->epoch == c->view->epoch && cmap_digest(next) == c->view->digest) {
		/* the same placement, ids filled in: no new view */
		pthread_mutex_lock(&c->mu);
		*c->map = *next;
		cluster_view_save_locked(c);
		pthread_mutex_unlock(&c->mu);
	} else if (rc == 1 && (rc = view_build(c, next, &v)) == 0) {
		pthread_mutex_lock(&c->mu);
		rc = publish_locked(c, next, v, &old);
		if (rc == 0) {
			*c->map = *next;
			if (c->state.work_epoch != next->epoch) {
				c->state.work_epoch = next->epoch;
				memset(c->state.pulled, 0, sizeof(c->state.pulled));
			}
			cluster_view_save_locked(c);
			c->map_dirty = true;
			atomic_fetch_add(&c->maps_adopted, 1);
			fprintf(stderr, "caskfs: cluster map epoch %llu: %d members%s\n",
				(unsigned long long)next->epoch, v->nmembers,
				v->settled ? "" : ", buckets moving");
			rc = 1;
		} else {
			v->nmembers = v->nprev = 0; /* no slot was counted for v */
			view_free_locked(c, v);
			fprintf(stderr, "caskfs: no peer slot left for the map of epoch %llu\n",
				(unsigned long long)next->epoch);
		}
		pthread_mutex_unlock(&c->mu);
		if (old)
			cluster_view_put(c, old);
		cluster_kick(c);
	}
	pthread_mutex_unlock(&c->offer_mu);
	free(next);
	return rc;
}

int cluster_view_init(struct cluster *c, const struct cluster_options *opt)
{
	struct cluster_view *v, *old = NULL;
	char err[300];
	int rc = -ENOENT;

	c->map = malloc(sizeof(*c->map));
	if (!c->map)
		return -ENOMEM;
	cmap_init(c->map);
	memset(&c->state, 0, sizeof(c->state));
	if (c->has_addr && c->data_dir[0]) {
		rc = cmap_file_load(c->data_dir, c->map, &c->state);
		if (rc == -EBADMSG)
			fprintf(stderr,
				"caskfs: %s/cluster.map is damaged; starting from --peers\n",
				c->data_dir);
		else if (rc < 0 && rc != -ENOENT)
			fprintf(stderr, "caskfs: cannot read %s/cluster.map: %s\n", c->data_dir,
				strerror(-rc));
		if (rc == 0 && strcmp(c->state.self, c->self) != 0) {
			fprintf(stderr,
				"caskfs: %s/cluster.map was kept by %s, this node is %s: starting "
				"from --peers\n",
				c->data_dir, c->state.self, c->self);
			rc = -EINVAL;
		}
	}
	if (rc < 0) {
		memset(&c->state, 0, sizeof(c->state));
		rc = cmap_bootstrap(c->map, c->self, c->node_id, c->has_addr ? opt->peers : NULL,
				    CLUSTER_MAX_NODES, err, sizeof(err));
		if (rc < 0) {
			fprintf(stderr, "caskfs: %s\n", err);
			return rc;
		}
	}
	snprintf(c->state.self, sizeof(c->state.self), "%s", c->has_addr ? c->self : "");
	c->state.replicas = (uint32_t)(c->replicas > 0 ? c->replicas : 3);
	rc = view_build(c, c->map, &v);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->mu);
	rc = publish_locked(c, c->map, v, &old);
	if (rc < 0) {
		v->nmembers = v->nprev = 0; /* no slot was counted for v */
		view_free_locked(c, v);
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

void cluster_view_fini(struct cluster *c)
{
	pthread_mutex_lock(&c->mu);
	if (c->view)
		view_free_locked(c, c->view);
	c->view = NULL;
	pthread_mutex_unlock(&c->mu);
	free(c->map);
	c->map = NULL;
}
