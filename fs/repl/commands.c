/*
 * commands - the namespace commands a mount's node answers (docs/PROTOCOL.md):
 * mput applies records from peers under the last-writer-wins rule
 * (meta_apply) and tells the sink what each one changed, so a mount
 * invalidates the kernel's caches of it and readers there see the change at
 * once; mtree and mget answer the tree walk of `caskfs sync` and of the
 * background rounds; and the namespace's numbers for `stats` and /metrics.
 * Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_i.h"
#include "store/node/auth.h"
#include "store/endian.h"
#include "store/node/proto.h"

/* mput BYTES: records, each le32 length then the wire record. */
static void handle_mput(const struct fs_repl_sink *sink, const struct proto_req *r,
			server_emit_fn emit, void *ctx)
{
	const uint8_t *p = r->data, *end = r->data + r->data_len;
	unsigned applied = 0, seen = 0;
	char line[96];
	int rc = 0;

	while (p < end) {
		if (end - p < 4 || get_le32(p) > (size_t)(end - p - 4)) {
			rc = -EBADMSG;
			break;
		}
		uint32_t len = get_le32(p);
		struct meta_change chg;
		rc = meta_apply(sink->meta, p + 4, len, &chg);
		if (rc < 0)
			break;
		if (rc == 1) {
			applied++;
			if (sink->changed)
				sink->changed(sink->arg, &chg);
		}
		seen++;
		p += 4 + len;
	}
	if (r->noreply)
		return;
	if (rc < 0)
		snprintf(line, sizeof(line), "SERVER_ERROR record %u: %s\r\n", seen,
			 rc == -EBADMSG ? "malformed namespace record" : strerror(-rc));
	else
		snprintf(line, sizeof(line), "STORED %u %u\r\n", seen, applied);
	emit(ctx, line, strlen(line));
}

int fs_repl_apply(const struct fs_repl_sink *sink, const uint8_t *rec, size_t len)
{
	struct meta_change chg;
	int rc = meta_apply(sink->meta, rec, len, &chg);

	if (rc == 1 && sink->changed)
		sink->changed(sink->arg, &chg);
	return rc;
}

/* Replies with text (or bytes) as the value of a get of name. */
static void emit_value(server_emit_fn emit, void *ctx, const char *name, const void *p, size_t n)
{
	char head[600];
	int hl = snprintf(head, sizeof(head), "VALUE %s 0 %zu\r\n", name, n);

	emit(ctx, head, (size_t)hl);
	emit(ctx, p, n);
	emit(ctx, "\r\nEND\r\n", 7);
}

static int bucket_line(void *arg, const uint8_t *tk, size_t tklen, const struct store_version *v,
		       uint64_t leaf, bool deleted)
{
	struct server_text *t = arg;
	char hex[2 * (1 + 16 + META_NAME_MAX) + 1];

	if (tklen > 1 + 16 + META_NAME_MAX)
		return 0;
	auth_hex(tk, tklen, hex);
	server_text_fmt(t, "%.*s %" PRIu64 " %" PRIu32 " %016" PRIx64 "%s\n", (int)(2 * tklen), hex,
			v->stamp, v->node, leaf, deleted ? " T" : "");
	return t->oom ? -ENOMEM : 0;
}

/* mtree [PATH]: the namespace tree, as `get @PATH` shows the store's. */
static void handle_mtree(struct meta *m, const char *path, size_t plen, server_emit_fn emit,
			 void *ctx)
{
	uint8_t nib[STORE_TREE_DEPTH];
	struct store_tree_node self, kids[16];
	struct server_text t = { 0 };
	char name[16] = "@m";
	int rc = 0;

	if (proto_tree_path(path, plen, nib, STORE_TREE_DEPTH) < 0)
		rc = -EINVAL;
	else
		memcpy(name + 2, path, plen);
	if (rc == 0 && plen == STORE_TREE_DEPTH) {
		rc = meta_tree_bucket(m, nib, bucket_line, &t);
	} else if (rc == 0) {
		rc = meta_tree_children(m, nib, (int)plen, &self, kids);
		if (rc == 0)
			server_text_tree_node(&t, &self, kids);
	}
	if (rc == 0 && t.oom)
		rc = -ENOMEM;
	if (rc < 0) {
		char line[96];
		snprintf(line, sizeof(line), "CLIENT_ERROR bad tree path (%s)\r\n", strerror(-rc));
		emit(ctx, line, strlen(line));
	} else {
		emit_value(emit, ctx, name, t.p ? t.p : "", t.len);
	}
	free(t.p);
}

/* mget HEXKEY: the wire record of (table byte + key). */
static void handle_mget(struct meta *m, const char *hex, size_t hlen, server_emit_fn emit, void *ctx)
{
	uint8_t tk[1 + 16 + META_NAME_MAX], *rec;
	size_t len;
	char name[2 * sizeof(tk) + 1];

	if (hlen < 4 || hlen > 2 * sizeof(tk) || hlen % 2 || !auth_unhex(hex, hlen, tk, hlen / 2)) {
		emit(ctx, "CLIENT_ERROR bad namespace key\r\n", 33);
		return;
	}
	int rc = meta_get_record(m, tk, hlen / 2, &rec, &len);
	if (rc == -ENOENT || rc == -EINVAL) {
		emit(ctx, "END\r\n", 5);
		return;
	}
	if (rc < 0) {
		char line[96];
		snprintf(line, sizeof(line), "SERVER_ERROR %s\r\n", strerror(-rc));
		emit(ctx, line, strlen(line));
		return;
	}
	memcpy(name, hex, hlen);
	name[hlen] = 0;
	emit_value(emit, ctx, name, rec, len);
	free(rec);
}

void fs_repl_stats(struct meta *m, bool metrics, server_emit_fn emit, void *ctx)
{
	struct meta_stats ms;
	struct store_tree_node root, kids[16];
	uint64_t last, pending;
	char out[1024];
	int n;

	if (meta_stats(m, &ms) < 0)
		memset(&ms, 0, sizeof(ms));
	meta_outbox_state(m, &last, &pending);
	if (meta_tree_children(m, NULL, 0, &root, kids) < 0)
		memset(&root, 0, sizeof(root));
	if (metrics)
		n = snprintf(out, sizeof(out),
			     "# HELP caskfs_meta_inodes inodes in the namespace\n"
			     "# TYPE caskfs_meta_inodes gauge\ncaskfs_meta_inodes %" PRIu64 "\n"
			     "# HELP caskfs_meta_entries live directory entries\n"
			     "# TYPE caskfs_meta_entries gauge\ncaskfs_meta_entries %" PRIu64 "\n"
			     "# HELP caskfs_meta_outbox_pending namespace records not yet pushed to every peer\n"
			     "# TYPE caskfs_meta_outbox_pending gauge\ncaskfs_meta_outbox_pending %" PRIu64
			     "\n",
			     ms.inodes, ms.entries, pending);
	else
		n = snprintf(out, sizeof(out),
			     "STAT caskfs_meta_inodes %" PRIu64 "\r\nSTAT caskfs_meta_entries %" PRIu64
			     "\r\nSTAT caskfs_meta_tombstones %" PRIu64
			     "\r\nSTAT caskfs_meta_outbox_pending %" PRIu64
			     "\r\nSTAT caskfs_meta_tree_root %016" PRIx64 "\r\n",
			     ms.inodes, ms.entries, ms.tombstones, pending, root.hash);
	emit(ctx, out, (size_t)n);
}

void fs_repl_command(const struct fs_repl_sink *sink, const struct proto_req *r,
		     server_emit_fn emit, void *ctx)
{
	const char *tok = "";
	size_t tlen = 0, pos = 0;

	if (r->cmd == PROTO_MPUT) {
		handle_mput(sink, r, emit, ctx);
		return;
	}
	proto_token(r->args, r->args_len, &pos, &tok, &tlen);
	if (r->key_len == 5 && memcmp(r->key, "mtree", 5) == 0)
		handle_mtree(sink->meta, tok, tlen, emit, ctx);
	else
		handle_mget(sink->meta, tok, tlen, emit, ctx);
}
