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

/* Without a->peers: 0 and *out NULL. Otherwise starts pushing m's outbox to
 * the peers of n's cluster (authenticated with n's key): 0, -ENOMEM or
 * -EAGAIN (no thread). */
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

/* One side of a walk: a node, a DATA_DIR opened here, or this mount's own. */
struct fs_sync_ep {
	char name[300];			 /* for messages */
	struct mc_conn *conn;		 /* a node, or NULL */
	struct store *s;		 /* a DATA_DIR, or this mount's own */
	struct meta *m;			 /* its namespace, or NULL (none, or not asked for) */
	const struct fs_repl_sink *sink; /* this mount: records go through fs_repl_apply */
	bool owned;			 /* s and m were opened here */
};

struct fs_sync_stats {
	uint64_t differed, a_to_b, b_to_a, bytes, queries;
	uint64_t copy_wire; /* bytes on the wire moving records (the rest is the trees) */
};

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

/*
 * Compares the trees of kind k on a and b from the root down, only into
 * children that differ, and copies the newer version of each differing
 * record to the side that lacks it (nothing with dry_run; every key printed
 * with verbose). Unless quiet, a progress bar and a summary line on stdout.
 * Returns 0 when equal at the end, 1 when not, or a negative errno; fills
 * out (may be NULL).
 */
int fs_sync_run(struct fs_sync_ep *a, struct fs_sync_ep *b, enum fs_sync_kind k, bool dry_run,
		bool verbose, bool quiet, struct fs_sync_stats *out);

/* ---- ae.c: background anti-entropy rounds ---- */

struct fs_ae;

/* Without a->peers or a->sync_interval_s: 0 and *out NULL. Otherwise every
 * a->sync_interval_s compares store s and sink->meta with each peer of n's
 * cluster and repairs both sides, records for here through sink: 0 or
 * -ENOMEM. */
int fs_ae_start(struct store *s, const struct fs_repl_sink *sink, const struct node *n,
		const struct node_args *a, struct fs_ae **out);
void fs_ae_stop(struct fs_ae *ae);

#endif
