/*
 * cluster_i.h - the quorum client's internals, shared by cluster.c (open,
 * close, reporting), quorum.c (put, get, delete), decide.c (conditional
 * operations, decided by a key's primary), view.c (the map in force
 * and its placement), placement.c (buckets placed by rendezvous hashing),
 * gossip.c (maps exchanged with peers), tick.c (the background thread),
 * peer.c (connections to the other nodes) and handoff.c (hints for nodes
 * that missed a write). Calls go one way:
 *   cluster -> tick, view, handoff, peer;  quorum -> handoff, view, peer
 *   decide -> quorum, view, peer
 *   tick -> gossip, handoff;  gossip -> view;  handoff -> view, peer
 *   view -> placement, cmap, peer;  peer -> client (client.h)
 *
 * The one idea: the nodes a key lives on come from a view, an immutable
 * placement built from one cluster map, shared by reference count. A new map
 * makes a new view; requests under way finish with the view they took. Peers
 * live in slots that outlast views: a slot is reused for another address
 * only when no view names it and nothing holds it.
 */
#ifndef CASKFS_STORE_NODE_CLUSTER_I_H
#define CASKFS_STORE_NODE_CLUSTER_I_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"
#include "cluster.h"
#include "cmap.h"

#define POOL 8	       /* idle connections kept per peer */
#define DOWN_MS 1000   /* a failed peer is skipped this long before it is tried again */
#define HANDOFF_MS 500 /* how often hints are replayed (and maps gossiped) */
#define KEY_LOCKS 64   /* stripes of the decider's per-key lock */

struct peer {
	char addr[256]; /* "" for a free slot */
	uint64_t seed;	/* xxh3 of addr: its rendezvous seed */
	bool self;
	pthread_mutex_t mu;	       /* protects idle, nidle and the hint fields */
	struct mc_conn *idle[POOL];    /* protected by mu */
	int nidle;		       /* protected by mu */
	_Atomic int64_t down_until;    /* monotonic ms; 0 when believed up */
	_Atomic bool was_down;	       /* for logging state changes once */
	int hint_fd;		       /* protected by mu; -1 until the first hint */
	bool hint_dirty;	       /* protected by mu: written since the last fsync */
	uint64_t cur_count, cur_bytes; /* protected by mu: records in the current file */
	uint64_t old_count, old_bytes; /* protected by mu: records in the .replay file */
	char hint_path[PATH_MAX];
	pthread_mutex_t replay_mu;   /* one replay of this peer at a time */
	int uses;		     /* views naming this slot; protected by cluster->mu */
	int holds;		     /* callers using the slot outside a view; cluster->mu */
	_Atomic uint64_t done_epoch; /* the epoch this node last said it holds */
	_Atomic uint32_t id;	     /* its node id, once heard */
};

/* Bucket sets a view keeps, once computed (the server answers many tree
 * queries for the same pair). */
#define VIEW_SETS 8

/* One placement: the members and previous members of a map, and every
 * bucket's owners under each. Immutable once published (but the cache). */
struct cluster_view {
	_Atomic int refs;
	uint64_t epoch, digest;
	bool settled;
	int n, w, r; /* effective N, W, R over the members */
	int pn;	     /* effective N over the previous members */
	int nmembers, nprev;
	int member[CLUSTER_MAX_NODES]; /* slots, in address order */
	int prev[CLUSTER_MAX_NODES];
	uint8_t *owners;	  /* [bucket * n + k]: index into member[] */
	uint8_t *prev_owners;	  /* [bucket * pn + k]: index into prev[]; NULL when settled */
	int self;		  /* this node's slot, or -1 */
	int self_member;	  /* index of self in member[], or -1 */
	int self_prev;		  /* index of self in prev[], or -1 */
	pthread_mutex_t cache_mu; /* protects sets */
	struct {
		int kind, peer; /* peer: a slot */
		struct cluster_bucket_set *set;
	} sets[VIEW_SETS];
	int next_set; /* protected by cache_mu: the entry replaced next */
};

struct cluster {
	struct store *local;
	int replicas, write_quorum, read_quorum; /* as configured (0: the defaults) */
	int connect_ms, io_ms;
	const struct auth_key *key;
	struct auth_key key_copy;
	uint32_t node_id;
	char self[256];		  /* this node's address; "local:0" without --listen */
	bool has_addr;		  /* self came from --listen (the map is kept and gossiped) */
	char data_dir[PATH_MAX];  /* "" when the map is not kept */
	char *seeds;		  /* --peers, asked while the map is provisional; or NULL */
	struct peer *peers;	  /* CLUSTER_MAX_NODES slots */
	pthread_mutex_t offer_mu; /* one map change at a time (taken before mu) */
	pthread_mutex_t mu;	  /* protects view, map, state, slot bookkeeping, progress */
	struct cluster_view *view;
	struct cmap *map;		  /* the map in force */
	struct cmap_local state;	  /* what is kept beside it */
	bool map_dirty;			  /* protected by mu: tell every peer at the next tick */
	struct cluster_progress progress; /* protected by mu */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stopping, kicked; /* protected by stop_mu */
	/* a decided operation holds its key's stripe from its read to its write */
	pthread_mutex_t key_mu[KEY_LOCKS];
	_Atomic uint64_t puts, put_failures, gets, get_misses, read_repairs, read_repair_bytes;
	_Atomic uint64_t hints_queued, hints_replayed, hints_redirected;
	_Atomic uint64_t gossip_rounds, maps_adopted;
	_Atomic uint64_t decided, forwarded;
	_Atomic uint64_t handoff_calls; /* orphan hint files are looked for every 20th */
};

/* Wakes the background thread for a tick now (a map to pass on). */
static inline void cluster_kick(struct cluster *c)
{
	pthread_mutex_lock(&c->stop_mu);
	c->kicked = true;
	pthread_cond_signal(&c->stop_cv);
	pthread_mutex_unlock(&c->stop_mu);
}

/* ---- placement.c: pure functions ---- */

/* The bucket of a key hash (its leaf of the store's hash tree). */
static inline uint32_t cluster_bucket_of(uint64_t key_hash)
{
	return (uint32_t)(key_hash >> (64 - 4 * STORE_TREE_DEPTH));
}
/* The rendezvous seed of a node address. */
uint64_t cluster_seed(const char *addr);
/* Fills rank[0..n) with the indexes of the n highest-scoring of the count
 * seeds for bucket, best first (n <= count). */
void cluster_rank(const uint64_t *seeds, int count, int n, uint32_t bucket, int *rank);
/* The owners table of every bucket: out[bucket * n + k] (n <= count <= 255). */
void cluster_owners_table(const uint64_t *seeds, int count, int n, uint8_t *out);
/* A placement as the set functions read it: the owners tables over the
 * members and (NULL when settled) the previous members. */
struct cluster_place {
	int n, pn;
	const uint8_t *owners, *prev_owners;
};
/* Fills out with the buckets of kind between A and B, each given by its
 * index among the members (a_m, b_m) and the previous members (a_p, b_p),
 * -1 when it is none. */
void cluster_set_fill(const struct cluster_place *pl, enum cluster_set_kind kind, int a_m, int a_p,
		      int b_m, int b_p, struct cluster_bucket_set *out);

/* ---- view.c: the map in force ---- */

/* Takes a reference to the current view (never NULL once open). */
struct cluster_view *cluster_view_get(struct cluster *c);
/* Drops a reference taken by cluster_view_get(). */
void cluster_view_put(struct cluster *c, struct cluster_view *v);
/* Whether slot is one of bucket's owners under v's members (prev: its
 * previous members). */
bool cluster_view_owns(const struct cluster_view *v, uint32_t bucket, int slot, bool prev);
/* Fills reps with the slots of bucket's v->n owners, best first. */
void cluster_view_owners(const struct cluster_view *v, uint32_t bucket, int *reps);
/*
 * Makes m the map in force when it is newer than the current one
 * (cmap_merge()): builds its view, swaps it in, saves the file and marks
 * the map for gossip. Returns 1 when the map changed, 0 when not, -EXDEV
 * for another cluster's map, -ENOMEM, -ENOSPC (no slot left).
 */
int cluster_view_offer(struct cluster *c, const struct cmap *m);
/* Builds the first view at open from the saved map or a provisional one. */
int cluster_view_init(struct cluster *c, const struct cluster_options *opt);
/* Frees every view and the map at close. */
void cluster_view_fini(struct cluster *c);
/* Saves c->map and c->state (caller holds c->mu); logs a failure. */
void cluster_view_save_locked(struct cluster *c);
/* Marks slot held (not reused) / no longer; under c->mu internally. */
void cluster_slot_hold(struct cluster *c, int slot);
void cluster_slot_release(struct cluster *c, int slot);
/* The slot of addr, held (release it), or -1 when no slot names it. */
int cluster_slot_find(struct cluster *c, const char *addr);

/* ---- gossip.c ---- */

/* One round: the map exchanged with a random peer (every peer when the map
 * changed here), a provisional map promoted once every node it names agrees,
 * and, on the lowest member, the map settled once every member holds what it
 * gained. */
void cluster_gossip(struct cluster *c);

/* ---- peer.c ---- */

/* Whether p failed in the last DOWN_MS and is skipped. */
bool cluster_peer_is_down(struct peer *p);
/* Marks p down (logged once, with err) or up again (logged once). */
void cluster_peer_mark_down(struct peer *p, int err);
void cluster_peer_mark_up(struct peer *p);
/* A connection to p: an idle one (*pooled set) or a new one; or -errno. */
int cluster_peer_conn_get(struct cluster *c, struct peer *p, struct mc_conn **out, bool *pooled);
/* Gives conn back to p's idle pool, or closes it when the pool is full. */
void cluster_peer_conn_put(struct peer *p, struct mc_conn *conn);
/* Readies a free slot p for addr: its seed, and its hint file under
 * DATA_DIR/handoff/ named and counted (data_dir "" for none). */
void cluster_peer_init(struct peer *p, const char *addr, bool self, const char *data_dir);
/* Closes p's idle connections and hint file, and frees the slot. */
void cluster_peer_reset(struct peer *p);
/*
 * One exchange with p. fn talks over conn and sets *answered when p replied
 * (the connection can be used again), whatever the reply said. A pooled
 * connection that turns out dead is replaced once, so fn must be safe to
 * repeat. Returns fn's result; when p never answered, p is marked down.
 */
typedef int (*cluster_peer_call_fn)(void *arg, struct peer *p, struct mc_conn *conn,
				    bool *answered);
int cluster_peer_call(struct cluster *c, struct peer *p, cluster_peer_call_fn fn, void *arg);
/* Sends one stamped record (xset) with attributes attr (NULL: none) to p and
 * waits for its reply. Returns 0 when p took it or already had it, or -errno
 * (p marked down on connection errors, -EIO logged when p refused it). */
int cluster_peer_send(struct cluster *c, struct peer *p, const void *key, size_t klen,
		      const void *val, size_t vlen, const struct store_version *v, bool tombstone,
		      const struct store_attr *attr);

/* ---- quorum.c ---- */

/* Writes one version of key (with attr, NULL: none) to its replicas, as
 * cluster_put() does: 0 once W took it, else -EIO (logged) or, on a single
 * node, the store's error. */
int cluster_replicate(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen,
		      const struct store_version *v, bool tombstone, const struct store_attr *attr);
/* One replica's record of key: 0 live (value in *val when val is not NULL),
 * -ENOENT with m->tombstone or not, -EBADMSG for a damaged copy, or a
 * connection error (the peer is then marked down). */
int cluster_fetch(struct cluster *c, struct peer *p, const void *key, size_t klen, void **val,
		  size_t *vlen, struct store_meta *m);

/* ---- handoff.c ---- */

/* Keeps a hint of a record for p; logged when it cannot be kept. */
void cluster_hint_add(struct cluster *c, struct peer *p, const void *key, size_t klen,
		      const void *val, size_t vlen, const struct store_version *v, bool tombstone,
		      const struct store_attr *attr);

/* ---- tick.c: the background thread (hints every HANDOFF_MS, gossip) ---- */

/* start returns 0 or -errno; stop wakes it and joins it, and does nothing
 * when none runs (cluster_kick() makes the next tick come at once). */
int cluster_tick_start(struct cluster *c);
void cluster_tick_stop(struct cluster *c);

#endif
