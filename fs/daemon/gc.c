/*
 * gc - garbage collection of chunks, for a mount's `mgc` and for `caskfs gc`
 * on a DATA_DIR not in use (fs/cli/gc.c). Mark: every chunk the namespace
 * names (every node keeps the whole namespace) and, on a mount, every chunk
 * of a file open here. Sweep: every unmarked chunk on this node or a peer
 * older than the grace period (so an upload not committed yet is never
 * taken) gets a tombstone on all its replicas, which anti-entropy spreads
 * instead of bringing the chunk back. Then the log is compacted.
 * docs/OPERATIONS.md ("Garbage collection").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon_i.h"
#include "store/node/client.h"
#include "store/node/proto.h"

/* An open-addressing set of chunk ids. */
struct idset {
	uint8_t (*slot)[META_CHUNK_KEY];
	size_t cap, n;
};

static uint64_t id_hash(const uint8_t *id)
{
	uint64_t h;
	memcpy(&h, id, 8);
	return h;
}

static int idset_add(struct idset *s, const uint8_t *id)
{
	if ((s->n + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint8_t(*n)[META_CHUNK_KEY] = calloc(cap, META_CHUNK_KEY);
		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			if (fs_chunk_is_hole(s->slot[i]))
				continue;
			size_t j = id_hash(s->slot[i]) & (cap - 1);
			while (!fs_chunk_is_hole(n[j]))
				j = (j + 1) & (cap - 1);
			memcpy(n[j], s->slot[i], META_CHUNK_KEY);
		}
		free(s->slot);
		s->slot = n;
		s->cap = cap;
	}
	size_t j = id_hash(id) & (s->cap - 1);
	while (!fs_chunk_is_hole(s->slot[j])) {
		if (memcmp(s->slot[j], id, META_CHUNK_KEY) == 0)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	memcpy(s->slot[j], id, META_CHUNK_KEY);
	s->n++;
	return 0;
}

static bool idset_has(const struct idset *s, const uint8_t *id)
{
	if (!s->cap)
		return false;
	size_t j = id_hash(id) & (s->cap - 1);
	while (!fs_chunk_is_hole(s->slot[j])) {
		if (memcmp(s->slot[j], id, META_CHUNK_KEY) == 0)
			return true;
		j = (j + 1) & (s->cap - 1);
	}
	return false;
}

static int mark_inode(void *arg, const struct meta_inode *in)
{
	for (uint32_t i = 0; i < in->nchunks; i++)
		if (!meta_chunk_reserved(&in->chunks[i]) && idset_add(arg, in->chunks[i].key) < 0)
			return -ENOMEM;
	return 0;
}

/* The chunks of files open on this mount, committed or not. */
static int mark_open_files(struct fs *fs, struct idset *set)
{
	int rc = 0;

	pthread_mutex_lock(&fs->files_mu);
	for (struct fs_file *f = fs_file_next_locked(fs, NULL); f && rc == 0;
	     f = fs_file_next_locked(fs, f)) {
		pthread_mutex_lock(&f->mu);
		for (uint32_t i = 0; i < f->map.n && rc == 0; i++)
			if (!meta_chunk_reserved(&f->map.v[i]))
				rc = idset_add(set, f->map.v[i].key);
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_unlock(&fs->files_mu);
	return rc;
}

/* A chunk key "c/<32 hex>" to its id; false for other keys. */
static bool key_id(const char *key, size_t klen, uint8_t id[META_CHUNK_KEY])
{
	return klen == FS_CHUNK_KEY_LEN && key[0] == 'c' && key[1] == '/' &&
	       auth_unhex(key + 2, 2 * META_CHUNK_KEY, id, META_CHUNK_KEY);
}

struct sweep {
	struct idset *marked;
	struct idset seen; /* candidates already handled (a chunk is on several nodes) */
	struct cluster *cluster;
	uint64_t cutoff; /* stamps below this are older than the grace period */
	bool dry_run;
	struct fs_gc_result *r;
	struct progress *bar;
	int error;
};

/* local: the chunk was found in this node's store (its bytes are counted) */
static void consider(struct sweep *sw, const char *key, size_t klen, uint64_t stamp, bool local)
{
	uint8_t id[META_CHUNK_KEY];

	if (!key_id(key, klen, id) || idset_has(&sw->seen, id))
		return;
	idset_add(&sw->seen, id);
	sw->r->chunks++;
	if (sw->bar)
		progress_step(sw->bar, sw->r->chunks);
	if (idset_has(sw->marked, id))
		return;
	if (stamp >= sw->cutoff) {
		sw->r->young++;
		return;
	}
	sw->r->garbage++;
	struct store_meta m; /* the size, only of what goes: the header is a read */
	if (local && store_stat(cluster_local(sw->cluster), key, klen, &m) == 0)
		sw->r->garbage_bytes += m.size;
	if (sw->dry_run)
		return;
	int rc = cluster_delete(sw->cluster, key, klen);
	if (rc == 0 || rc == -ENOENT)
		sw->r->deleted++;
	else
		sw->error = rc;
}

static int local_chunk(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	consider(arg, key, klen, m->version.stamp, true);
	return 0;
}

static int peer_chunk(void *arg, const char *line, size_t len)
{
	struct sweep *sw = arg;
	char key[PROTO_KEY_MAX + 1];
	uint64_t stamp;

	(void)len;
	/* KEY STAMP NODE HASH [T] */
	if (sscanf(line, "%250s %" SCNu64, key, &stamp) == 2 && !strstr(line, " T"))
		consider(sw, key, strlen(key), stamp, false);
	return 0;
}

int fs_gc(struct store *s, struct meta *m, struct cluster *c, struct fs *fs,
	  const struct auth_key *key, uint64_t grace_ms, bool dry_run, struct fs_gc_result *r)
{
	struct idset marked = { 0 };
	struct sweep sw = { .marked = &marked, .cluster = c, .dry_run = dry_run, .r = r };
	struct store_stats before, after;
	struct node_peers pl;
	int rc;

	memset(r, 0, sizeof(*r));
	/* the cutoff first: anything stored from now on is young by definition */
	uint64_t now = store_clock_now(store_clock(s));
	uint64_t grace = grace_ms << 16;
	sw.cutoff = now > grace ? now - grace : 0;
	if (fs) /* an unlinked file the kernel forgot references nothing */
		fs_purge_flush(fs);
	rc = meta_scan_inodes(m, mark_inode, &marked);
	if (rc == 0 && fs)
		rc = mark_open_files(fs, &marked);
	if (rc < 0)
		goto out;
	r->referenced = marked.n;
	store_stats(s, &before);
	struct progress bar;
	if (!fs) { /* the command itself, not a node answering mgc */
		progress_start(&bar, "gc: sweep", before.keys);
		sw.bar = &bar;
	}
	rc = store_scan(s, "c/", 2, false, local_chunk, &sw);
	node_peers_list(c, &pl);
	for (int i = 0; rc == 0 && i < pl.n; i++) {
		struct mc_conn *conn;
		if (mc_connect(pl.addr[i], key, 1000, 30000, &conn) < 0) {
			fprintf(stderr, "caskfs gc: %s is unreachable: its chunks wait for the next gc\n",
				pl.addr[i]);
			r->peers_missed++;
			continue;
		}
		if (mc_lines(conn, "xls c/", peer_chunk, &sw) < 0)
			r->peers_missed++;
		mc_close(conn);
	}
	if (sw.bar)
		progress_end(sw.bar);
	if (rc == 0 && sw.error)
		rc = sw.error;
	if (rc == 0 && !dry_run && r->deleted) {
		/* the garbage is likely in the active segment too: seal it first */
		int n = store_roll(s);
		if (n == 0)
			n = store_compact(s, true);
		if (n < 0)
			rc = n;
		else
			r->segments_compacted = (uint64_t)n;
	}
	store_stats(s, &after);
	/* the disk space freed, net of what writers added meanwhile: everything
	 * appended since, except compaction's copies of live records, was theirs */
	uint64_t written = (after.appended - before.appended) -
			   (after.compacted_bytes - before.compacted_bytes);
	int64_t net = (int64_t)before.disk_bytes + (int64_t)written - (int64_t)after.disk_bytes;
	r->reclaimed_bytes = net > 0 ? (uint64_t)net : 0;
out:
	free(marked.slot);
	free(sw.seen.slot);
	return rc;
}

/* The node command: mgc GRACE_MS [dry]. */
void fs_gc_command(struct fs *fs, const struct proto_req *r, server_emit_fn emit, void *ctx)
{
	const char *t[2];
	size_t tl[2], pos = 0;
	int n = 0;
	char out[512];
	struct fs_gc_result res;

	while (n < 2 && proto_token(r->args, r->args_len, &pos, &t[n], &tl[n]))
		n++;
	uint64_t grace = n ? strtoull(t[0], NULL, 10) : 3600000;
	bool dry = n == 2 && tl[1] == 3 && memcmp(t[1], "dry", 3) == 0;
	int rc = fs_gc(fs->store, fs->meta, fs->node.cluster, fs,
		       fs->node.have_key ? &fs->node.key : NULL, grace, dry, &res);
	if (rc < 0) {
		snprintf(out, sizeof(out), "SERVER_ERROR gc: %s\r\n", strerror(-rc));
	} else {
		snprintf(out, sizeof(out),
			 "STAT referenced %" PRIu64 "\r\nSTAT chunks %" PRIu64
			 "\r\nSTAT young %" PRIu64 "\r\nSTAT garbage %" PRIu64
			 "\r\nSTAT garbage_bytes %" PRIu64 "\r\nSTAT deleted %" PRIu64
			 "\r\nSTAT segments_compacted %" PRIu64 "\r\nSTAT reclaimed_bytes %" PRIu64
			 "\r\nSTAT peers_missed %" PRIu64 "\r\nEND\r\n",
			 res.referenced, res.chunks, res.young, res.garbage, res.garbage_bytes,
			 res.deleted, res.segments_compacted, res.reclaimed_bytes, res.peers_missed);
	}
	emit(ctx, out, strlen(out));
}
