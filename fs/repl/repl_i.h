/*
 * repl_i.h - the namespace between mounts and between replicas (semantics:
 * docs/REPLICATION.md; commands: docs/PROTOCOL.md). The daemon starts the
 * pusher and the anti-entropy rounds and hands its node's namespace
 * commands here; `caskfs sync` runs the same tree walk. This folder calls
 * meta/, store/ and fs/common only: what a record from a peer changed
 * reaches the mount through the callback it registers in struct
 * fs_repl_sink. The sink, meta, store and struct node given to a start
 * function are the caller's and must outlive it (until the matching stop);
 * the stop functions free what start made and accept NULL.
 */
#ifndef CASKFS_FS_REPL_REPL_I_H
#define CASKFS_FS_REPL_REPL_I_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/common/common_i.h"
#include "meta/meta.h"
#include "store/node/client.h"
#include "store/node/server.h"
#include "store/store.h"

struct proto_req;

/* Told what a record applied from a peer changed (c is valid for the call). */
typedef void (*fs_repl_changed_fn)(void *arg, const struct meta_change *c);

/* Where records from peers go: the namespace, and who is told what each one
 * changed (a mount invalidates the kernel's caches of it). */
struct fs_repl_sink {
	struct meta *meta;
	fs_repl_changed_fn changed; /* NULL: nobody to tell */
	void *arg;		    /* for changed */
};

/* ---- commands.c: the namespace commands a mount's node answers ---- */

/* Applies a wire record from a peer (meta_apply) and tells sink->changed
 * when it changed something: meta_apply's result (1 applied, 0 older than
 * what is here) or its error. */
int fs_repl_apply(const struct fs_repl_sink *sink, const uint8_t *rec, size_t len);
/* Answers mput (records applied to sink), mtree PATH and mget HEXKEY (read
 * from sink->meta): the node server's extension handler for them. */
void fs_repl_command(const struct fs_repl_sink *sink, const struct proto_req *r,
		     server_emit_fn emit, void *ctx);
/* The namespace's numbers (inodes, entries, tombstones, outbox backlog, tree
 * root) as `stats` lines or, with metrics, Prometheus text. */
void fs_repl_stats(struct meta *m, bool metrics, server_emit_fn emit, void *ctx);

/* ---- push.c: the outbox to every peer ---- */

struct fs_repl;

/* Without a->listen: 0 and *out NULL. Otherwise starts pushing m's outbox to
 * the nodes of n's cluster map, as it is each second (authenticated with n's
 * key): 0, -ENOMEM or -EAGAIN (no thread). */
int fs_repl_start(struct meta *m, const struct node *n, const struct node_args *a,
		  struct fs_repl **out);
/* Wakes the pusher (a change was committed). */
void fs_repl_kick(struct fs_repl *rp);
void fs_repl_stop(struct fs_repl *rp);

/* ---- sync.c, sync_ep.c: the tree walk between two replicas ---- */

enum fs_sync_kind {
	FS_SYNC_DATA, /* the store's objects (its hash tree) */
	FS_SYNC_META, /* the namespace's records (its tree) */
};

/* One side of a walk: a node, a DATA_DIR opened here, or this node's own. */
struct fs_sync_ep {
	char name[300];			 /* for messages */
	struct mc_conn *conn;		 /* a node, or NULL */
	struct store *s;		 /* a DATA_DIR, or this node's own */
	struct meta *m;			 /* its namespace, or NULL (none, or not asked for) */
	const struct fs_repl_sink *sink; /* this mount: records go through fs_repl_apply */
	struct cluster *cluster;	 /* this node's own side: its quorum client, else NULL */
	bool owned;			 /* s and m were opened here */
	/* Set by fs_sync_plan(): the objects' walk covers only these buckets. */
	const struct cluster_bucket_set *set; /* a local side: the set; NULL: every bucket */
	char query[320]; /* a node: "DIGEST N SET PEER" for ptree; "": the whole tree */
};

struct fs_sync_stats {
	uint64_t differed, a_to_b, b_to_a, bytes, queries;
	uint64_t copy_wire; /* bytes on the wire moving records (the rest is the trees) */
};

/* ---- plan.c: which buckets a walk covers ---- */

/* The buckets two sides compare, and the map that says so. */
struct fs_sync_plan {
	bool restricted;	       /* false: the whole trees (no map on either side) */
	enum cluster_set_kind kind;    /* as seen from side A */
	uint64_t epoch, digest;	       /* of the map both sides hold */
	uint32_t buckets;	       /* in the set */
	char a_self[256], b_self[256]; /* the sides' addresses in the map */
	struct cluster_bucket_set *a_set, *b_set; /* owned; for local sides */
};

/*
 * Works out the buckets of kind (as seen from a) between sides a and b from
 * their cluster maps (a node's, told over xmap; a DATA_DIR's saved one;
 * this node's own), after making both hold the newer map, and sets a->set or
 * a->query and b's likewise. Without a map on either side the walk covers
 * everything (plan->restricted false). Returns 0; -ESTALE when the two
 * nodes hold different maps even after the exchange (a change under way:
 * try later); -ENOENT when a side is not in the map; -EINVAL when the two
 * place with different N (said); the errors of the exchange.
 * fs_sync_plan_free() in every case.
 */
int fs_sync_plan(struct fs_sync_ep *a, struct fs_sync_ep *b, enum cluster_set_kind kind,
		 struct fs_sync_plan *plan);
void fs_sync_plan_free(struct fs_sync_plan *plan);

/*
 * Opens target as a side: the DATA_DIR of a running node (asked over its
 * control socket), a DATA_DIR not in use (opened, with its namespace when
 * need_meta and it has one), or HOST:PORT (authenticated with key, which may
 * be NULL). 0, -EINVAL (neither a directory nor HOST:PORT), or the error of
 * the open or connect, said on stderr. fs_sync_ep_close(e) afterwards in
 * either case.
 */
int fs_sync_ep_open(struct fs_sync_ep *e, const char *target, const struct auth_key *key,
		    bool need_meta);
void fs_sync_ep_close(struct fs_sync_ep *e);

/* How a walk runs. */
struct fs_sync_opts {
	bool dry_run;	    /* report, copy nothing */
	bool verbose;	    /* print every differing key */
	bool quiet;	    /* no progress bar and no summary line */
	bool b_to_a_only;   /* copy only towards a (a rebalancing pull) */
	uint64_t rate;	    /* bytes of values per second at most; 0: no limit */
	_Atomic bool *stop; /* when it turns true the walk ends early (may be NULL) */
	/* told of every record copied (value bytes), e.g. to show progress; may be NULL */
	void (*copied)(void *arg, size_t bytes);
	void *copied_arg;
};

/*
 * Compares the trees of kind k on a and b from the root down (for objects,
 * over the buckets fs_sync_plan() set, if it was called), only into
 * children that differ, and copies the newer version of each differing
 * record to the side that lacks it (nothing with o->dry_run; every key
 * printed with o->verbose). Unless o->quiet, a progress bar and a summary
 * line on stdout. Returns 0 when equal at the end, 1 when not, or a
 * negative errno; fills out (may be NULL).
 */
int fs_sync_run(struct fs_sync_ep *a, struct fs_sync_ep *b, enum fs_sync_kind k,
		const struct fs_sync_opts *o, struct fs_sync_stats *out);

/* ---- ae.c: background anti-entropy rounds ---- */

struct fs_ae;

/* Without a->listen: 0 and *out NULL (not a node of a cluster). Otherwise
 * starts the rebalancer and, with a->sync_interval_s, every that many
 * seconds compares store s (over the buckets both own) and sink->meta
 * (sink NULL: a node without a namespace) with each peer of n's cluster map
 * and repairs both sides, records for here through sink: 0 or -ENOMEM. */
int fs_ae_start(struct store *s, const struct fs_repl_sink *sink, const struct node *n,
		const struct node_args *a, struct fs_ae **out);
void fs_ae_stop(struct fs_ae *ae);

/* ---- rebalance.c: moving buckets after a change of the cluster map ---- */

struct fs_rebalance;

/* Starts the rebalancer of store s and cluster c (authenticating with key,
 * may be NULL; a->rebalance_mib its rate): 0 or -ENOMEM. */
int fs_rebalance_start(struct store *s, struct cluster *c, const struct auth_key *key,
		       const struct node_args *a, struct fs_rebalance **out);
void fs_rebalance_stop(struct fs_rebalance *rb);

#endif
