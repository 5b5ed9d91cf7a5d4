/*
 * cluster.h - the quorum client: objects placed on N of the cluster's nodes by
 * rendezvous hashing, a put acknowledged by W of them, a get answered by the
 * first replica holding the key (the local one first). Replicas that missed a
 * write get it later from a durable hint kept by the writer (hinted handoff);
 * a read that met a missing or older replica repairs it.
 *
 * With no peers the cluster is this node alone (N = W = R = 1) and every call
 * goes straight to the local store. Thread-safe. Protocol: docs/PROTOCOL.md.
 */
#ifndef CASKFS_STORE_CLUSTER_H
#define CASKFS_STORE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "../store.h"

#define CLUSTER_MAX_NODES 64

struct cluster_options {
	const char *self;  /* this node's HOST:PORT as its peers name it; NULL: no peers */
	const char *peers; /* comma-separated HOST:PORT of the other nodes, or NULL */
	int replicas, write_quorum, read_quorum; /* N, W, R; 0 for the defaults 3, 2, 1 */
	int connect_ms, io_ms;			 /* per-request timeouts; 0: 300 and 800 */
	const struct auth_key *key;		 /* the shared secret, or NULL */
	const char *data_dir; /* hints live in DATA_DIR/handoff/ */
	bool no_background;   /* no handoff thread (tests drive cluster_handoff()) */
};

struct cluster_stats {
	int nodes, n, w, r;
	uint64_t puts, put_failures, gets, get_misses, read_repairs;
	uint64_t hints_queued, hints_replayed, hints_pending; /* records */
	uint64_t hint_bytes_pending;
};

struct cluster;

/*
 * Opens the quorum client over local (the caller keeps owning it; it must
 * outlive the cluster). Errors: -EINVAL for a malformed address or option
 * (logged to stderr), -ENOMEM, or the errno of creating DATA_DIR/handoff.
 */
int cluster_open(struct store *local, const struct cluster_options *opt, struct cluster **out);
/* Stops the handoff thread and closes peer connections. NULL is fine. */
void cluster_close(struct cluster *c);

/* Stores val under key on the key's replicas, stamped by this node.
 * Errors: -EIO when fewer than W replicas acknowledged (logged, naming them),
 * and the local store's errors for bad keys or values. */
int cluster_put(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen);
/* Writes a tombstone on the key's replicas. -ENOENT when no replica asked had
 * a live value (nothing is written then). */
int cluster_delete(struct cluster *c, const void *key, size_t klen);
/* Reads key from its first replica that answers with a record; *val is
 * malloc'd. Errors: -ENOENT, -EBADMSG (every copy found failed its checksum),
 * -EIO when no replica could be asked. */
int cluster_get(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		struct store_meta *meta);
/* Describes key's record on its first replica that has one, without the
 * value: 0 live, -ENOENT (meta->tombstone set when deleted), -EIO. */
int cluster_stat(struct cluster *c, const void *key, size_t klen, struct store_meta *meta);
/* Like cluster_get(), into buf of cap bytes (-ERANGE when it is too small).
 * meta (may be NULL) describes the copy read; its segment is 0 when the copy
 * came from a peer. */
int cluster_read(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
		 size_t *vlen, struct store_meta *meta);
/* The local store the cluster was opened over. */
struct store *cluster_local(struct cluster *c);

/* Whether this node is one of key's replicas. */
bool cluster_is_replica(struct cluster *c, const void *key, size_t klen);
/* Replays pending hints to the peers that answer now; returns the number of
 * records delivered. The handoff thread calls it twice a second. */
int cluster_handoff(struct cluster *c);
/* Makes queued hints durable (fsync). */
int cluster_sync(struct cluster *c);

void cluster_stats(struct cluster *c, struct cluster_stats *st);
/* "N=3 W=2 R=1 over 3 nodes" or the single-node equivalent. */
void cluster_describe(struct cluster *c, char *buf, size_t cap);
/* Calls fn for every node: its address, whether it is this node, whether it
 * is believed up, and the hints pending for it. */
typedef void (*cluster_peer_fn)(void *arg, const char *addr, bool self, bool up,
				uint64_t hints);
void cluster_peers(struct cluster *c, cluster_peer_fn fn, void *arg);

#endif
