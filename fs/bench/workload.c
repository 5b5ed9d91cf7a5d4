/*
 * workload - what `caskfs bench` measures, each run the same way in the
 * native directory, on the mount and on the null filesystem: sequential
 * write, cold and warm read; creating and stat'ing small files; rsync of a
 * media tree (photos, audio, text); nginx serving small files to wrk; and
 * what a request and its answer between two threads cost on this machine.
 * Workloads and goals: docs/BENCHMARKS.md ("The mount").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_i.h"

static uint64_t rng_state = 88172645463325252ull;

void fs_bench_fill_random(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		rng_state ^= rng_state << 13;
		rng_state ^= rng_state >> 7;
		rng_state ^= rng_state << 17;
		memcpy(p + i, &rng_state, n - i < 8 ? n - i : 8);
	}
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
int fs_bench_seq(const char *dir, size_t bytes, uint8_t *pool, double *w, double *cold,
		 double *warm)
{
	char path[SUB_MAX];
	double t, got;
	int rc;

	snprintf(path, sizeof(path), "%s/seq.bin", dir);
	t = fs_now_seconds();
	rc = write_file(path, pool, 1u << 20, bytes, true);
	if (rc < 0)
		return rc;
	*w = (double)bytes / 1e6 / (fs_now_seconds() - t);
	drop_caches();
	t = fs_now_seconds();
	got = read_file(path, pool + (16u << 20), 1u << 20);
	*cold = got / 1e6 / (fs_now_seconds() - t);
	t = fs_now_seconds();
	got = read_file(path, pool + (16u << 20), 1u << 20);
	*warm = got / 1e6 / (fs_now_seconds() - t);
	unlink(path);
	return got < 0 ? -EIO : 0;
}

/* create+write+close of n files of 16 KiB, then stat of them. */
int fs_bench_small_files(const char *dir, int n, uint8_t *pool, double *create, double *stats)
{
	char path[SUB_MAX];
	struct stat st;
	double t;

	struct progress bar;
	snprintf(path, sizeof(path), "%s/small", dir);
	mkdir(path, 0755);
	progress_start(&bar, "bench: 16 KiB files", (uint64_t)n);
	t = fs_now_seconds();
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
	*create = n / (fs_now_seconds() - t);
	progress_end(&bar);
	drop_caches();
	t = fs_now_seconds();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/small/f%06d", dir, i);
		if (stat(path, &st) < 0)
			return -errno;
	}
	*stats = n / (fs_now_seconds() - t);
	return 0;
}

/* A media tree: photo-like random files 20 KiB to 3 MiB, audio-like 8 MiB
 * files, compressible text 100 B to 100 KiB, nested directories. */
int fs_bench_make_media(const char *root, uint8_t *pool)
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

double fs_bench_rsync(const char *src, const char *dst)
{
	char s[SUB_MAX], d[SUB_MAX];
	char *argv[] = { "rsync", "-a", s, d, NULL };
	double t;

	if (snprintf(s, sizeof(s), "%s/", src) >= (int)sizeof(s) ||
	    snprintf(d, sizeof(d), "%s/", dst) >= (int)sizeof(d))
		return -1;
	drop_caches();
	t = fs_now_seconds();
	if (fs_bench_run(argv, NULL, 0) != 0)
		return -1;
	return fs_now_seconds() - t;
}

/* nginx on a free port serving dir, wrk against one 16 KiB file: requests/s. */
double fs_bench_nginx_wrk(const char *dir, const char *work)
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
	int len =
	    snprintf(text, sizeof(text),
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
	fs_bench_stop_pid(FS_BENCH_PID_NGINX, pid);
	usleep(500000);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/small/f000042", port);
	if (fs_bench_run(wrk, out, sizeof(out)) == 0) {
		char *p = strstr(out, "Requests/sec:");
		if (p)
			rps = atof(p + 13);
	}
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	fs_bench_stop_pid(FS_BENCH_PID_NGINX, 0);
	return rps;
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
double fs_bench_pingpong_us(bool one_cpu)
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
		double start = fs_now_seconds();
		for (; i < PINGPONG_ROUNDS; i++)
			if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1)
				break;
		if (i == PINGPONG_ROUNDS)
			t = (fs_now_seconds() - start) / PINGPONG_ROUNDS * 1e6;
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
