/*
 * cluster.h - the quorum client: keys fall into CLUSTER_BUCKETS buckets (the
 * leaves of the store's hash tree), each bucket placed on N of the cluster's
 * nodes by rendezvous hashing over the cluster map (cmap.h); a put is
 * acknowledged by W of them, a get answered by the first replica holding
 * the key (the local one first, then, while buckets move, their previous
 * owners). Replicas that missed a write get it later from a durable hint
 * kept by the writer (hinted handoff); a read that met a missing or older
 * replica repairs it. The map is learnt from peers and kept in
 * DATA_DIR/cluster.map; a background thread replays hints and gossips maps.
 * Conditional and read-modify-write operations (cas, add, append, incr,
 * touch...) are decided by one node per key, the first owner of its bucket
 * in the view in force, under a per-key lock (cluster_decide()).
 *
 * With no peers the cluster is this node alone (N = W = R = 1) and every call
 * goes straight to the local store. Thread-safe. Protocol: docs/PROTOCOL.md;
 * placement and moves: docs/REPLICATION.md.
 */
#ifndef CASKFS_STORE_NODE_CLUSTER_H
#define CASKFS_STORE_NODE_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "../store.h"

/* Most members a map may have (and peers a node tracks at once). */
#define CLUSTER_MAX_NODES 128
/* The buckets keys are placed by: one per leaf of the store's hash tree, so
 * a bucket is a subtree both sides can compare on its own. */
#define CLUSTER_BUCKETS (1u << (4 * STORE_TREE_DEPTH))

struct cmap;

struct cluster_options {
	const char *self;  /* this node's HOST:PORT as its peers name it; NULL: no peers */
	const char *peers; /* comma-separated HOST:PORT of the other nodes, or NULL */
	int replicas, write_quorum, read_quorum; /* N, W, R; 0 for the defaults 3, 2, 1 */
	int connect_ms, io_ms;			 /* per-request timeouts; 0: 300 and 800 */
	const struct auth_key *key;		 /* the shared secret, or NULL */
	const char *data_dir; /* hints in DATA_DIR/handoff/, the map in DATA_DIR/cluster.map */
	bool no_background;   /* no background thread (tests drive cluster_handoff()) */
};

/* How far this node is with the buckets a map change gave it, and with
 * letting go of those it lost (reported by the rebalancer, fs/repl). */
struct cluster_progress {
	uint64_t epoch;			     /* the map epoch being worked on; 0: none */
	uint32_t sources, sources_done;	     /* nodes to take gained buckets from */
	uint64_t objects_in, bytes_in;	     /* records and value bytes taken (total) */
	uint64_t buckets_to_drop;	     /* buckets held here that this node does not own */
	uint64_t objects_out, bytes_out;     /* records handed to owners before letting go */
	uint64_t objects_dropped;	     /* records let go of (total) */
	uint64_t clean_epoch;		     /* holds nothing it does not own, as of this epoch */
	uint64_t passes;		     /* rebalance passes run */
};

struct cluster_stats {
	int nodes, n, w, r; /* members of the map in force, effective N, W, R */
	uint64_t epoch;	    /* of the map in force (0: provisional) */
	int prev_nodes;	    /* previous members (the same as nodes when settled) */
	bool settled;
	uint64_t done_epoch; /* this node holds what it gained up to this epoch */
	uint64_t hints_redirected, gossip_rounds, maps_adopted;
	struct cluster_progress progress;
	uint64_t puts, put_failures, gets, get_misses, read_repairs;
	uint64_t read_repair_bytes; /* value bytes of the copies put back by reads */
	uint64_t hints_queued, hints_replayed, hints_pending; /* records */
	uint64_t hint_bytes_pending;
	uint64_t decided, forwarded; /* decided operations run here, sent to their decider */
};

struct cluster;

/*
 * Opens the quorum client over local. Nothing in opt is kept: the addresses
 * and the key are copied, and data_dir is used only here (to name and count
 * the hint files, creating DATA_DIR/handoff/ when there are peers).
 *   local  the node's store; the caller keeps owning it, and it must outlive
 *          the cluster
 *   out    on success, the cluster, owned by the caller (cluster_close());
 *          NULL on failure
 * Errors: -EINVAL for a malformed address or more than CLUSTER_MAX_NODES
 * nodes (printed to stderr), -ENOMEM, the errno of creating
 * DATA_DIR/handoff (printed), or of starting the handoff thread.
 */
int cluster_open(struct store *local, const struct cluster_options *opt, struct cluster **out);
/* Stops the handoff thread, makes queued hints durable, closes the peer
 * connections and frees c. NULL is fine. */
void cluster_close(struct cluster *c);

/*
 * Stores val (vlen bytes, may be 0) under key (klen bytes) on the key's
 * replicas, with a new version from this node's clock. A replica that did
 * not take it gets a hint (cluster_handoff()). Returns 0 once W replicas
 * acknowledged it. Errors: -EINVAL (klen 0 or > STORE_KEY_MAX, vlen >
 * STORE_VALUE_MAX); -EIO when fewer than W acknowledged (printed to stderr,
 * naming the missing replicas); on a single node, the errors of store_put().
 */
int cluster_put(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen);
/* cluster_put() of a value whose xxh3-64 the caller has computed already
 * (store_put_hashed), used on a node alone; with peers, as cluster_put(). */
int cluster_put_hashed(struct cluster *c, const void *key, size_t klen, const void *val,
		       size_t vlen, uint64_t value_hash);
/* cluster_put() with the object's attributes (attr NULL: none); meta (may be
 * NULL) receives the version written and the attributes. */
int cluster_put_attr(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen,
		     const struct store_attr *attr, struct store_meta *meta);
/* Writes a tombstone for key on its replicas, as cluster_put() writes a
 * value. Errors: -ENOENT when no replica asked has a live value (nothing is
 * written then), the other errors of cluster_stat() and those of
 * cluster_put(); on a single node, those of store_delete(). */
int cluster_delete(struct cluster *c, const void *key, size_t klen);
/*
 * Reads key from its replicas in turn (this node first) and returns the
 * first live copy: 0 with *val (malloc'd, the caller's; free()) and *vlen.
 * meta (may be NULL) describes the copy read. Replicas asked before it that
 * lacked the key or held a damaged copy get the copy back (read repair).
 * Errors: -ENOENT (no replica has a live value; meta->tombstone is set when
 * one holds a tombstone), -EBADMSG (every copy found failed its checksum),
 * -EIO or the connection error of the last replica asked when none could be
 * asked; on a single node, the errors of store_get().
 */
int cluster_get(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		struct store_meta *meta);
/* Like cluster_get(), without the value and without repair: meta (not NULL)
 * describes key's record on the first replica that has one. Returns 0 for a
 * live value, and the errors of cluster_get() (of store_stat() on a single
 * node). */
int cluster_stat(struct cluster *c, const void *key, size_t klen, struct store_meta *meta);
/* Like cluster_get(), into the caller's buf of cap bytes; *vlen receives the
 * value's length. A replica's own copy is read in place. meta (may be NULL)
 * describes the copy read; its segment is 0 when the copy came from a peer.
 * Errors: those of cluster_get(), and -ERANGE when cap is too small. */
int cluster_read(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
		 size_t *vlen, struct store_meta *meta);
/* Like cluster_read(), with the local copy read by store_read_content(): for
 * a value its caller verifies by its own hash of the bytes. */
int cluster_read_content(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
			 size_t *vlen, struct store_meta *meta);
/* Writes a tombstone, on its replicas, for every key this node holds a live
 * copy of (flush_all). *deleted receives how many. Returns 0, or the first
 * error of a write (the others go on); -ENOMEM. */
int cluster_flush(struct cluster *c, uint64_t *deleted);

/*
 * Decided operations: conditional and read-modify-write commands, which
 * must see the newest version and leave no room for another write between
 * the read and the write. The rule (docs/PROTOCOL.md, "Decided operations"):
 * an operation on a key is decided by the first owner of the key's bucket,
 * in the view in force, that is this node or believed up: its primary, or the
 * next one while it is down. A node that is not that replica forwards the
 * operation (xop) to it, and the node that receives an xop decides it (it
 * never forwards again, so a decision waits for no other decision). The
 * decider holds a
 * per-key lock from the read to the acknowledged write; it reads the key
 * from every replica that answers and decides on the newest version, and
 * writes the result with a version newer than that one, through the quorum.
 */
enum cluster_mode {
	CLUSTER_SET,	 /* store the value (with cas: only over that version) */
	CLUSTER_ADD,	 /* only when the key has no live value */
	CLUSTER_REPLACE, /* only when it has one */
	CLUSTER_APPEND,	 /* the value after the current one; flags and expiry kept */
	CLUSTER_PREPEND, /* before it */
	CLUSTER_INCR,	 /* the decimal value plus delta, wrapping at 2^64 */
	CLUSTER_DECR,	 /* minus delta, stopping at 0 */
	CLUSTER_TOUCH,	 /* the same value with a new expiry time */
	CLUSTER_GAT,	 /* touch, and return the value */
	CLUSTER_DELETE,	 /* a tombstone (with cas: only over that version) */
};

struct cluster_op {
	enum cluster_mode mode;
	const void *val; /* SET, ADD, REPLACE, APPEND, PREPEND: the bytes */
	size_t vlen;
	struct store_attr attr; /* SET, ADD, REPLACE: flags and expiry; TOUCH, GAT: expiry */
	bool has_cas;		/* only when the key's version has the stamp cas */
	uint64_t cas;
	uint64_t delta; /* INCR, DECR */
};

enum cluster_status {
	CLUSTER_DONE = 0,    /* stored, touched, deleted */
	CLUSTER_NOT_STORED,  /* ADD over a live value; REPLACE, APPEND, PREPEND of none */
	CLUSTER_EXISTS,	     /* cas given, and the key's version is another */
	CLUSTER_NOT_FOUND,   /* cas given, INCR, DECR, TOUCH, GAT, DELETE: no live value */
	CLUSTER_NOT_NUMERIC, /* INCR, DECR: the value is not a decimal number below 2^64 */
};

struct cluster_result {
	enum cluster_status status;
	struct store_meta meta; /* CLUSTER_DONE: what was written (version: its cas;
				   attr; size), or for EXISTS the current version */
	uint64_t number;	/* INCR, DECR: the new value */
	void *val;		/* GAT: the value (malloc'd, the caller's; free()), else NULL */
	size_t vlen;
};

/*
 * Runs op on key, decided as above, and fills *res. Returns 0 (whatever the
 * status), or: -EINVAL (klen 0 or over STORE_KEY_MAX, a value over
 * STORE_VALUE_MAX), -EFBIG (APPEND or PREPEND would pass PROTO_VALUE_MAX),
 * -EIO (no replica could decide, or the write did not reach W), -ENOMEM,
 * the errors of the local store.
 */
int cluster_decide(struct cluster *c, const void *key, size_t klen, const struct cluster_op *op,
		   struct cluster_result *res);
/* cluster_decide() decided on this node whatever the placement: what a node
 * does with an xop. */
int cluster_decide_local(struct cluster *c, const void *key, size_t klen,
			 const struct cluster_op *op, struct cluster_result *res);
/* The number of nodes of the map in force (1: this node alone); the larger
 * of its members and previous members while a change settles. */
int cluster_nodes(struct cluster *c);
/* The mode's name on the wire (xop) and back: 0 or -EINVAL. */
const char *cluster_mode_name(enum cluster_mode mode);
int cluster_mode_parse(const char *word, size_t len, enum cluster_mode *mode);
/* The status's name on the wire (an xop's reply: DONE, NOT_STORED, ...). */
const char *cluster_status_name(enum cluster_status status);

/* The local store the cluster was opened over (not owned by the cluster). */
struct store *cluster_local(struct cluster *c);

/* Whether this node is one of key's replicas (or was, while its bucket moves). */
bool cluster_is_replica(struct cluster *c, const void *key, size_t klen);
/* Asks each of key's replicas (in placement order, this node's store
 * directly) whether it holds a live copy, without moving the value: fn gets
 * the replica's address ("local" on a single node), whether it is this node,
 * and 1 (holds it), 0 (does not) or a -errno (could not be asked; -EHOSTDOWN
 * for a peer believed down). Returns 0, or -EINVAL for a bad key length. */
typedef void (*cluster_locate_fn)(void *arg, const char *addr, bool self, int state);
int cluster_locate(struct cluster *c, const void *key, size_t klen, cluster_locate_fn fn,
		   void *arg);
/* Replaces the damaged local record of key (version damaged) with a good
 * copy from a peer: the replicas are asked first, then the other nodes; a
 * copy counts when its value matches its hash and check (may be NULL; 0 for
 * good) and its version is not older. Returns 0 once written here
 * (store_repair), -ENOENT when no peer had a good copy, or the error of
 * writing it. */
typedef int (*cluster_check_fn)(void *arg, const void *key, size_t klen, const void *val,
				size_t vlen);
int cluster_repair(struct cluster *c, const void *key, size_t klen,
		   const struct store_version *damaged, cluster_check_fn check, void *check_arg);
/* Replays pending hints to the peers that answer now; a hint file is removed
 * once every record in it was delivered, and a peer that fails keeps the
 * rest for the next call. Returns the number of records delivered. The
 * handoff thread calls it twice a second. */
int cluster_handoff(struct cluster *c);
/* Makes the hints queued so far durable (fsync). Returns 0, or the errno of
 * the last fsync that failed. */
int cluster_sync(struct cluster *c);

/* Fills *st with the counters and settings. */
void cluster_stats(struct cluster *c, struct cluster_stats *st);
/* Writes "N=3 W=2 R=1 over 3 nodes" (or the single-node equivalent) into
 * buf (cap bytes, NUL-terminated, cut short to fit). */
void cluster_describe(struct cluster *c, char *buf, size_t cap);
/* Calls fn for every node, in address order: its address (valid during the
 * call), whether it is this node, whether it is believed up, and the hints
 * pending for it. */
typedef void (*cluster_peer_fn)(void *arg, const char *addr, bool self, bool up, uint64_t hints);
void cluster_peers(struct cluster *c, cluster_peer_fn fn, void *arg);

/* ---- the cluster map and the buckets (docs/REPLICATION.md) ---- */

/* This node's address in the map (its --listen), or "" without one. */
const char *cluster_self(struct cluster *c);
/* Copies the map in force into *out; *done_epoch (may be NULL) receives the
 * epoch whose gained buckets this node holds. */
void cluster_map_get(struct cluster *c, struct cmap *out, uint64_t *done_epoch);
/* Offers a map heard from a peer or an operator: it is taken when newer
 * (cmap_merge()), saved, and passed on to every peer. Returns 1 taken, 0
 * not newer, -EXDEV another cluster's map (logged), -ENOMEM, -ENOSPC. */
int cluster_map_offer(struct cluster *c, const struct cmap *m);
/* Tells the cluster what a peer said of itself in a map exchange: its node
 * id and the epoch whose gained buckets it holds. */
void cluster_peer_heard(struct cluster *c, const char *addr, uint32_t id, uint64_t done_epoch);
/* Records that this node holds what map epoch gave it (saved; gossiped). */
void cluster_map_done(struct cluster *c, uint64_t epoch);
/* Whether source (an address of the map at epoch) was pulled from already
 * for epoch (saved in DATA_DIR/cluster.map, so a restart resumes), and
 * marks it so. mark returns 0 or -ESTALE when the map moved on. */
bool cluster_map_pulled(struct cluster *c, uint64_t epoch, const char *source);
int cluster_map_mark_pulled(struct cluster *c, uint64_t epoch, const char *source);
/* Replaces the rebalancer's progress shown by cluster_stats(). */
void cluster_progress_set(struct cluster *c, const struct cluster_progress *p);

/* A set of buckets: bit b % 64 of bits[b / 64] for bucket b. */
struct cluster_bucket_set {
	uint64_t bits[CLUSTER_BUCKETS / 64];
	uint32_t count;
};

/* Which buckets two nodes A (this side) and B compare or move. */
enum cluster_set_kind {
	CLUSTER_SET_SHARED = 1, /* both own, in the members and (while moving) before */
	CLUSTER_SET_PULL,	/* A gained since the last settled map and B owned before */
	CLUSTER_SET_GIVE,	/* B gained and A owned before: the PULL of B from A */
	CLUSTER_SET_OWNED,	/* A owns, now or before the change under way (B ignored) */
};
/* Parses and names a kind as the protocol spells it ("shared", "pull",
 * "give", "owned"); parse returns 0 for an unknown word. */
enum cluster_set_kind cluster_set_kind_parse(const char *w, size_t len);
const char *cluster_set_kind_name(enum cluster_set_kind k);

/* The bucket of a key (the top 16 bits of store_key_hash()). */
uint32_t cluster_bucket(const void *key, size_t klen);

/*
 * Fills out with the buckets of kind between this node (A) and peer (B,
 * an address of the map) under the map in force; *digest (may be NULL)
 * receives the map's digest (cmap_digest()), which a peer must share for
 * its answer to mean the same set. Returns 0, -ENOENT when this node or
 * peer is in no map, -EINVAL for a bad kind.
 */
int cluster_bucket_set(struct cluster *c, enum cluster_set_kind kind, const char *peer,
		       struct cluster_bucket_set *out, uint64_t *digest);
/* The same for any map and any pair a, b with replicas N (what a DATA_DIR's
 * saved map says, for `caskfs sync` of a directory). Slow: it places every
 * bucket. -ENOENT, -EINVAL, -ENOMEM. */
int cluster_bucket_set_of(const struct cmap *m, int replicas, enum cluster_set_kind kind,
			  const char *a, const char *b, struct cluster_bucket_set *out);
/* The replicas (effective N) this node places with. */
int cluster_replicas(struct cluster *c);
/* Whether bucket is owned by this node in the map in force (prev: also
 * when it was an owner before the change still settling). */
bool cluster_owns_bucket(struct cluster *c, uint32_t bucket, bool prev);
/* The owners of bucket in the map in force, into addrs (cap entries of
 * CLUSTER_ADDR bytes each); returns their count. */
#define CLUSTER_ADDR 256
int cluster_bucket_owners(struct cluster *c, uint32_t bucket, char (*addrs)[CLUSTER_ADDR],
			  int cap);
/* The addresses of the map's members and previous members other than this
 * node, into addrs (cap entries); flags (may be NULL) receive each one's
 * CMAP_* flags. Returns their count. */
int cluster_map_peers(struct cluster *c, char (*addrs)[CLUSTER_ADDR], uint8_t *flags, int cap);

#endif
