/*
 * repl_i.h - the namespace between mounts and between replicas (semantics:
 * docs/REPLICATION.md; commands: docs/PROTOCOL.md). The daemon (fs/daemon)
 * starts the pusher and the background anti-entropy rounds and hands its
 * node's namespace commands here; `caskfs sync` (fs/cli) runs the same tree
 * walk between two replicas. This folder calls meta/, store/ and fs/common
 * only: what a record from a peer changed reaches the mount through the
 * callback the mount registers in struct fs_repl_sink.
 *
 * Ownership: the sink, the meta, the store and the struct node given to a
 * start function are the caller's and must outlive the pusher or the rounds
 * (until the matching stop); the stop functions free what start made and
 * accept NULL.
 */
#ifndef CASKFS_FS_REPL_REPL_I_H
#define CASKFS_FS_REPL_REPL_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fs/common/common_i.h"
#include "meta/meta.h"
#include "store/server.h"
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

/* ---- sync.c: background anti-entropy rounds ---- */

struct fs_ae;

/* Without a->peers or a->sync_interval_s: 0 and *out NULL. Otherwise every
 * a->sync_interval_s compares store s and sink->meta with each peer of n's
 * cluster and repairs both sides, records for here through sink: 0 or
 * -ENOMEM. */
int fs_ae_start(struct store *s, const struct fs_repl_sink *sink, const struct node *n,
		const struct node_args *a, struct fs_ae **out);
void fs_ae_stop(struct fs_ae *ae);

#endif
