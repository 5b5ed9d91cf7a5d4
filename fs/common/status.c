/*
 * status - the report of `caskfs status DATA_DIR|HOST:PORT [--json]` (and of
 * a mount's /.caskfs/status, which must say the same): what a node holds and
 * how it is doing. A node is asked with `stats`, `stats segments` and `stats
 * peers` (docs/PROTOCOL.md); a DATA_DIR no process holds is opened read-only
 * and the same numbers are computed here. Text for people, --json for tools.
 * The same numbers are on a node's port as Prometheus metrics (GET /metrics).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common_i.h"
#include "meta/meta.h"
#include "store/node/client.h"

#define MAX_STATS 192
#define MAX_SEGS 4096
#define MAX_PEERS 64

struct status {
	struct {
		char name[64];
		char value[80];
	} stat[MAX_STATS];
	int nstat;
	struct store_segment_info seg[MAX_SEGS];
	int nseg;
	struct {
		char addr[256];
		bool up;
		uint64_t hints;
	} peer[MAX_PEERS];
	int npeer;
};

static void put(struct status *st, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put(struct status *st, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (st->nstat == MAX_STATS)
		return;
	snprintf(st->stat[st->nstat].name, sizeof(st->stat[0].name), "%s", name);
	va_start(ap, fmt);
	vsnprintf(st->stat[st->nstat].value, sizeof(st->stat[0].value), fmt, ap);
	va_end(ap);
	st->nstat++;
}

static const char *get(const struct status *st, const char *name)
{
	for (int i = 0; i < st->nstat; i++)
		if (strcmp(st->stat[i].name, name) == 0)
			return st->stat[i].value;
	return NULL;
}

static uint64_t num(const struct status *st, const char *name)
{
	const char *v = get(st, name);
	return v ? strtoull(v, NULL, 10) : 0;
}

/* ---- from a node ---- */

static int stat_line(void *arg, const char *line, size_t len)
{
	struct status *st = arg;
	char name[300], a[100], b[100], c[100];

	(void)len;
	if (strncmp(line, "STAT ", 5) != 0)
		return 0;
	int n = sscanf(line + 5, "%299s %99s %99s %99s", name, a, b, c);
	if (n >= 4 && strncmp(name, "segment:", 8) == 0 && st->nseg < MAX_SEGS) {
		struct store_segment_info *s = &st->seg[st->nseg++];
		s->id = (uint32_t)strtoul(name + 8, NULL, 10);
		s->disk_bytes = strtoull(a, NULL, 10);
		s->live_bytes = strtoull(b, NULL, 10);
		s->sealed = strcmp(c, "sealed") == 0;
	} else if (n >= 3 && strncmp(name, "peer:", 5) == 0 && st->npeer < MAX_PEERS) {
		snprintf(st->peer[st->npeer].addr, sizeof(st->peer[0].addr), "%.255s", name + 5);
		st->peer[st->npeer].up = strcmp(a, "up") == 0;
		st->peer[st->npeer].hints = strtoull(b, NULL, 10);
		st->npeer++;
	} else if (n >= 2) {
		put(st, name, "%s", a);
	}
	return 0;
}

static int from_node(const char *addr, const char *secret, struct status *st)
{
	struct auth_key key;
	struct mc_conn *c;
	char err[512];
	int rc;

	if (secret && auth_load(secret, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs status: %s\n", err);
		return -EINVAL;
	}
	rc = mc_connect(addr, secret ? &key : NULL, 2000, 10000, &c);
	if (rc < 0) {
		fprintf(stderr, "caskfs status: cannot reach %s: %s\n", addr,
			rc == -EACCES ? "authentication failed" : strerror(-rc));
		return rc;
	}
	if ((rc = mc_lines(c, "stats", stat_line, st)) == 0 &&
	    (rc = mc_lines(c, "stats segments", stat_line, st)) == 0)
		rc = mc_lines(c, "stats peers", stat_line, st);
	mc_close(c);
	if (rc < 0)
		fprintf(stderr, "caskfs status: %s: %s\n", addr, strerror(-rc));
	return rc;
}

/* ---- from a DATA_DIR ---- */

static int seg_cb(void *arg, const struct store_segment_info *seg)
{
	struct status *st = arg;

	if (st->nseg < MAX_SEGS)
		st->seg[st->nseg++] = *seg;
	return 0;
}

static int from_dir(const char *dir, struct status *st)
{
	struct store_options o;
	struct store *s;
	struct store_stats ss;
	char path[4096];
	struct stat sb;
	int rc;

	store_options_init(&o);
	o.no_background = true;
	rc = store_open(dir, &o, &s);
	if (rc < 0) {
		if (rc == -EBUSY)
			fprintf(stderr, "caskfs status: ask the running node by its HOST:PORT, or "
					"stop it first\n");
		return rc;
	}
	store_stats(s, &ss);
	put(st, "caskfs_node_id", "%" PRIu32, ss.node_id);
	put(st, "curr_items", "%" PRIu64, ss.keys);
	put(st, "caskfs_tombstones", "%" PRIu64, ss.tombstones);
	put(st, "bytes", "%" PRIu64, ss.live_bytes);
	put(st, "caskfs_disk_bytes", "%" PRIu64, ss.disk_bytes);
	put(st, "caskfs_segments", "%" PRIu64, ss.segments);
	put(st, "caskfs_keydir_bytes", "%" PRIu64, ss.keydir_bytes);
	put(st, "caskfs_tree_root", "%016" PRIx64, ss.tree_root);
	store_segments(s, seg_cb, st);
	/* hints waiting in DATA_DIR/handoff: their bytes, by peer */
	snprintf(path, sizeof(path), "%s/handoff", dir);
	DIR *d = opendir(path);
	uint64_t hint_bytes = 0;
	for (struct dirent *e; d && (e = readdir(d));) {
		char f[4400];
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		if (e->d_name[0] != '.' && stat(f, &sb) == 0 && S_ISREG(sb.st_mode))
			hint_bytes += (uint64_t)sb.st_size;
	}
	if (d)
		closedir(d);
	put(st, "caskfs_hint_bytes_pending", "%" PRIu64, hint_bytes);
	struct store_scrub_stats sc;
	store_scrub_stats(s, &sc); /* no thread here: what DATA_DIR/scrub.state says */
	put(st, "caskfs_scrub_enabled", "0");
	put(st, "caskfs_scrub_running", "%d", sc.running ? 1 : 0);
	put(st, "caskfs_scrub_passes", "%" PRIu64, sc.passes);
	put(st, "caskfs_scrub_segment", "%" PRIu32, sc.segment);
	put(st, "caskfs_scrub_pass_bytes", "%" PRIu64, sc.pass_bytes);
	put(st, "caskfs_scrub_damaged", "%" PRIu64, sc.damaged);
	put(st, "caskfs_scrub_repaired", "%" PRIu64, sc.repaired);
	put(st, "caskfs_scrub_unrepaired", "%" PRIu64, sc.unrepaired);
	put(st, "caskfs_scrub_stale", "%" PRIu64, sc.stale);
	put(st, "caskfs_scrub_last_pass_end", "%" PRId64, sc.last_pass_end_ms / 1000);
	struct meta *m;
	if (fs_datadir_open_meta(dir, s, &m) == 0 && m) {
		struct meta_stats ms;
		struct store_tree_node root, kids[16];
		uint64_t last, pending;
		if (meta_stats(m, &ms) == 0) {
			put(st, "caskfs_meta_inodes", "%" PRIu64, ms.inodes);
			put(st, "caskfs_meta_entries", "%" PRIu64, ms.entries);
			put(st, "caskfs_meta_tombstones", "%" PRIu64, ms.tombstones);
		}
		put(st, "caskfs_meta_conflicts", "%" PRIu64, meta_conflict_count(m));
		meta_outbox_state(m, &last, &pending);
		put(st, "caskfs_meta_outbox_pending", "%" PRIu64, pending);
		if (meta_tree_children(m, NULL, 0, &root, kids) == 0)
			put(st, "caskfs_meta_tree_root", "%016" PRIx64, root.hash);
		meta_close(m);
	}
	store_close(s);
	return 0;
}

/* ---- printing ---- */

static void human(uint64_t b, char *out, size_t cap)
{
	const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* The mount's FUSE requests (caskfs_fuse_*), the most frequent first. */
static void print_requests(FILE *out, const struct status *st)
{
	int idx[MAX_STATS], n = 0;

	for (int i = 0; i < st->nstat; i++)
		if (strncmp(st->stat[i].name, "caskfs_fuse_", 12) == 0)
			idx[n++] = i;
	for (int i = 1; i < n; i++) /* insertion sort by count, descending */
		for (int j = i; j > 0 && strtoull(st->stat[idx[j]].value, NULL, 10) >
					     strtoull(st->stat[idx[j - 1]].value, NULL, 10);
		     j--) {
			int t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	for (int i = 0; i < n; i++)
		fprintf(out, "%s%s %s%s", i == 0 ? "requests     " : i % 6 ? ", " : ",\n             ",
		       st->stat[idx[i]].name + 12, st->stat[idx[i]].value, i == n - 1 ? "\n" : "");
}

static void print_text(FILE *out, const char *target, const struct status *st)
{
	char a[32], b[32];
	uint64_t live = num(st, "bytes"), disk = num(st, "caskfs_disk_bytes");

	fprintf(out, "caskfs status: %s (node %s", target, get(st, "caskfs_node_id") ?: "?");
	if (get(st, "uptime"))
		fprintf(out, ", up %s s", get(st, "uptime"));
	fprintf(out, ")\n");
	fprintf(out, "objects      %" PRIu64 " live, %" PRIu64 " tombstones\n", num(st, "curr_items"),
	       num(st, "caskfs_tombstones"));
	human(live, a, sizeof(a));
	human(disk, b, sizeof(b));
	fprintf(out, "bytes        %s live of %s on disk (garbage %.1f%%)\n", a, b,
	       disk ? 100.0 * (1.0 - (double)live / (double)disk) : 0.0);
	fprintf(out, "segments     %d\n", st->nseg);
	for (int i = 0; i < st->nseg; i++) {
		const struct store_segment_info *s = &st->seg[i];
		human(s->disk_bytes, a, sizeof(a));
		fprintf(out, "  %06u  %-6s %10s  live %5.1f%%\n", s->id, s->sealed ? "sealed" : "active", a,
		       s->disk_bytes > 16 ? 100.0 * (double)s->live_bytes / (double)(s->disk_bytes - 16)
					  : 100.0);
	}
	fprintf(out, "tree roots   data %s", get(st, "caskfs_tree_root") ?: "?");
	if (get(st, "caskfs_meta_tree_root"))
		fprintf(out, "  meta %s", get(st, "caskfs_meta_tree_root"));
	fprintf(out, "\n");
	if (get(st, "caskfs_nodes"))
		fprintf(out, "cluster      N=%s W=%s R=%s over %s nodes\n", get(st, "caskfs_n"),
		       get(st, "caskfs_w"), get(st, "caskfs_r"), get(st, "caskfs_nodes"));
	for (int i = 0; i < st->npeer; i++)
		fprintf(out, "%s %s %s, %" PRIu64 " hints waiting\n", i ? "            " : "peers       ",
		       st->peer[i].addr, st->peer[i].up ? "up" : "DOWN", st->peer[i].hints);
	human(num(st, "caskfs_hint_bytes_pending"), a, sizeof(a));
	fprintf(out, "handoff      %" PRIu64 " records (%s) waiting\n", num(st, "caskfs_hints_pending"),
	       a);
	if (get(st, "caskfs_scrub_passes")) {
		human(num(st, "caskfs_scrub_pass_bytes"), a, sizeof(a));
		human(num(st, "caskfs_scrub_pass_total"), b, sizeof(b));
		fprintf(out, "scrub        %s, %" PRIu64 " passes done",
			num(st, "caskfs_scrub_enabled") ? "on" : "off", num(st, "caskfs_scrub_passes"));
		if (num(st, "caskfs_scrub_running"))
			fprintf(out, ", one under way (segment %06" PRIu64 ", %s of %s%s)",
				num(st, "caskfs_scrub_segment"), a, get(st, "caskfs_scrub_pass_total") ? b : "?",
				num(st, "caskfs_scrub_paused") ? ", paused" : "");
		fprintf(out, "; damaged %" PRIu64 " (%" PRIu64 " repaired, %" PRIu64
			     " not repaired, %" PRIu64 " stale)\n",
			num(st, "caskfs_scrub_damaged"), num(st, "caskfs_scrub_repaired"),
			num(st, "caskfs_scrub_unrepaired"), num(st, "caskfs_scrub_stale"));
	}
	if (get(st, "caskfs_meta_conflicts"))
		fprintf(out, "conflicts    %" PRIu64 " conflict copies kept (/.caskfs/conflicts)\n",
			num(st, "caskfs_meta_conflicts"));
	if (get(st, "caskfs_meta_inodes"))
		fprintf(out, "namespace    %" PRIu64 " inodes, %" PRIu64 " entries, %" PRIu64
		       " records waiting to be pushed\n",
		       num(st, "caskfs_meta_inodes"), num(st, "caskfs_meta_entries"),
		       num(st, "caskfs_meta_outbox_pending"));
	print_requests(out, st);
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(out, "\\u%04x", *s);
		else
			fputc(*s, out);
	}
	fputc('"', out);
}

static void print_json(FILE *out, const char *target, const struct status *st)
{
	fprintf(out, "{\"target\": ");
	json_str(out, target);
	fprintf(out, ", \"stats\": {");
	for (int i = 0; i < st->nstat; i++) {
		const char *v = st->stat[i].value;
		char *end;
		fprintf(out, "%s", i ? ", " : "");
		json_str(out, st->stat[i].name);
		fprintf(out, ": ");
		strtoull(v, &end, 10);
		if (*v && !*end && strstr(st->stat[i].name, "tree_root") == NULL)
			fprintf(out, "%s", v);
		else
			json_str(out, v);
	}
	fprintf(out, "}, \"segments\": [");
	for (int i = 0; i < st->nseg; i++)
		fprintf(out, "%s{\"id\": %u, \"sealed\": %s, \"disk_bytes\": %" PRIu64
		       ", \"live_bytes\": %" PRIu64 "}",
		       i ? ", " : "", st->seg[i].id, st->seg[i].sealed ? "true" : "false",
		       st->seg[i].disk_bytes, st->seg[i].live_bytes);
	fprintf(out, "], \"peers\": [");
	for (int i = 0; i < st->npeer; i++) {
		fprintf(out, "%s{\"addr\": ", i ? ", " : "");
		json_str(out, st->peer[i].addr);
		fprintf(out, ", \"up\": %s, \"hints\": %" PRIu64 "}", st->peer[i].up ? "true" : "false",
		       st->peer[i].hints);
	}
	fprintf(out, "]}\n");
}

int fs_status_report(FILE *out, const char *target, bool json, const char *secret)
{
	struct status *st = calloc(1, sizeof(*st));
	struct stat sb;
	int rc;

	if (!st)
		return CLI_IO;
	char control[4300];
	if (stat(target, &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    node_control_addr(target, control, sizeof(control))) {
		rc = from_node(control, NULL, st); /* the DATA_DIR of a running node */
	} else if (stat(target, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		rc = from_dir(target, st);
	} else if (strchr(target, ':')) {
		rc = from_node(target, secret, st);
	} else {
		fprintf(stderr, "caskfs status: %s is neither a directory nor HOST:PORT\n", target);
		free(st);
		return CLI_USAGE;
	}
	if (rc == 0) {
		if (json)
			print_json(out, target, st);
		else
			print_text(out, target, st);
	}
	free(st);
	return rc == 0 ? CLI_OK : rc == -EINVAL ? CLI_USAGE : CLI_IO;
}
