/*
 * cluster_i.h - the quorum client's internals, shared by cluster.c (open,
 * close, reporting), quorum.c (put, get, delete), placement.c (which nodes
 * hold a key), peer.c (connections to the other nodes) and handoff.c (hints
 * for nodes that missed a write). Calls go one way:
 *   cluster -> placement, handoff, peer;  quorum -> placement, handoff, peer
 *   decide -> quorum, placement, peer
 *   handoff -> peer -> client (client.h)
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

#define POOL 8	       /* idle connections kept per peer */
#define DOWN_MS 1000   /* a failed peer is skipped this long before it is tried again */
#define HANDOFF_MS 500 /* how often hints are replayed */
#define KEY_LOCKS 64   /* stripes of the decider's per-key lock */

struct peer {
	char addr[256];
	uint64_t seed; /* xxh3 of addr: its rendezvous seed */
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
	pthread_mutex_t replay_mu; /* one replay of this peer at a time */
};

struct cluster {
	struct store *local;
	int nnodes, n, w, r;
	int connect_ms, io_ms;
	const struct auth_key *key;
	struct auth_key key_copy;
	uint32_t node_id;
	struct peer *peers; /* nnodes, sorted by address */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stopping; /* protected by stop_mu */
	/* a decided operation holds its key's stripe from its read to its write */
	pthread_mutex_t key_mu[KEY_LOCKS];
	_Atomic uint64_t puts, put_failures, gets, get_misses, read_repairs;
	_Atomic uint64_t hints_queued, hints_replayed;
	_Atomic uint64_t decided, forwarded;
};

/* ---- placement.c ---- */

/* Fills c->peers from opt (this node, then its peers; or this node alone
 * when opt->self is NULL), sorted by address. -EINVAL for a bad address or
 * too many nodes (logged). */
int cluster_nodes_parse(struct cluster *c, const struct cluster_options *opt);
/* Fills reps with the indexes of key's c->n replicas, best first. */
void cluster_placement(struct cluster *c, const void *key, size_t klen, int *reps);
/* The replicas in the order a read asks them (this node first); returns
 * their count. */
int cluster_read_order(struct cluster *c, const void *key, size_t klen, int *order);

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

/* Names p's hint file under DATA_DIR/handoff/ and counts what it holds. */
void cluster_hint_open(struct peer *p, const char *data_dir);
/* Keeps a hint of a record for p; logged when it cannot be kept. */
void cluster_hint_add(struct cluster *c, struct peer *p, const void *key, size_t klen,
		      const void *val, size_t vlen, const struct store_version *v, bool tombstone,
		      const struct store_attr *attr);
/* The handoff thread (replays hints every HANDOFF_MS): start returns 0 or
 * -errno; stop wakes it and joins it, and does nothing when none runs. */
int cluster_handoff_start(struct cluster *c);
void cluster_handoff_stop(struct cluster *c);

#endif
