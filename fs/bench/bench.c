/*
 * bench - `caskfs bench MOUNTPOINT`: the standard workloads on the mount and,
 * in the same run, on a native directory of the same disk (beside the mount's
 * DATA_DIR), printed side by side as ratios. It measures; it never fails on a
 * figure. Workloads and goals: docs/BENCHMARKS.md ("The mount").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_i.h"
#include "fs/daemon/daemon_i.h"

/* Paths built from a base path of up to PATH_MAX bytes. */
#define SUB_MAX (PATH_MAX + 256)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 88172645463325252ull;

static void fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		memcpy(p + i, &rng_state, n - i < 8 ? n - i : 8);
	}
}

/* Runs argv, waits, returns its exit status (or -1); output to /dev/null
 * unless out is given (then the child's stdout is read into it). */
static int run(char *const argv[], char *out, size_t outcap)
{
	int p[2] = { -1, -1 };
	pid_t pid;
	int st;

	if (out && pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDIN_FILENO);
		dup2(out ? p[1] : null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (out) {
		size_t used = 0;
		ssize_t n;
		close(p[1]);
		while ((n = read(p[0], out + used, outcap - 1 - used)) > 0 && used < outcap - 1)
			used += (size_t)n;
		out[used] = '\0';
		close(p[0]);
	}
	if (waitpid(pid, &st, 0) < 0)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * A bench stopped by a signal (^C, a closed pipe) removes what it made, from
 * the handler and so with async-signal-safe calls only: the null filesystem
 * and nginx are stopped (the former unmounts itself), then `rm -rf` of the
 * work directory and of the directory on the mount.
 */
static volatile pid_t stop_pids[2]; /* the null filesystem, nginx */
static char *stop_rm[5];	    /* "rm", "-rf", work, dir on the mount, NULL */

static void on_stop_signal(int sig)
{
	for (int i = 0; i < 2; i++) {
		if (stop_pids[i] > 0) {
			kill(stop_pids[i], SIGTERM);
			waitpid(stop_pids[i], NULL, 0);
		}
	}
	pid_t pid = fork();
	if (pid == 0) {
		execv("/bin/rm", stop_rm);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
	_exit(128 + sig);
}

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };

/* Installs (on) or removes the handler. */
static void catch_stop_signals(bool on)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on ? on_stop_signal : SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(&sa.sa_mask, stop_signals[i]);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaction(stop_signals[i], &sa, NULL);
}

static int rm_rf(const char *path)
{
	char *argv[] = { "rm", "-rf", (char *)path, NULL };

	return run(argv, NULL, 0);
}

static void drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0) {
		if (write(fd, "3\n", 2) != 2)
			fprintf(stderr, "caskfs bench: cannot drop caches: %s\n", strerror(errno));
		close(fd);
	}
}

/* The DATA_DIR of the caskfs mount at mnt (from its fsname), or NULL. */
static char *data_dir_of(const char *mnt)
{
	char type[64], source[PATH_MAX];

	if (!fs_mountinfo_lookup(mnt, type, sizeof(type), source, sizeof(source)) ||
	    strcmp(type, "fuse.caskfs") != 0 || strncmp(source, "caskfs:", 7) != 0)
		return NULL;
	return strdup(source + 7);
}

struct result {
	const char *name, *unit;
	double native, caskfs, goal;
	double floor; /* on the null FUSE filesystem (floor.c), 0 if not measured */
	bool lower_better; /* a time: the ratio is native / caskfs */
	bool skipped;
	const char *why;
};

static int write_file(const char *path, const uint8_t *buf, size_t block, size_t total,
		      bool do_fsync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < total; done += block) {
		size_t n = total - done < block ? total - done : block;
		if (write(fd, buf + (done % (16u << 20)), n) != (ssize_t)n) {
			int e = -errno;
			close(fd);
			return e ? e : -EIO;
		}
	}
	if (do_fsync && fsync(fd) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return close(fd) < 0 ? -errno : 0;
}

static double read_file(const char *path, uint8_t *buf, size_t block)
{
	int fd = open(path, O_RDONLY);
	double total = 0;
	ssize_t n;

	if (fd < 0)
		return -1;
	while ((n = read(fd, buf, block)) > 0)
		total += (double)n;
	close(fd);
	return n < 0 ? -1 : total;
}

/* Sequential write (with fsync), cold and warm read in 1 MiB blocks. */
static int seq(const char *dir, size_t bytes, uint8_t *pool, double *w, double *cold, double *warm)
{
	char path[SUB_MAX];
	double t, got;
	int rc;

	snprintf(path, sizeof(path), "%s/seq.bin", dir);
	t = now();
	rc = write_file(path, pool, 1u << 20, bytes, true);
	if (rc < 0)
		return rc;
	*w = (double)bytes / 1e6 / (now() - t);
	drop_caches();
	t = now();
	got = read_file(path, pool + (16u << 20), 1u << 20);
	*cold = got / 1e6 / (now() - t);
	t = now();
	got = read_file(path, pool + (16u << 20), 1u << 20);
	*warm = got / 1e6 / (now() - t);
	unlink(path);
	return got < 0 ? -EIO : 0;
}

/* create+write+close of n files of 16 KiB, then stat of them. */
static int small_files(const char *dir, int n, uint8_t *pool, double *create, double *stats)
{
	char path[SUB_MAX];
	struct stat st;
	double t;

	struct progress bar;
	snprintf(path, sizeof(path), "%s/small", dir);
	mkdir(path, 0755);
	progress_start(&bar, "bench: 16 KiB files", (uint64_t)n);
	t = now();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/small/f%06d", dir, i);
		int rc =
		    write_file(path, pool + (size_t)i * 4096 % (8u << 20), 16384, 16384, false);
		if (rc < 0) {
			progress_end(&bar);
			return rc;
		}
		if ((i & 255) == 0)
			progress_step(&bar, (uint64_t)i);
	}
	*create = n / (now() - t);
	progress_end(&bar);
	drop_caches();
	t = now();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/small/f%06d", dir, i);
		if (stat(path, &st) < 0)
			return -errno;
	}
	*stats = n / (now() - t);
	return 0;
}

/* A media tree: photo-like random files 20 KiB to 3 MiB, audio-like 8 MiB
 * files, compressible text 100 B to 100 KiB, nested directories. */
static int make_media(const char *root, uint8_t *pool)
{
	char path[2 * SUB_MAX];
	static const char *dirs[] = { "photos", "photos/2023", "photos/2024",
				      "audio",	"text",	       "text/comments" };

	mkdir(root, 0755);
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
		mkdir(path, 0755);
	}
	for (int i = 0; i < 120; i++) {
		size_t size = 20480 + (size_t)(i * 7919) % (3u << 20);
		snprintf(path, sizeof(path), "%s/photos/%s/img%04d.jpg", root,
			 i % 2 ? "2023" : "2024", i);
		if (write_file(path, pool + (size_t)i * 65536 % (8u << 20), size, size, false) < 0)
			return -EIO;
	}
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/audio/track%d.ogg", root, i);
		if (write_file(path, pool, 8u << 20, 8u << 20, false) < 0)
			return -EIO;
	}
	static char text[102400];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = "a comment on the harbour at dusk, "[i % 34];
	for (int i = 0; i < 300; i++) {
		size_t size = 100 + (size_t)(i * 337) % 102300;
		snprintf(path, sizeof(path), "%s/text/comments/c%04d.txt", root, i);
		if (write_file(path, (const uint8_t *)text, size, size, false) < 0)
			return -EIO;
	}
	return 0;
}

static double rsync_tree(const char *src, const char *dst)
{
	char s[SUB_MAX], d[SUB_MAX];
	char *argv[] = { "rsync", "-a", s, d, NULL };
	double t;

	if (snprintf(s, sizeof(s), "%s/", src) >= (int)sizeof(s) ||
	    snprintf(d, sizeof(d), "%s/", dst) >= (int)sizeof(d))
		return -1;
	drop_caches();
	t = now();
	if (run(argv, NULL, 0) != 0)
		return -1;
	return now() - t;
}

/* nginx on a free port serving dir, wrk against one 16 KiB file: requests/s. */
static double nginx_wrk(const char *dir, const char *work)
{
	char conf[SUB_MAX], url[256], out[8192], text[6 * SUB_MAX];
	char *nginx[] = { "nginx", "-c", conf, "-p", (char *)work, NULL };
	char *wrk[] = { "wrk", "-t2", "-c32", "-d5s", url, NULL };
	int port = 20000 + (int)(getpid() % 20000);
	double rps = -1;
	pid_t pid;
	FILE *f;

	if (snprintf(conf, sizeof(conf), "%s/nginx.conf", work) >= (int)sizeof(conf))
		return -1;
	int len = snprintf(text, sizeof(text),
		 "daemon off; worker_processes 2; user nobody nogroup; pid %s/nginx.pid;\n"
		 "error_log %s/error.log; events { worker_connections 512; }\n"
		 "http { access_log off; client_body_temp_path %s; proxy_temp_path %s;\n"
		 "fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
		 "server { listen 127.0.0.1:%d; root %s; } }\n",
		 work, work, work, work, work, work, work, port, dir);
	if (len >= (int)sizeof(text) || !(f = fopen(conf, "w")))
		return -1;
	fputs(text, f);
	fclose(f);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		execvp("nginx", nginx);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	stop_pids[1] = pid;
	usleep(500000);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/small/f000042", port);
	if (run(wrk, out, sizeof(out)) == 0) {
		char *p = strstr(out, "Requests/sec:");
		if (p)
			rps = atof(p + 13);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	stop_pids[1] = 0;
	return rps;
}

static bool have(const char *prog)
{
	char *argv[] = { "sh", "-c", NULL, NULL };
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s", prog);
	argv[2] = cmd;
	return run(argv, NULL, 0) == 0;
}

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

#define PINGPONG_ROUNDS 5000

static void *pingpong_echo(void *arg)
{
	int *fds = arg; /* read from fds[0], answer on fds[1] */
	char c;

	for (int i = 0; i < PINGPONG_ROUNDS; i++)
		if (read(fds[0], &c, 1) != 1 || write(fds[1], &c, 1) != 1)
			break;
	return NULL;
}

static void pin_to(pthread_t t, int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	pthread_setaffinity_np(t, sizeof(set), &set);
}

/*
 * What one request and its answer between two threads cost on this machine
 * (a byte each way through pipes), in microseconds, the threads on one CPU
 * or free to run anywhere: every FUSE request pays at least this, twice a
 * wakeup, while a native filesystem call pays none. -1 on failure.
 */
static double pingpong_us(bool one_cpu)
{
	int there[2], back[2], fds[2];
	pthread_t echo;
	double t = -1;
	char c = 'x';
	int i = 0;

	if (pipe(there) < 0)
		return -1;
	if (pipe(back) < 0) {
		close(there[0]);
		close(there[1]);
		return -1;
	}
	fds[0] = there[0];
	fds[1] = back[1];
	if (pthread_create(&echo, NULL, pingpong_echo, fds) == 0) {
		cpu_set_t old;
		pthread_getaffinity_np(pthread_self(), sizeof(old), &old);
		if (one_cpu) {
			pin_to(pthread_self(), sched_getcpu());
			pin_to(echo, sched_getcpu());
		}
		double start = now();
		for (; i < PINGPONG_ROUNDS; i++)
			if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
				break;
		if (i == PINGPONG_ROUNDS)
			t = (now() - start) / PINGPONG_ROUNDS * 1e6;
		close(there[1]); /* the echo sees end of file if we stopped early */
		pthread_join(echo, NULL);
		pthread_setaffinity_np(pthread_self(), sizeof(old), &old);
	} else {
		close(there[1]);
	}
	close(there[0]);
	close(back[0]);
	close(back[1]);
	return t;
}

/* The null filesystem (fs/floor.c) in a child process, mounted on dir:
 * its pid, or -1 when it could not be mounted. */
static pid_t floor_start(const char *dir)
{
	int p[2];
	char byte;
	pid_t pid;

	pid_t parent = getpid();

	if (mkdir(dir, 0755) < 0 || pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		/* a bench killed midway takes its mount with it (the handler of
		 * SIGTERM unmounts); the parent may already have gone */
		catch_stop_signals(false); /* libfuse's handlers unmount */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) /* gone before the death signal was set */
			_exit(1);
		close(p[0]);
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		_exit(fs_floor_serve(dir, p[1]) == 0 ? 0 : 1);
	}
	close(p[1]);
	/* a byte once mounted; end of file if it failed */
	ssize_t n = pid > 0 ? read(p[0], &byte, 1) : -1;
	close(p[0]);
	if (n == 1)
		return pid;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	fprintf(stderr, "caskfs bench: cannot mount the null FUSE filesystem on %s: "
			"its column stays empty\n", dir);
	return -1;
}

static void floor_stop(pid_t pid, const char *dir)
{
	char *argv[] = { "fusermount3", "-u", (char *)dir, NULL };
	char *lazy[] = { "fusermount3", "-uz", (char *)dir, NULL };

	if (pid <= 0)
		return;
	if (run(argv, NULL, 0) != 0)
		run(lazy, NULL, 0);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

enum { T_NATIVE, T_CASKFS, T_FLOOR, T_COUNT };

int cli_bench(const struct bench_args *a)
{
	char *data = data_dir_of(a->mountpoint);
	char work[PATH_MAX], floor_mnt[PATH_MAX + 32], media[SUB_MAX];
	char native[SUB_MAX], mnt_dir[SUB_MAX], floor_dir[SUB_MAX];
	char nat_dst[2 * SUB_MAX], cfs_dst[2 * SUB_MAX], floor_dst[2 * SUB_MAX];
	char *dir[T_COUNT] = { native, mnt_dir, floor_dir };
	char *dst[T_COUNT] = { nat_dst, cfs_dst, floor_dst };
	uint8_t *pool = malloc(32u << 20);
	struct result rows[8];
	pid_t floor = -1;
	int nrows = 0, rc, nt;

	if (!data) {
		fprintf(stderr, "caskfs bench: %s is not a caskfs mount\n", a->mountpoint);
		free(pool);
		return CLI_USAGE;
	}
	if (!pool) {
		free(data);
		return CLI_IO;
	}
	fill_random(pool, 32u << 20);
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
	rm_rf(work);
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
	stop_rm[0] = "rm";
	stop_rm[1] = "-rf";
	stop_rm[2] = work;
	stop_rm[3] = dir[T_CASKFS];
	catch_stop_signals(true);
	floor = floor_start(floor_mnt);
	stop_pids[0] = floor;
	nt = floor > 0 && mkdir(dir[T_FLOOR], 0755) == 0 ? T_COUNT : T_FLOOR;
	printf("caskfs bench: %s (DATA_DIR %s) against %s, same disk,\n"
	       "and a null FUSE filesystem (keeps names in memory, stores no bytes)\n",
	       a->mountpoint, data, dir[T_NATIVE]);
	printf("this machine: a request and its answer between two threads take %.1f us,\n"
	       "%.1f us when both run on one CPU (each FUSE request pays one)\n",
	       pingpong_us(false), pingpong_us(true));
	printf("%-28s %12s %12s %8s %6s %12s %6s\n", "workload", "native", "caskfs", "ratio",
	       "goal", "null FUSE", "ratio");

	double w[T_COUNT] = { 0 }, cold[T_COUNT] = { 0 }, warm[T_COUNT] = { 0 };
	for (int t = 0; t < nt; t++) {
		if ((rc = seq(dir[t], a->seq_bytes, pool, &w[t], &cold[t], &warm[t])) < 0) {
			fprintf(stderr, "caskfs bench: sequential workload failed in %s: %s\n", dir[t],
				strerror(-rc));
			goto out;
		}
	}
	rows[nrows++] = (struct result){ .name = "sequential write + fsync",
					 .unit = "MB/s",
					 .native = w[T_NATIVE],
					 .caskfs = w[T_CASKFS],
					 .floor = w[T_FLOOR],
					 .goal = 0.8 };
	rows[nrows++] = (struct result){ .name = "cold read, 1 MiB blocks",
					 .unit = "MB/s",
					 .native = cold[T_NATIVE],
					 .caskfs = cold[T_CASKFS],
					 .floor = cold[T_FLOOR],
					 .goal = 0.8 };
	rows[nrows++] = (struct result){ .name = "warm read, 1 MiB blocks",
					 .unit = "MB/s",
					 .native = warm[T_NATIVE],
					 .caskfs = warm[T_CASKFS],
					 .floor = warm[T_FLOOR],
					 .goal = 0.9 };
	for (int i = 0; i < 3; i++)
		print_row(&rows[i]);
	fflush(stdout);

	double cr[T_COUNT] = { 0 }, st[T_COUNT] = { 0 };
	for (int t = 0; t < nt; t++) {
		if ((rc = small_files(dir[t], a->files, pool, &cr[t], &st[t])) < 0) {
			fprintf(stderr, "caskfs bench: small-file workload failed in %s: %s\n", dir[t],
				strerror(-rc));
			goto out;
		}
	}
	rows[nrows++] = (struct result){ .name = "create 16 KiB files",
					 .unit = "files/s",
					 .native = cr[T_NATIVE],
					 .caskfs = cr[T_CASKFS],
					 .floor = cr[T_FLOOR],
					 .goal = 1.0 };
	rows[nrows++] = (struct result){ .name = "stat of them",
					 .unit = "stats/s",
					 .native = st[T_NATIVE],
					 .caskfs = st[T_CASKFS],
					 .floor = st[T_FLOOR],
					 .goal = 0.5 };
	print_row(&rows[3]);
	print_row(&rows[4]);
	fflush(stdout);

	struct result rs = {
		.name = "rsync -a of a media tree", .unit = "s", .goal = 0.7, .lower_better = true
	};
	double secs[T_COUNT] = { 0 };
	for (int t = 0; t < T_COUNT; t++)
		snprintf(dst[t], 2 * SUB_MAX, "%s/rsync", dir[t]);
	if (!have("rsync")) {
		rs.skipped = true;
		rs.why = "rsync is not installed";
	} else if (make_media(media, pool) < 0) {
		rs.skipped = true;
		rs.why = "cannot write the media tree";
	}
	for (int t = 0; t < nt && !rs.skipped; t++) {
		if ((secs[t] = rsync_tree(media, dst[t])) < 0) {
			rs.skipped = true;
			rs.why = "rsync failed";
		}
	}
	rs.native = secs[T_NATIVE];
	rs.caskfs = secs[T_CASKFS];
	rs.floor = secs[T_FLOOR];
	rows[nrows++] = rs;
	print_row(&rs);
	fflush(stdout);

	struct result ng = { .name = "nginx + wrk, 16 KiB files", .unit = "req/s", .goal = 0.9 };
	double rps[T_COUNT] = { 0 };
	if (!have("nginx") || !have("wrk")) {
		ng.skipped = true;
		ng.why = "needs nginx and wrk";
	}
	for (int t = 0; t < nt && !ng.skipped; t++) {
		if ((rps[t] = nginx_wrk(dir[t], work)) <= 0) {
			ng.skipped = true;
			ng.why = "nginx or wrk failed";
		}
	}
	ng.native = rps[T_NATIVE];
	ng.caskfs = rps[T_CASKFS];
	ng.floor = rps[T_FLOOR];
	rows[nrows++] = ng;
	print_row(&ng);
	rc = 0;
out:
	catch_stop_signals(false);
	floor_stop(floor, floor_mnt);
	rm_rf(dir[T_CASKFS]);
	rm_rf(work);
	free(data);
	free(pool);
	return rc < 0 ? CLI_IO : CLI_OK;
}
