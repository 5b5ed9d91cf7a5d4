/*
 * scrub - `caskfs scrub DATA_DIR|HOST:PORT [--now [--wait]]`: how far the
 * node's scrubber is and what it found (`stats scrub`), and, with --now, a
 * pass started at once (`stats scrub now`), waited for with --wait. A
 * DATA_DIR no node holds gets its scrub.state shown, or with --now one pass
 * run here, unthrottled unless --rate, with nothing to repair from (damage
 * is reported: caskfs fsck --repair). docs/USAGE.md ("caskfs scrub").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_i.h"
#include "store/node/client.h"

static int stat_line(void *arg, const char *line, size_t len)
{
	struct store_scrub_stats *st = arg;
	char name[64];
	unsigned long long v;

	(void)len;
	if (sscanf(line, "STAT caskfs_scrub_%63s %llu", name, &v) != 2)
		return 0;
#define F(n, field)                                                                                \
	if (strcmp(name, n) == 0)                                                                  \
	st->field = v
	F("enabled", enabled);
	F("running", running);
	F("paused", paused);
	F("rate", rate);
	F("passes", passes);
	F("segment", segment);
	F("pass_bytes", pass_bytes);
	F("pass_total", pass_total);
	F("bytes", bytes);
	F("records", records);
	F("damaged", damaged);
	F("repaired", repaired);
	F("unrepaired", unrepaired);
	F("stale", stale);
	F("last_pass_end", last_pass_end_ms);
#undef F
	if (strcmp(name, "last_pass_end") == 0)
		st->last_pass_end_ms = (int64_t)v * 1000;
	return 0;
}

static void mib(uint64_t b, char *out, size_t cap)
{
	snprintf(out, cap, "%.1f MiB", (double)b / (1 << 20));
}

static void print(const char *target, const struct store_scrub_stats *st)
{
	char a[32], b[32], when[64] = "never";

	if (st->last_pass_end_ms) {
		time_t t = (time_t)(st->last_pass_end_ms / 1000);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	}
	printf("scrub %s: %s", target,
	       st->enabled ? "scrubber running" : "no scrubber running (state file)");
	if (st->rate) {
		mib(st->rate, a, sizeof(a));
		printf(", limit %s/s", a);
	}
	printf("\n");
	if (st->running) {
		mib(st->pass_bytes, a, sizeof(a));
		mib(st->pass_total, b, sizeof(b));
		printf("  pass %" PRIu64 " under way%s: segment %06u, %s of %s\n", st->passes + 1,
		       st->paused ? " (paused: the node is busy)" : "", st->segment, a, b);
	}
	mib(st->bytes, a, sizeof(a));
	printf("  passes %" PRIu64 " done, the last ended %s; %" PRIu64 " records, %s read\n",
	       st->passes, when, st->records, a);
	printf("  damaged %" PRIu64 ": %" PRIu64 " repaired, %" PRIu64 " not repaired, %" PRIu64
	       " stale\n",
	       st->damaged, st->repaired, st->unrepaired, st->stale);
}

static int ask(struct mc_conn *c, const char *cmd, struct store_scrub_stats *st)
{
	memset(st, 0, sizeof(*st));
	return mc_lines(c, cmd, stat_line, st);
}

static int from_node(const struct scrub_args *a, const char *addr)
{
	struct store_scrub_stats st;
	struct auth_key key;
	struct mc_conn *c;
	char err[512];
	int rc;

	if (a->secret_file && auth_load(a->secret_file, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs scrub: %s\n", err);
		return CLI_USAGE;
	}
	rc = mc_connect(addr, a->secret_file ? &key : NULL, 2000, 10000, &c);
	if (rc < 0) {
		fprintf(stderr, "caskfs scrub: cannot reach %s: %s\n", addr, strerror(-rc));
		return CLI_IO;
	}
	rc = ask(c, "stats scrub", &st);
	uint64_t passes = st.passes;
	if (rc == 0 && a->now)
		rc = ask(c, "stats scrub now", &st);
	while (rc == 0 && a->now && a->wait && st.passes == passes) {
		usleep(200000);
		rc = ask(c, "stats scrub", &st);
	}
	mc_close(c);
	if (rc < 0) {
		fprintf(stderr, "caskfs scrub: %s: %s\n", addr, strerror(-rc));
		return CLI_IO;
	}
	print(a->target, &st);
	return st.unrepaired ? CLI_CORRUPT : CLI_OK;
}

static int from_dir(const struct scrub_args *a)
{
	struct store_scrub_stats st;
	struct store_options o;
	struct store *s;
	int rc;

	if (!a->now) {
		rc = store_scrub_state_read(a->target, &st);
		if (rc < 0 && rc != -ENOENT) {
			fprintf(stderr, "caskfs scrub: %s/scrub.state: %s\n", a->target,
				strerror(-rc));
			return CLI_IO;
		}
		print(a->target, &st);
		return CLI_OK;
	}
	store_options_init(&o);
	o.no_background = true;
	if ((rc = store_open(a->target, &o, &s)) < 0)
		return rc == -EBUSY ? CLI_IO : CLI_IO;
	struct store_scrub_options so = { .rate = a->rate ? a->rate : UINT64_MAX / 2000 };
	rc = store_scrub_pass(s, &so, &st);
	store_close(s);
	if (rc < 0) {
		fprintf(stderr, "caskfs scrub: %s: %s\n", a->target, strerror(-rc));
		return CLI_IO;
	}
	print(a->target, &st);
	if (st.unrepaired)
		printf("  repair: caskfs fsck --repair --peers HOST:PORT,... %s\n", a->target);
	return st.unrepaired ? CLI_CORRUPT : CLI_OK;
}

int cli_scrub(const struct scrub_args *a)
{
	char control[4300];
	struct stat sb;

	if (stat(a->target, &sb) == 0 && S_ISDIR(sb.st_mode))
		return node_control_addr(a->target, control, sizeof(control)) ? from_node(a, control)
										: from_dir(a);
	if (strchr(a->target, ':'))
		return from_node(a, a->target);
	fprintf(stderr, "caskfs scrub: %s is neither a directory nor HOST:PORT\n", a->target);
	return CLI_USAGE;
}
