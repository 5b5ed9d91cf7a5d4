/*
 * bench - `caskfs bench MOUNTPOINT`: the standard workloads on the mount and,
 * in the same run, on a native directory of the same disk (beside the mount's
 * DATA_DIR), printed side by side as ratios. It measures; it never fails on a
 * figure. Workloads and goals: docs/BENCHMARKS.md ("The mount").
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_i.h"

/* The DATA_DIR of the caskfs mount at mnt (from its fsname), or NULL. */
static char *data_dir_of(const char *mnt)
{
	char type[64], source[PATH_MAX];

	if (!fs_mountinfo_lookup(mnt, type, sizeof(type), source, sizeof(source)) ||
	    strcmp(type, "fuse.caskfs") != 0 || strncmp(source, "caskfs:", 7) != 0)
		return NULL;
	return strdup(source + 7);
}

enum { T_NATIVE, T_CASKFS, T_FLOOR, T_COUNT }; /* where a workload runs */

struct result {
	const char *name, *unit;
	double native, caskfs, goal;
	double floor; /* on the null FUSE filesystem (floor.c), 0 if not measured */
	bool lower_better; /* a time: the ratio is native / caskfs */
	bool skipped;
	const char *why;
};

static void print_row(const struct result *r)
{
	if (r->skipped) {
		printf("%-28s %12s %12s %8s %6s %12s %6s  (%s)\n", r->name, "-", "-", "-", "", "-",
		       "-", r->why);
		return;
	}
	double ratio = r->lower_better ? r->native / r->caskfs : r->caskfs / r->native;
	printf("%-28s %12.1f %12.1f %8.2f %6.2f", r->name, r->native, r->caskfs, ratio, r->goal);
	if (r->floor > 0)
		printf(" %12.1f %6.2f", r->floor,
		       r->lower_better ? r->native / r->floor : r->floor / r->native);
	else
		printf(" %12s %6s", "-", "-");
	printf("  %s %s\n", r->unit, ratio >= r->goal ? "" : "(under goal)");
}

/* Prints the row of a workload measured in each place: v[T_NATIVE],
 * v[T_CASKFS] and, when it was measured (else 0), v[T_FLOOR]; skipped, with
 * why, when why is not NULL. */
static void print_workload(const char *name, const char *unit, double goal, bool lower_better,
			   const double v[T_COUNT], const char *why)
{
	struct result r = { .name = name,
			    .unit = unit,
			    .goal = goal,
			    .lower_better = lower_better,
			    .native = v[T_NATIVE],
			    .caskfs = v[T_CASKFS],
			    .floor = v[T_FLOOR],
			    .skipped = why != NULL,
			    .why = why };

	print_row(&r);
}

int cli_bench(const struct bench_args *a)
{
	char *data = data_dir_of(a->mountpoint);
	char work[PATH_MAX], floor_mnt[PATH_MAX + 32], media[SUB_MAX];
	char native[SUB_MAX], mnt_dir[SUB_MAX], floor_dir[SUB_MAX];
	char nat_dst[2 * SUB_MAX], cfs_dst[2 * SUB_MAX], floor_dst[2 * SUB_MAX];
	char *dir[T_COUNT] = { native, mnt_dir, floor_dir };
	char *dst[T_COUNT] = { nat_dst, cfs_dst, floor_dst };
	uint8_t *pool = malloc(32u << 20);
	pid_t floor = -1;
	int rc, nt;

	if (!data) {
		fprintf(stderr, "caskfs bench: %s is not a caskfs mount\n", a->mountpoint);
		free(pool);
		return CLI_USAGE;
	}
	if (!pool) {
		free(data);
		return CLI_IO;
	}
	fs_bench_fill_random(pool, 32u << 20);
	if (snprintf(work, sizeof(work), "%s.bench", data) >= (int)sizeof(work)) {
		fprintf(stderr, "caskfs bench: DATA_DIR path too long\n");
		free(data);
		free(pool);
		return CLI_USAGE;
	}
	snprintf(dir[T_NATIVE], SUB_MAX, "%s/native", work);
	snprintf(dir[T_CASKFS], SUB_MAX, "%s/caskfs-bench.%d", a->mountpoint,
		 (int)getpid());
	snprintf(floor_mnt, sizeof(floor_mnt), "%s/null-fuse", work);
	snprintf(dir[T_FLOOR], SUB_MAX, "%s/bench", floor_mnt);
	snprintf(media, sizeof(media), "%s/media", work);
	fs_bench_rm_rf(work);
	if (mkdir(work, 0755) < 0 || mkdir(dir[T_NATIVE], 0755) < 0 ||
	    mkdir(dir[T_CASKFS], 0755) < 0) {
		fprintf(stderr, "caskfs bench: cannot create %s or %s: %s\n", work, dir[T_CASKFS],
			strerror(errno));
		free(data);
		free(pool);
		return CLI_IO;
	}
	chmod(work, 0755);
	chmod(dir[T_NATIVE], 0755);
	fs_bench_stop_dirs(work, dir[T_CASKFS]);
	fs_bench_catch_signals(true);
	floor = fs_bench_floor_start(floor_mnt);
	fs_bench_stop_pid(FS_BENCH_PID_FLOOR, floor);
	nt = floor > 0 && mkdir(dir[T_FLOOR], 0755) == 0 ? T_COUNT : T_FLOOR;
	printf("caskfs bench: %s (DATA_DIR %s) against %s, same disk,\n"
	       "and a null FUSE filesystem (keeps names in memory, stores no bytes)\n",
	       a->mountpoint, data, dir[T_NATIVE]);
	printf("this machine: a request and its answer between two threads take %.1f us,\n"
	       "%.1f us when both run on one CPU (each FUSE request pays one)\n",
	       fs_bench_pingpong_us(false), fs_bench_pingpong_us(true));
	printf("%-28s %12s %12s %8s %6s %12s %6s\n", "workload", "native", "caskfs", "ratio",
	       "goal", "null FUSE", "ratio");

	double w[T_COUNT] = { 0 }, cold[T_COUNT] = { 0 }, warm[T_COUNT] = { 0 };
	for (int t = 0; t < nt; t++) {
		if ((rc = fs_bench_seq(dir[t], a->seq_bytes, pool, &w[t], &cold[t], &warm[t])) <
		    0) {
			fprintf(stderr, "caskfs bench: sequential workload failed in %s: %s\n", dir[t],
				strerror(-rc));
			goto out;
		}
	}
	print_workload("sequential write + fsync", "MB/s", 0.8, false, w, NULL);
	print_workload("cold read, 1 MiB blocks", "MB/s", 0.8, false, cold, NULL);
	print_workload("warm read, 1 MiB blocks", "MB/s", 0.9, false, warm, NULL);
	fflush(stdout);

	double cr[T_COUNT] = { 0 }, st[T_COUNT] = { 0 };
	for (int t = 0; t < nt; t++) {
		if ((rc = fs_bench_small_files(dir[t], a->files, pool, &cr[t], &st[t])) < 0) {
			fprintf(stderr, "caskfs bench: small-file workload failed in %s: %s\n", dir[t],
				strerror(-rc));
			goto out;
		}
	}
	print_workload("create 16 KiB files", "files/s", 1.0, false, cr, NULL);
	print_workload("stat of them", "stats/s", 0.5, false, st, NULL);
	fflush(stdout);

	double secs[T_COUNT] = { 0 };
	const char *why = NULL;
	for (int t = 0; t < T_COUNT; t++)
		snprintf(dst[t], 2 * SUB_MAX, "%s/rsync", dir[t]);
	if (!fs_bench_have("rsync"))
		why = "rsync is not installed";
	else if (fs_bench_make_media(media, pool) < 0)
		why = "cannot write the media tree";
	for (int t = 0; t < nt && !why; t++)
		if ((secs[t] = fs_bench_rsync(media, dst[t])) < 0)
			why = "rsync failed";
	print_workload("rsync -a of a media tree", "s", 0.7, true, secs, why);
	fflush(stdout);

	double rps[T_COUNT] = { 0 };
	why = NULL;
	if (!fs_bench_have("nginx") || !fs_bench_have("wrk"))
		why = "needs nginx and wrk";
	for (int t = 0; t < nt && !why; t++)
		if ((rps[t] = fs_bench_nginx_wrk(dir[t], work)) <= 0)
			why = "nginx or wrk failed";
	print_workload("nginx + wrk, 16 KiB files", "req/s", 0.9, false, rps, why);
	rc = 0;
out:
	fs_bench_catch_signals(false);
	fs_bench_floor_stop(floor, floor_mnt);
	fs_bench_rm_rf(dir[T_CASKFS]);
	fs_bench_rm_rf(work);
	free(data);
	free(pool);
	return rc < 0 ? CLI_IO : CLI_OK;
}
