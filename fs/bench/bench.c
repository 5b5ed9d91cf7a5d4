/*
 * bench - `caskfs bench MOUNTPOINT`: the standard workloads on the mount and,
 * in the same run, in a native directory of the same disk (beside the
 * mount's DATA_DIR) and on a null FUSE filesystem (floor.c), in rounds
 * whose order alternates (native, caskfs, null; then null, caskfs, native:
 * ABBA), so that a disk that drifts favours nobody. Each figure is the
 * median of the per-round ratios to native, never the best round of either
 * side. It measures; it never fails on a figure. Workloads and goals:
 * docs/BENCHMARKS.md ("The mount").
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
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

struct figure {
	const char *name, *unit;
	double goal;	   /* the ratio issue 17 asks for; 0: none */
	bool lower_better; /* a time: the ratio is native / caskfs */
};

struct workload {
	const char *key; /* its name for --only */
	const char *needs[3];
	int nfig;
	struct figure fig[4];
	int (*prepare)(const struct bench_args *a, const char *work, uint64_t seed);
	int (*run)(const struct bench_place *p, double *out);
};

static const struct workload workloads[] = {
	{ "seq",
	  { NULL },
	  3,
	  { { "sequential write + fsync", "MB/s", 0.8, false },
	    { "sequential read, cold", "MB/s", 0.9, false },
	    { "sequential read, warm", "MB/s", 0.9, false } },
	  NULL,
	  fs_bench_seq },
	{ "small",
	  { NULL },
	  4,
	  { { "create 16 KiB files", "files/s", 0, false },
	    { "stat of them, cold", "stats/s", 0.5, false },
	    { "stat of them, warm", "stats/s", 0, false },
	    { "readdir of them, cold", "entries/s", 0, false } },
	  NULL,
	  fs_bench_small },
	{ "empty",
	  { NULL },
	  2,
	  { { "create empty files", "files/s", 0.5, false },
	    { "unlink empty files", "files/s", 0.5, false } },
	  NULL,
	  fs_bench_empty },
	{ "big",
	  { NULL },
	  1,
	  { { "create 1 MiB files", "files/s", 0, false } },
	  NULL,
	  fs_bench_big },
	{ "fsync",
	  { NULL },
	  2,
	  { { "fsync of a 4 KiB write, p50", "us", 1 / 1.3, true },
	    { "fsync of a 4 KiB write, p90", "us", 0, true } },
	  NULL,
	  fs_bench_fsync },
	{ "media",
	  { "rsync", "cp", NULL },
	  2,
	  { { "cp -r of a media tree", "s", 0, true },
	    { "rsync -a of a media tree", "s", 0, true } },
	  fs_bench_media_prepare,
	  fs_bench_media },
	{ "dedup",
	  { "cp", NULL },
	  1,
	  { { "dedup: 2nd cp -r of photos", "s", 0, true } },
	  fs_bench_dedup_prepare,
	  fs_bench_dedup },
	{ "tree",
	  { "rsync", "find", "du" },
	  3,
	  { { "rsync -a of the file tree", "s", 0.6, true },
	    { "find + du of it, cold", "s", 0.5, true },
	    { "find + du of it, warm", "s", 0.8, true } },
	  NULL,
	  fs_bench_tree },
	{ "nginx",
	  { "nginx", "wrk", NULL },
	  1,
	  { { "nginx + wrk, 16 KiB file", "req/s", 0.95, false } },
	  NULL,
	  fs_bench_nginx },
};
#define NWORKLOADS (sizeof(workloads) / sizeof(workloads[0]))

static bool selected(const struct bench_args *a, const char *key)
{
	size_t n = strlen(key);

	if (!a->only)
		return true;
	for (const char *p = a->only; (p = strstr(p, key)); p += n)
		if ((p == a->only || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

/* The ratio of caskfs's (or the null filesystem's) value v to native's. */
static double ratio(const struct figure *f, double native, double v)
{
	if (native <= 0 || v <= 0)
		return 0;
	return f->lower_better ? native / v : v / native;
}

static void print_header(void)
{
	printf("%-30s %11s %11s %7s %5s %11s %7s\n", "workload (median of rounds)", "native",
	       "caskfs", "ratio", "goal", "null FUSE", "ratio");
}

/* Decimals that show v to three significant digits or more. */
static int digits(double v)
{
	return v >= 1000 ? 0 : v >= 100 ? 1 : v >= 10 ? 2 : 3;
}

/* vals[round][target][figure] */
typedef double round_vals[T_COUNT][4];

static void print_figure(const struct figure *f, int fi, round_vals *vals, int rounds, bool floor)
{
	double v[T_COUNT][FS_BENCH_MAX_ROUNDS], r[2][FS_BENCH_MAX_ROUNDS];

	for (int i = 0; i < rounds; i++) {
		for (int t = 0; t < T_COUNT; t++)
			v[t][i] = vals[i][t][fi];
		r[0][i] = ratio(f, v[T_NATIVE][i], v[T_CASKFS][i]);
		r[1][i] = ratio(f, v[T_NATIVE][i], v[T_FLOOR][i]);
	}
	double cr = fs_bench_median(r[0], rounds), nat = fs_bench_median(v[T_NATIVE], rounds);
	double cas = fs_bench_median(v[T_CASKFS], rounds);
	printf("%-30s %11.*f %11.*f %7.2f", f->name, digits(nat), nat, digits(cas), cas, cr);
	if (f->goal > 0)
		printf(" %5.2f", f->goal);
	else
		printf(" %5s", "-");
	if (floor) {
		double fl = fs_bench_median(v[T_FLOOR], rounds);
		printf(" %11.*f %7.2f", digits(fl), fl, fs_bench_median(r[1], rounds));
	} else
		printf(" %11s %7s", "-", "-");
	printf("  %s%s", f->unit, f->goal > 0 && cr < f->goal ? " (under goal)" : "");
	if (rounds > 1) { /* the spread, so a reader sees the noise */
		double lo = r[0][0], hi = r[0][0];
		for (int i = 1; i < rounds; i++) {
			lo = r[0][i] < lo ? r[0][i] : lo;
			hi = r[0][i] > hi ? r[0][i] : hi;
		}
		printf(" [%.2f-%.2f]", lo, hi);
	}
	printf("\n");
}

/* The FUSE requests a file of the tree's rsync took, on the mount and on
 * the null filesystem, by operation, the most frequent first. */
static void print_requests(const struct bench_note *n, bool floor)
{
	for (int t = T_CASKFS; t <= (floor ? T_FLOOR : T_CASKFS); t++) {
		uint64_t total = 0;
		const uint64_t *q = n->requests[t];
		bool done[FS_OPCODES] = { false };
		if (!n->files[t])
			continue;
		for (int op = 0; op < FS_OPCODES; op++)
			if (op != 2 && op != 42) /* FORGETs cost the caller nothing */
				total += q[op];
		printf("  requests per file of the rsync, %s: %.1f (",
		       t == T_CASKFS ? "caskfs" : "null FUSE", (double)total / (double)n->files[t]);
		for (int k = 0; k < 8; k++) {
			int best = -1;
			for (int op = 0; op < FS_OPCODES; op++)
				if (!done[op] && op != 2 && op != 42 && q[op] &&
				    (best < 0 || q[op] > q[best]))
					best = op;
			if (best < 0)
				break;
			done[best] = true;
			printf("%s%s %.2f", k ? ", " : "", fs_opcode_name((unsigned)best),
			       (double)q[best] / (double)n->files[t]);
		}
		printf(")\n");
	}
}

struct places {
	char *dir[T_COUNT];
	const char *work, *data_dir;
	bool floor;
	_Atomic uint64_t *floor_requests;
};

/* Runs w for a->rounds rounds in every place and prints its rows. */
static void run_workload(const struct bench_args *a, const struct workload *w,
			 const struct places *pl, uint64_t seed)
{
	static round_vals vals[FS_BENCH_MAX_ROUNDS];
	static struct bench_note note;
	const char *why = NULL;
	char dir[SUB_MAX + 64];
	int rc = 0;

	for (int i = 0; i < 3 && w->needs[i] && !why; i++)
		if (!fs_bench_have(w->needs[i]))
			why = w->needs[i];
	if (why) {
		for (int f = 0; f < w->nfig; f++)
			printf("%-30s (skipped: %s is not installed)\n", w->fig[f].name, why);
		return;
	}
	memset(vals, 0, sizeof(vals));
	memset(&note, 0, sizeof(note));
	unsigned long drops = 0;
	fs_bench_foreign_drops(&drops);
	for (int r = 0; r < a->rounds && rc == 0; r++) {
		uint64_t round_seed = seed + (uint64_t)r * 0x100000001b3ULL;
		if (w->prepare && (rc = w->prepare(a, pl->work, round_seed)) < 0) {
			fprintf(stderr, "caskfs bench: cannot prepare %s: %s\n", w->key,
				strerror(-rc));
			break;
		}
		for (int k = 0; k < T_COUNT && rc == 0; k++) {
			int t = r % 2 ? T_COUNT - 1 - k : k; /* ABBA */
			if (t == T_FLOOR && !pl->floor)
				continue;
			snprintf(dir, sizeof(dir), "%s/%s.%d", pl->dir[t], w->key, r);
			if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
				rc = -errno;
				fprintf(stderr, "caskfs bench: cannot create %s: %s\n", dir,
					strerror(errno));
				break;
			}
			chmod(dir, 0755); /* nginx serves it to nobody */
			struct bench_place p = { .a = a,
						 .target = t,
						 .dir = dir,
						 .work = pl->work,
						 .data_dir = pl->data_dir,
						 .floor_requests = pl->floor_requests,
						 .seed = round_seed * 31 + (uint64_t)t + 1,
						 .note = &note };
			rc = w->run(&p, vals[r][t]);
			if (rc < 0)
				fprintf(stderr, "caskfs bench: %s failed in %s: %s\n", w->key, dir,
					strerror(-rc));
			fs_bench_rm_rf(dir);
		}
	}
	if (rc < 0) {
		for (int f = 0; f < w->nfig; f++)
			printf("%-30s (failed: see above)\n", w->fig[f].name);
		return;
	}
	for (int f = 0; f < w->nfig; f++)
		print_figure(&w->fig[f], f, vals, a->rounds, pl->floor);
	if (note.files[T_CASKFS])
		print_requests(&note, pl->floor);
	if ((drops = fs_bench_foreign_drops(&drops)) > 0)
		printf("  other programs dropped this machine's caches %lu times during these "
		       "rounds\n",
		       drops);
	if (note.data_bytes)
		printf("  the 2nd copies added %.3f MB to the log for %.1f MB of photos (%.3f%%)\n",
		       (double)note.stored_bytes / 1e6, (double)note.data_bytes / 1e6,
		       100.0 * (double)note.stored_bytes / (double)note.data_bytes);
	fflush(stdout);
}

int cli_bench(const struct bench_args *a)
{
	char *data = data_dir_of(a->mountpoint);
	char work[PATH_MAX], floor_mnt[PATH_MAX + 32];
	char native[SUB_MAX], mnt_dir[SUB_MAX], floor_dir[SUB_MAX];
	struct places pl = { .dir = { native, mnt_dir, floor_dir } };
	pid_t floor = -1;

	if (!data) {
		fprintf(stderr, "caskfs bench: %s is not a caskfs mount\n", a->mountpoint);
		return CLI_USAGE;
	}
	if (snprintf(work, sizeof(work), "%s.bench", data) >= (int)sizeof(work)) {
		fprintf(stderr, "caskfs bench: DATA_DIR path too long\n");
		free(data);
		return CLI_USAGE;
	}
	snprintf(native, sizeof(native), "%s/native", work);
	snprintf(mnt_dir, sizeof(mnt_dir), "%s/caskfs-bench.%d", a->mountpoint, (int)getpid());
	snprintf(floor_mnt, sizeof(floor_mnt), "%s/null-fuse", work);
	snprintf(floor_dir, sizeof(floor_dir), "%s/bench", floor_mnt);
	fs_bench_rm_rf(work);
	if (mkdir(work, 0755) < 0 || mkdir(native, 0755) < 0 || mkdir(mnt_dir, 0755) < 0) {
		fprintf(stderr, "caskfs bench: cannot create %s or %s: %s\n", work, mnt_dir,
			strerror(errno));
		free(data);
		return CLI_IO;
	}
	chmod(work, 0755);
	chmod(native, 0755);
	chmod(mnt_dir, 0755);
	pl.work = work;
	pl.data_dir = data;
	fs_bench_stop_dirs(work, mnt_dir);
	fs_bench_catch_signals(true);
	/* the null filesystem's request counts, in memory its process shares */
	pl.floor_requests = mmap(NULL, FS_OPCODES * sizeof(uint64_t), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (pl.floor_requests == MAP_FAILED)
		pl.floor_requests = NULL;
	/* the null filesystem gets the transport the mount has */
	bool uring = fs_bench_mount_stat(data, "caskfs_uring") == 1;
	floor =
	    fs_bench_floor_start(floor_mnt, pl.floor_requests, uring ? FS_URING_ON : FS_URING_OFF);
	fs_bench_stop_pid(FS_BENCH_PID_FLOOR, floor);
	pl.floor = floor > 0 && mkdir(floor_dir, 0755) == 0;
	printf("caskfs bench: %s (DATA_DIR %s) against %s, same disk,\n"
	       "and a null FUSE filesystem (keeps names in memory, stores no bytes);\n"
	       "%d round%s of each workload, the order of the places alternating\n",
	       a->mountpoint, data, native, a->rounds, a->rounds == 1 ? "" : "s");
	printf("FUSE requests travel through %s, on the mount and on the null filesystem\n",
	       uring ? "io_uring (served on the CPU that made them)" : "/dev/fuse");
	printf("this machine: a request and its answer between two threads take %.1f us,\n"
	       "%.1f us when both run on one CPU (each FUSE request pays one)\n",
	       fs_bench_pingpong_us(false), fs_bench_pingpong_us(true));
	if (geteuid() != 0)
		printf("not root: caches are not dropped, and the cold figures are warm\n");
	print_header();
	fflush(stdout);
	/* new bytes in every run: no chunk of an earlier bench is reused */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t seed = (uint64_t)now.tv_sec * 1000000007ULL + (uint64_t)now.tv_nsec +
			((uint64_t)getpid() << 40);
	for (size_t i = 0; i < NWORKLOADS; i++)
		if (selected(a, workloads[i].key))
			run_workload(a, &workloads[i], &pl, seed + i * 0x9e3779b97f4a7c15ULL);
	fs_bench_catch_signals(false);
	fs_bench_floor_stop(floor, floor_mnt);
	if (pl.floor_requests)
		munmap(pl.floor_requests, FS_OPCODES * sizeof(uint64_t));
	fs_bench_rm_rf(mnt_dir);
	fs_bench_rm_rf(work);
	free(data);
	return CLI_OK;
}
