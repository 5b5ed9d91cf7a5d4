/*
 * rebalance - buckets that move after a change of the cluster map. Twice a
 * second the rebalancer looks at the map in force:
 *   - while buckets move, this node takes the buckets it gained from their
 *     previous owners, one tree walk per previous owner over exactly those
 *     buckets, copying only towards this node (plan.c, kind "pull"); each
 *     owner done is recorded in DATA_DIR/cluster.map, so a restart resumes,
 *     and once all are done the node says so (gossiped; the lowest member
 *     then settles the map);
 *   - every few seconds it looks for buckets it holds records of but owns
 *     neither now nor before the change, hands each owner what it lacks of
 *     them, and only then lets go of its copies (store_forget).
 * The one idea: a copy is dropped only after every owner was seen holding
 * it, and a node takes from old owners only what it now owns, so a move
 * never loses an object and never leaves one on a node that does not own it.
 * Both are throttled (--rebalance-rate). docs/REPLICATION.md ("Rebalancing").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/node/cmap.h"
#include "sync_i.h"

#define RB_MS 500	   /* how often the rebalancer looks */
#define DROP_EVERY_MS 5000 /* how often held buckets are checked against the map */

struct fs_rebalance {
	struct store *store;
	struct cluster *cluster;
	const struct auth_key *key;
	uint64_t rate; /* bytes of values per second */
	struct fs_ticker *ticker;
	_Atomic bool stop;
	/* the ticker's thread only: */
	struct cluster_progress prog;
	int64_t next_drop;
	uint64_t drop_epoch, waiting_logged;
	struct store_tree_node *leaves; /* CLUSTER_BUCKETS */
	double t0;			/* start of the current hand-off pass (rate limit) */
	uint64_t pass_bytes;
	uint64_t resumed_logged; /* epoch whose resumption was said */
};

/* A record taken by a pull: counted and shown at once (caskfs status). */
static void copied(void *arg, size_t bytes)
{
	struct fs_rebalance *rb = arg;

	rb->prog.objects_in++;
	rb->prog.bytes_in += bytes;
	if ((rb->prog.objects_in & 31) == 0)
		cluster_progress_set(rb->cluster, &rb->prog);
}

/* Waits while more bytes went out this pass than the rate allows. */
static void throttle(struct fs_rebalance *rb, size_t bytes)
{
	rb->pass_bytes += bytes;
	if (!rb->rate)
		return;
	double due = rb->t0 + (double)rb->pass_bytes / (double)rb->rate, now = fs_now_seconds();
	if (due > now) {
		struct timespec ts = { (time_t)(due - now), 0 };
		ts.tv_nsec = (long)((due - now - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

/* Takes from addr the buckets this node gained that addr owned before. 0
 * (or 1: something here is newer, which is for the owners' own rounds),
 * -EHOSTDOWN when addr does not answer, -ESTALE when the map moves on. */
static int pull_from(struct fs_rebalance *rb, const char *addr, struct fs_sync_stats *st)
{
	struct fs_sync_ep self = { .s = rb->store, .cluster = rb->cluster }, other;
	struct fs_sync_opts o = { .quiet = true,
				  .b_to_a_only = true,
				  .rate = rb->rate,
				  .stop = &rb->stop,
				  .copied = copied,
				  .copied_arg = rb };
	struct fs_sync_plan plan;
	int rc;

	snprintf(self.name, sizeof(self.name), "this node");
	memset(&other, 0, sizeof(other));
	snprintf(other.name, sizeof(other.name), "%s", addr);
	if (mc_connect(addr, rb->key, 500, 30000, &other.conn) < 0)
		return -EHOSTDOWN;
	rc = fs_sync_plan(&self, &other, CLUSTER_SET_PULL, &plan);
	if (rc == 0 && plan.restricted && plan.buckets > 0)
		rc = fs_sync_run(&self, &other, FS_SYNC_DATA, &o, st);
	fs_sync_plan_free(&plan);
	mc_close(other.conn);
	if (atomic_load(&rb->stop))
		return -EINTR;
	return rc;
}

/* Pulls from every previous owner of what this node gained in m. Returns
 * true when this node now holds all of it. */
static bool pull_all(struct fs_rebalance *rb, const struct cmap *m)
{
	struct cluster_bucket_set *set = malloc(sizeof(*set));
	const char *self = cluster_self(rb->cluster);
	bool complete = true;
	uint64_t digest;

	if (!set)
		return false;
	rb->prog.epoch = m->epoch;
	rb->prog.sources = rb->prog.sources_done = 0;
	for (int i = 0; i < m->count && complete && !atomic_load(&rb->stop); i++) {
		const struct cmap_node *n = &m->node[i];
		if (!(n->flags & CMAP_PREV) || strcmp(n->addr, self) == 0)
			continue;
		int rc = cluster_bucket_set(rb->cluster, CLUSTER_SET_PULL, n->addr, set, &digest);
		if (rc == 0 && digest != cmap_digest(m)) {
			complete = false; /* a newer map came in */
			break;
		}
		if (rc < 0 || set->count == 0)
			continue;
		rb->prog.sources++;
		if (cluster_map_pulled(rb->cluster, m->epoch, n->addr)) {
			rb->prog.sources_done++;
			continue;
		}
		struct fs_sync_stats st = { 0 };
		cluster_progress_set(rb->cluster, &rb->prog);
		if (rb->prog.sources_done && rb->resumed_logged != m->epoch && rb->prog.passes == 1)
			fprintf(stderr,
				"caskfs: rebalance (map epoch %" PRIu64
				"): resuming after a restart, "
				"%u previous owners done already\n",
				m->epoch, rb->prog.sources_done);
		rb->resumed_logged = m->epoch;
		rc = pull_from(rb, n->addr, &st);
		if (rc >= 0) {
			cluster_map_mark_pulled(rb->cluster, m->epoch, n->addr);
			rb->prog.sources_done++;
			fprintf(stderr,
				"caskfs: rebalance (map epoch %" PRIu64 "): took %" PRIu64
				" objects (%" PRIu64 " bytes) of %u gained buckets from %s\n",
				m->epoch, st.b_to_a, st.bytes, set->count, n->addr);
		} else if (rc == -EHOSTDOWN && !(n->flags & CMAP_MEMBER)) {
			/* removed and gone: the other previous owners have its buckets */
			rb->prog.sources_done++;
			fprintf(stderr,
				"caskfs: rebalance: %s left the cluster and does not answer; its "
				"buckets come from their other owners\n",
				n->addr);
			cluster_map_mark_pulled(rb->cluster, m->epoch, n->addr);
		} else {
			complete = false;
			if (rb->waiting_logged != m->epoch)
				fprintf(
				    stderr,
				    "caskfs: rebalance (map epoch %" PRIu64
				    "): waiting for %s (%s); the move resumes when it answers\n",
				    m->epoch, n->addr, strerror(-rc));
			rb->waiting_logged = m->epoch;
		}
	}
	free(set);
	cluster_progress_set(rb->cluster, &rb->prog);
	return complete;
}

/* A connection per owner for one hand-off pass. */
struct owner_conns {
	char addr[2 * CLUSTER_MAX_NODES][CLUSTER_ADDR];
	struct mc_conn *conn[2 * CLUSTER_MAX_NODES];
	bool failed[2 * CLUSTER_MAX_NODES];
	int n;
};

static struct mc_conn *owner_conn(struct fs_rebalance *rb, struct owner_conns *oc, const char *addr)
{
	for (int i = 0; i < oc->n; i++)
		if (strcmp(oc->addr[i], addr) == 0)
			return oc->failed[i] ? NULL : oc->conn[i];
	if (oc->n == 2 * CLUSTER_MAX_NODES)
		return NULL;
	int i = oc->n++;
	size_t al = strnlen(addr, CLUSTER_ADDR - 1);
	memcpy(oc->addr[i], addr, al);
	oc->addr[i][al] = 0;
	oc->failed[i] = mc_connect(addr, rb->key, 500, 30000, &oc->conn[i]) < 0;
	return oc->failed[i] ? NULL : oc->conn[i];
}

static void owner_failed(struct owner_conns *oc, struct mc_conn *conn)
{
	for (int i = 0; i < oc->n; i++)
		if (oc->conn[i] == conn) {
			mc_close(conn);
			oc->conn[i] = NULL;
			oc->failed[i] = true;
		}
}

static const struct fs_sync_rec *find_rec(const struct fs_sync_reclist *l,
					  const struct fs_sync_rec *r)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->r[i].klen == r->klen && memcmp(l->r[i].key, r->key, r->klen) == 0)
			return &l->r[i];
	return NULL;
}

/*
 * Hands every owner of bucket what it lacks of this node's records of it,
 * then forgets them here. Returns 0 when the bucket is let go of, or the
 * error that kept it (an owner unreachable: the next pass tries again).
 */
static int hand_off(struct fs_rebalance *rb, struct owner_conns *oc, uint32_t bucket,
		    struct fs_sync_reclist *mine, struct fs_sync_reclist *theirs)
{
	struct fs_sync_ep self = { .s = rb->store }, peer = { 0 };
	char owners[CLUSTER_MAX_NODES][CLUSTER_ADDR];
	uint8_t path[STORE_TREE_DEPTH];
	int rc;

	for (int i = STORE_TREE_DEPTH - 1, b = (int)bucket; i >= 0; i--, b >>= 4)
		path[i] = (uint8_t)(b & 15);
	if ((rc = fs_sync_ep_bucket(&self, FS_SYNC_DATA, path, mine)) < 0)
		return rc;
	int n = cluster_bucket_owners(rb->cluster, bucket, owners, CLUSTER_MAX_NODES);
	if (n == 0)
		return -ENOENT;
	for (int k = 0; k < n; k++)
		if (strcmp(owners[k], cluster_self(rb->cluster)) == 0)
			return -EAGAIN; /* this node owns it now */
	for (int k = 0; k < n; k++) {
		struct mc_conn *conn = owner_conn(rb, oc, owners[k]);
		if (!conn)
			return -EHOSTDOWN;
		peer.conn = conn;
		memcpy(peer.name, owners[k], strnlen(owners[k], CLUSTER_ADDR - 1) + 1);
		if ((rc = fs_sync_ep_bucket(&peer, FS_SYNC_DATA, path, theirs)) < 0) {
			owner_failed(oc, conn);
			return rc;
		}
		for (size_t i = 0; i < mine->n && !atomic_load(&rb->stop); i++) {
			const struct fs_sync_rec *r = &mine->r[i], *t = find_rec(theirs, r);
			if (t && store_version_cmp(&t->v, &r->v) >= 0)
				continue;
			struct store_meta m = { 0 };
			void *val = NULL;
			size_t vlen = 0;
			rc = fs_sync_ep_get(&self, FS_SYNC_DATA, r, &val, &vlen, &m);
			if (rc == -ENOENT)
				continue; /* gone here meanwhile */
			if (rc == 0 && m.tombstone) {
				free(val);
				val = NULL;
				vlen = 0;
			}
			if (rc == 0)
				rc = fs_sync_ep_put(&peer, FS_SYNC_DATA, r, val, vlen, &m);
			free(val);
			if (rc < 0) {
				owner_failed(oc, conn);
				return rc;
			}
			rb->prog.objects_out++;
			rb->prog.bytes_out += vlen;
			throttle(rb, vlen);
		}
	}
	if (atomic_load(&rb->stop))
		return -EINTR;
	if (cluster_owns_bucket(rb->cluster, bucket, true))
		return -EAGAIN; /* a newer map gave it back to this node meanwhile */
	for (size_t i = 0; i < mine->n; i++)
		if (store_forget(rb->store, mine->r[i].key, mine->r[i].klen, &mine->r[i].v) == 0)
			rb->prog.objects_dropped++;
	return 0;
}

/* Lets go of every bucket this node holds and owns neither now nor before
 * the change under way. */
static void drop_pass(struct fs_rebalance *rb, uint64_t epoch)
{
	struct owner_conns *oc = calloc(1, sizeof(*oc));
	struct fs_sync_reclist mine = { 0 }, theirs = { 0 };
	uint64_t left = 0, kept = 0;

	struct cluster_bucket_set *owned = malloc(sizeof(*owned));
	if (!oc || !owned || store_tree_leaves(rb->store, 0, CLUSTER_BUCKETS, rb->leaves) < 0) {
		free(oc);
		free(owned);
		return;
	}
	/* what this node owns; without a place in the map it owns nothing */
	if (cluster_bucket_set(rb->cluster, CLUSTER_SET_OWNED, cluster_self(rb->cluster), owned,
			       NULL) < 0)
		memset(owned, 0, sizeof(*owned));
	for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++)
		if (rb->leaves[b].count && !(owned->bits[b >> 6] >> (b & 63) & 1))
			left++;
	rb->prog.buckets_to_drop = left;
	rb->t0 = fs_now_seconds();
	rb->pass_bytes = 0;
	uint64_t before = rb->prog.objects_dropped;
	for (uint32_t b = 0; b < CLUSTER_BUCKETS && !atomic_load(&rb->stop); b++) {
		if (!rb->leaves[b].count || (owned->bits[b >> 6] >> (b & 63) & 1))
			continue;
		if (hand_off(rb, oc, b, &mine, &theirs) == 0)
			rb->prog.buckets_to_drop--;
		else
			kept++;
		if ((rb->prog.buckets_to_drop & 63) == 0)
			cluster_progress_set(rb->cluster, &rb->prog);
	}
	for (int i = 0; i < oc->n; i++)
		mc_close(oc->conn[i]);
	free(oc);
	free(owned);
	free(mine.r);
	free(theirs.r);
	if (rb->prog.objects_dropped > before)
		fprintf(stderr,
			"caskfs: rebalance: let go of %" PRIu64
			" objects of buckets other nodes own (they hold them)%s\n",
			rb->prog.objects_dropped - before,
			kept ? "; some owners did not answer, the rest later" : "");
	if (!kept && !atomic_load(&rb->stop))
		rb->prog.clean_epoch = epoch;
}

static bool rb_tick(void *arg)
{
	struct fs_rebalance *rb = arg;
	struct cmap *m = malloc(sizeof(*m));
	uint64_t done;

	if (!m)
		return false;
	cluster_map_get(rb->cluster, m, &done);
	rb->prog.passes++;
	if (done < m->epoch) {
		if (cmap_settled(m) || pull_all(rb, m))
			cluster_map_done(rb->cluster, m->epoch);
	}
	int64_t now = fs_now_ms();
	if (rb->drop_epoch != m->epoch || now >= rb->next_drop) {
		rb->drop_epoch = m->epoch;
		rb->next_drop = now + DROP_EVERY_MS;
		drop_pass(rb, m->epoch);
	}
	cluster_progress_set(rb->cluster, &rb->prog);
	free(m);
	return false;
}

int fs_rebalance_start(struct store *s, struct cluster *c, const struct auth_key *key,
		       const struct node_args *a, struct fs_rebalance **out)
{
	struct fs_rebalance *rb = calloc(1, sizeof(*rb));

	*out = NULL;
	if (!rb || !(rb->leaves = calloc(CLUSTER_BUCKETS, sizeof(*rb->leaves)))) {
		free(rb);
		return -ENOMEM;
	}
	rb->store = s;
	rb->cluster = c;
	rb->key = key;
	rb->rate = (uint64_t)(a->rebalance_mib > 0 ? a->rebalance_mib : 64) << 20;
	if (fs_ticker_start(RB_MS, FS_TICKER_NOW, rb_tick, rb, &rb->ticker) < 0) {
		free(rb->leaves);
		free(rb);
		return -ENOMEM;
	}
	*out = rb;
	return 0;
}

void fs_rebalance_stop(struct fs_rebalance *rb)
{
	if (!rb)
		return;
	atomic_store(&rb->stop, true);
	fs_ticker_stop(rb->ticker);
	free(rb->leaves);
	free(rb);
}
