/*
 * cluster.h - the quorum client: objects placed on N of the cluster's nodes by
 * rendezvous hashing, a put acknowledged by W of them, a get answered by the
 * first replica holding the key (the local one first). Replicas that missed a
 * write get it later from a durable hint kept by the writer (hinted handoff);
 * a read that met a missing or older replica repairs it. Conditional and
 * read-modify-write operations (cas, add, append, incr, touch...) are decided
 * by one node per key, its primary, under a per-key lock (cluster_decide()).
 *
 * With no peers the cluster is this node alone (N = W = R = 1) and every call
 * goes straight to the local store. Thread-safe. Protocol: docs/PROTOCOL.md.
 */
#ifndef CASKFS_STORE_NODE_CLUSTER_H
#define CASKFS_STORE_NODE_CLUSTER_H

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
	const char *data_dir;			 /* hints live in DATA_DIR/handoff/ */
	bool no_background; /* no handoff thread (tests drive cluster_handoff()) */
};

struct cluster_stats {
	int nodes, n, w, r;
	uint64_t puts, put_failures, gets, get_misses, read_repairs;
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
/* Writes a tombstone, on its replicas, for every key this node holds a live
 * copy of (flush_all). *deleted receives how many. Returns 0, or the first
 * error of a write (the others go on); -ENOMEM. */
int cluster_flush(struct cluster *c, uint64_t *deleted);

/*
 * Decided operations: conditional and read-modify-write commands, which
 * must see the newest version and leave no room for another write between
 * the read and the write. The rule (docs/PROTOCOL.md, "Decided operations"):
 * an operation on a key is decided by the first of the key's replicas, in
 * placement order, that is this node or believed up: its primary, or the
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
/* The number of nodes of the cluster (1: this node alone). */
int cluster_nodes(const struct cluster *c);
/* The mode's name on the wire (xop) and back: 0 or -EINVAL. */
const char *cluster_mode_name(enum cluster_mode mode);
int cluster_mode_parse(const char *word, size_t len, enum cluster_mode *mode);
/* The status's name on the wire (an xop's reply: DONE, NOT_STORED, ...). */
const char *cluster_status_name(enum cluster_status status);

/* The local store the cluster was opened over (not owned by the cluster). */
struct store *cluster_local(struct cluster *c);

/* Whether this node is one of key's replicas. */
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

#endif
