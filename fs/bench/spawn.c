/*
 * spawn - the programs and children `caskfs bench` runs (rsync, nginx, wrk,
 * rm, fusermount3, the null filesystem of floor.c), and what a signal that
 * stops the bench (^C, a closed pipe) takes down with it: from the handler,
 * and so with async-signal-safe calls only, the null filesystem and nginx
 * are stopped (the former unmounts itself), then `rm -rf` removes the work
 * directory and the directory on the mount.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_i.h"

/* Runs argv, waits, returns its exit status (or -1); output to /dev/null
 * unless out is given (then the child's stdout is read into it). */
int fs_bench_run(char *const argv[], char *out, size_t outcap)
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

static volatile pid_t stop_pids[FS_BENCH_PIDS]; /* the null filesystem, nginx */
static char *stop_rm[5];			/* "rm", "-rf", work, dir on the mount, NULL */

static void on_stop_signal(int sig)
{
	for (int i = 0; i < FS_BENCH_PIDS; i++) {
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

void fs_bench_stop_pid(int which, pid_t pid)
{
	stop_pids[which] = pid;
}

void fs_bench_stop_dirs(char *work, char *mnt_dir)
{
	stop_rm[0] = "rm";
	stop_rm[1] = "-rf";
	stop_rm[2] = work;
	stop_rm[3] = mnt_dir;
}

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };

/* Installs (on) or removes the handler. */
void fs_bench_catch_signals(bool on)
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

int fs_bench_rm_rf(const char *path)
{
	char *argv[] = { "rm", "-rf", (char *)path, NULL };

	return fs_bench_run(argv, NULL, 0);
}

bool fs_bench_have(const char *prog)
{
	char *argv[] = { "sh", "-c", NULL, NULL };
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s", prog);
	argv[2] = cmd;
	return fs_bench_run(argv, NULL, 0) == 0;
}

pid_t fs_bench_floor_start(const char *dir, _Atomic uint64_t *requests, enum fs_uring_mode uring)
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
		fs_bench_catch_signals(false); /* libfuse's handlers unmount */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent) /* gone before the death signal was set */
			_exit(1);
		close(p[0]);
		int null = open("/dev/null", O_RDWR);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		_exit(fs_floor_serve(dir, p[1], requests, uring) == 0 ? 0 : 1);
	}
	close(p[1]);
	/* a byte once mounted; end of file if it failed */
	ssize_t n = pid > 0 ? read(p[0], &byte, 1) : -1;
	close(p[0]);
	if (n == 1)
		return pid;
	if (pid > 0)
		waitpid(pid, NULL, 0);
	fprintf(stderr,
		"caskfs bench: cannot mount the null FUSE filesystem on %s: "
		"its column stays empty\n",
		dir);
	return -1;
}

void fs_bench_floor_stop(pid_t pid, const char *dir)
{
	char *argv[] = { "fusermount3", "-u", (char *)dir, NULL };
	char *lazy[] = { "fusermount3", "-uz", (char *)dir, NULL };

	if (pid <= 0)
		return;
	if (fs_bench_run(argv, NULL, 0) != 0)
		fs_bench_run(lazy, NULL, 0);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}
