/*
 * sync - hash-tree anti-entropy between two replicas (`caskfs sync A B`, and
 * the mounts' background rounds). Each side is a node (HOST:PORT, over the
 * node protocol) or a DATA_DIR opened here. Two trees are compared from the
 * root down, only into children whose hashes differ; in a leaf bucket the
 * records are matched by key and the newer version of each is copied to the
 * side that lacks it or holds an older one (tombstones included, so a delete
 * is never undone). The same walk serves the store's objects ("data") and the
 * namespace's records ("meta"). Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync_i.h"

struct sync_walk {
	struct fs_sync_ep *a, *b;
	struct progress *bar; /* NULL: none */
	const struct fs_sync_opts *o;
	enum fs_sync_kind kind;
	struct fs_sync_stats st;
	int error;
	double t0;    /* when the walk started, for the rate limit */
	bool stopped; /* o->stop turned true */
};

static uint64_t wire_bytes(struct fs_sync_ep *a, struct fs_sync_ep *b)
{
	uint64_t s, r, total = 0;

	if (a->conn) {
		mc_traffic(a->conn, &s, &r);
		total += s + r;
	}
	if (b->conn) {
		mc_traffic(b->conn, &s, &r);
		total += s + r;
	}
	return total;
}

static void sleep_for(double seconds)
{
	struct timespec ts = { (time_t)seconds, 0 };

	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static void print_key(const struct sync_walk *run, const struct fs_sync_rec *r, const char *dir)
{
	if (!run->o->verbose)
		return;
	if (run->kind == FS_SYNC_DATA) {
		printf("  data %.*s %s\n", (int)r->klen, (const char *)r->key, dir);
	} else {
		char hex[2 * FS_SYNC_TK_MAX + 1];
		auth_hex(r->key, r->klen, hex);
		printf("  meta %s %s\n", hex, dir);
	}
}

/* Copies r from src to dst (unless dry-run) and counts it. */
static void copy(struct sync_walk *run, struct fs_sync_ep *src, struct fs_sync_ep *dst,
		 const struct fs_sync_rec *r, bool a_to_b)
{
	struct store_meta m = { 0 };
	void *val;
	size_t vlen;
	int rc;

	if (a_to_b && run->o->b_to_a_only)
		return; /* a pull: b does not own what it lacks here */
	run->st.differed++;
	if (a_to_b)
		run->st.a_to_b++;
	else
		run->st.b_to_a++;
	print_key(run, r, a_to_b ? "->" : "<-");
	if (run->o->dry_run)
		return;
	if (run->o->rate) {
		/* ahead of the allowed rate: wait until the bytes so far are due */
		double due = run->t0 + (double)run->st.bytes / (double)run->o->rate;
		double now = fs_now_seconds();
		if (due > now)
			sleep_for(due - now);
	}
	uint64_t w0 = wire_bytes(src, dst);
	rc = fs_sync_ep_get(src, run->kind, r, &val, &vlen, &m);
	if (rc == 0) {
		if (run->kind == FS_SYNC_DATA && m.tombstone) {
			free(val);
			val = NULL;
			vlen = 0;
		}
		rc = fs_sync_ep_put(dst, run->kind, r, val, vlen, &m);
		run->st.bytes += vlen;
		free(val);
		if (rc >= 0 && run->o->copied)
			run->o->copied(run->o->copied_arg, vlen);
	}
	run->st.copy_wire += wire_bytes(src, dst) - w0;
	if (rc < 0 && rc != -ENOENT) {
		fprintf(stderr, "caskfs sync: copying %.*s from %s to %s: %s\n",
			run->kind == FS_SYNC_DATA ? (int)r->klen : 0, (const char *)r->key,
			src->name, dst->name, strerror(-rc));
		run->error = rc;
	}
}

static int cmp_rec(const void *x, const void *y)
{
	const struct fs_sync_rec *a = x, *b = y;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->key, b->key, n);
	return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

static void compare_bucket(struct sync_walk *run, const uint8_t *path, struct fs_sync_reclist *la,
			   struct fs_sync_reclist *lb)
{
	int rc = fs_sync_ep_bucket(run->a, run->kind, path, la);

	if (rc == 0)
		rc = fs_sync_ep_bucket(run->b, run->kind, path, lb);
	run->st.queries += 2;
	if (rc < 0) {
		run->error = rc;
		return;
	}
	if (la->n) /* an empty list has no array: qsort(NULL, 0) is undefined */
		qsort(la->r, la->n, sizeof(*la->r), cmp_rec);
	if (lb->n)
		qsort(lb->r, lb->n, sizeof(*lb->r), cmp_rec);
	size_t i = 0, j = 0;
	while (i < la->n || j < lb->n) {
		int c = i == la->n ? 1 : j == lb->n ? -1 : cmp_rec(&la->r[i], &lb->r[j]);
		if (c < 0) {
			copy(run, run->a, run->b, &la->r[i++], true);
		} else if (c > 0) {
			copy(run, run->b, run->a, &lb->r[j++], false);
		} else {
			int v = store_version_cmp(&la->r[i].v, &lb->r[j].v);
			if (v > 0)
				copy(run, run->a, run->b, &la->r[i], true);
			else if (v < 0)
				copy(run, run->b, run->a, &lb->r[j], false);
			i++;
			j++;
		}
	}
}

static void walk(struct sync_walk *run, uint8_t *path, int depth, struct fs_sync_reclist *la,
		 struct fs_sync_reclist *lb)
{
	struct store_tree_node sa, sb, ka[16], kb[16];
	int rc = fs_sync_ep_children(run->a, run->kind, path, depth, &sa, ka);

	if (rc == 0)
		rc = fs_sync_ep_children(run->b, run->kind, path, depth, &sb, kb);
	run->st.queries += 2;
	if (rc < 0) {
		run->error = rc;
		return;
	}
	for (int k = 0; k < 16 && !run->error && !run->stopped; k++) {
		if (run->o->stop && *run->o->stop) {
			run->stopped = true;
			break;
		}
		if (run->bar && depth <= 1)
			progress_step(run->bar, depth == 0 ? (uint64_t)k * 16
							   : (uint64_t)path[0] * 16 + (uint64_t)k);
		if (ka[k].hash == kb[k].hash && ka[k].count == kb[k].count)
			continue;
		path[depth] = (uint8_t)k;
		if (depth + 1 == STORE_TREE_DEPTH)
			compare_bucket(run, path, la, lb);
		else
			walk(run, path, depth + 1, la, lb);
	}
}

static int roots(struct fs_sync_ep *a, struct fs_sync_ep *b, enum fs_sync_kind k, uint64_t *ra,
		 uint64_t *rb)
{
	struct store_tree_node sa, sb, kids[16];
	int rc = fs_sync_ep_children(a, k, NULL, 0, &sa, kids);

	if (rc == 0)
		rc = fs_sync_ep_children(b, k, NULL, 0, &sb, kids);
	*ra = sa.hash;
	*rb = sb.hash;
	return rc;
}


/* Syncs one kind; returns 0 when equal at the end, 1 when not, <0 on error. */
int fs_sync_run(struct fs_sync_ep *a, struct fs_sync_ep *b, enum fs_sync_kind k,
		const struct fs_sync_opts *o, struct fs_sync_stats *out)
{
	struct sync_walk run = { .a = a, .b = b, .kind = k, .o = o, .t0 = fs_now_seconds() };
	const bool dry_run = o->dry_run, quiet = o->quiet;
	struct progress bar;
	if (!quiet) {
		progress_start(&bar, k == FS_SYNC_DATA ? "sync data" : "sync meta", 256);
		run.bar = &bar;
	}
	struct fs_sync_reclist la = { 0 }, lb = { 0 };
	uint8_t path[STORE_TREE_DEPTH] = { 0 };
	uint64_t ra, rb, w0 = wire_bytes(a, b);
	struct timespec ts0, ts1;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &ts0);
	rc = roots(a, b, k, &ra, &rb);
	if (rc < 0)
		return rc;
	if (ra != rb) {
		walk(&run, path, 0, &la, &lb);
		if (!run.error && !dry_run)
			run.error = roots(a, b, k, &ra, &rb);
	}
	free(la.r);
	free(lb.r);
	if (run.bar)
		progress_end(run.bar);
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	uint64_t wire = wire_bytes(a, b) - w0;
	if (!quiet)
		printf("%s: %" PRIu64 " differed (%" PRIu64 " %s, %" PRIu64 " %s), %" PRIu64
		       " bytes of values, %" PRIu64 " bytes on the wire (%" PRIu64
		       " for the trees), %.3f s; %s\n",
		       k == FS_SYNC_DATA ? "data" : "meta", run.st.differed, run.st.a_to_b,
		       dry_run ? "newer on A" : "A->B", run.st.b_to_a,
		       dry_run ? "newer on B" : "B->A", run.st.bytes, wire, wire - run.st.copy_wire,
		       (double)(ts1.tv_sec - ts0.tv_sec) +
			   (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9,
		       ra == rb ? "equal" : "NOT equal");
	if (out)
		*out = run.st;
	if (run.error)
		return run.error;
	return ra == rb ? 0 : 1;
}
