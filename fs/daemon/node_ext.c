/*
 * node_ext - what a mount adds to its node's server (store/server.h): the
 * extension commands, mput, mtree and mget for replication (fs/repl) and mgc
 * for garbage collection (gc.c), and its own lines in `stats` and /metrics:
 * the namespace's numbers and the FUSE requests served by operation.
 * Commands: docs/PROTOCOL.md; metrics: docs/OPERATIONS.md ("Monitoring").
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon_i.h"
#include "store/node/proto.h"

void fs_node_ext_command(void *arg, const struct proto_req *r, server_emit_fn emit, void *ctx)
{
	struct fs *fs = arg;

	if (r->cmd != PROTO_MPUT && r->key_len == 3 && memcmp(r->key, "mgc", 3) == 0)
		fs_gc_command(fs, r, emit, ctx);
	else
		fs_repl_command(&fs->sink, r, emit, ctx);
}

/* The FUSE requests this mount has served, by operation (none is left out
 * of metrics; stats list the operations seen). */
static void fuse_request_stats(struct fs *fs, bool metrics, server_emit_fn emit, void *ctx)
{
	char line[160];
	int n;

	if (metrics) {
		static const char head[] =
		    "# HELP caskfs_fuse_requests_total FUSE requests served, by operation\n"
		    "# TYPE caskfs_fuse_requests_total counter\n";
		emit(ctx, head, sizeof(head) - 1);
	}
	for (unsigned op = 0; op < FS_OPCODES; op++) {
		const char *name = fs_opcode_name(op);
		uint64_t v = atomic_load_explicit(&fs->requests[op], memory_order_relaxed);
		if (!name || (!metrics && v == 0))
			continue;
		if (metrics)
			n = snprintf(line, sizeof(line),
				     "caskfs_fuse_requests_total{op=\"%s\"} %" PRIu64 "\n", name, v);
		else
			n = snprintf(line, sizeof(line), "STAT caskfs_fuse_%s %" PRIu64 "\r\n", name, v);
		emit(ctx, line, (size_t)n);
	}
}


void fs_node_ext_stats(void *arg, bool metrics, server_emit_fn emit, void *ctx)
{
	struct fs *fs = arg;

	char line[200];
	uint64_t kept = meta_conflict_count(fs->meta); /* docs/REPLICATION.md */
	int n = metrics ? snprintf(line, sizeof(line),
				   "# HELP caskfs_meta_conflicts conflict copies kept\n"
				   "# TYPE caskfs_meta_conflicts gauge\ncaskfs_meta_conflicts %" PRIu64
				   "\n",
				   kept)
			: snprintf(line, sizeof(line), "STAT caskfs_meta_conflicts %" PRIu64 "\r\n",
				   kept);

	fs_repl_stats(fs->meta, metrics, emit, ctx);
	emit(ctx, line, (size_t)n);
	fuse_request_stats(fs, metrics, emit, ctx);
}
