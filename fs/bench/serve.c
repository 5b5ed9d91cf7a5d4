/*
 * serve - the bench's serving workload and its measure of the machine:
 * nginx serving a 16 KiB file from the place under test to wrk, and what a
 * request and its answer between two threads cost here (the header of the
 * table: every FUSE request pays at least that, a native call nothing).
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

/* nginx on a free port serving dir, wrk against its file f16k: requests/s, or -1. */
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
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/f16k", port);
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

/* figures: requests/s of wrk against nginx serving a 16 KiB file from p->dir */
int fs_bench_nginx(const struct bench_place *p, double *out)
{
	char path[SUB_MAX];
	uint8_t data[16384];
	struct fs_bench_rng rng;
	int rc;

	fs_bench_rng_seed(&rng, p->seed);
	fs_bench_fill(&rng, data, sizeof(data));
	snprintf(path, sizeof(path), "%s/f16k", p->dir);
	if ((rc = fs_bench_write_file(path, data, sizeof(data), sizeof(data), false)) < 0)
		return rc;
	out[0] = nginx_wrk(p->dir, p->work);
	return out[0] > 0 ? 0 : -EIO;
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
