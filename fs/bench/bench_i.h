/*
 * bench_i.h - `caskfs bench` (bench.c, the command and its table), the
 * workloads it measures (workload.c), the programs and children it runs and
 * cleans up after a signal (spawn.c), and the null filesystem it measures
 * beside caskfs (floor.c). Calls go bench.c -> workload.c -> spawn.c ->
 * floor.c -> fs/daemon/session.c. Paths passed in are the caller's; none is
 * kept except by fs_bench_stop_dirs, whose strings must live until the
 * handler is removed.
 */
#ifndef CASKFS_FS_BENCH_BENCH_I_H
#define CASKFS_FS_BENCH_BENCH_I_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/common/common_i.h"

/* Paths built from a base path of up to PATH_MAX bytes. */
#define SUB_MAX (PATH_MAX + 256)

struct bench_args {
	const char *mountpoint;
	size_t seq_bytes; /* sequential workload size */
	int files;	  /* small files created */
};

/* bench.c: the command (docs/USAGE.md, "caskfs bench"). */
int cli_bench(const struct bench_args *a);

/* ---- workload.c: each returns 0 or -errno, its figures through pointers ---- */

/* Fills p with n pseudo-random bytes (incompressible, the same every run). */
void fs_bench_fill_random(uint8_t *p, size_t n);
/* Writes bytes of pool to dir/seq.bin with fsync, then reads it cold and
 * warm in 1 MiB blocks: MB/s of each (pool holds at least 32 MiB). */
int fs_bench_seq(const char *dir, size_t bytes, uint8_t *pool, double *w, double *cold,
		 double *warm);
/* Creates, writes and closes n files of 16 KiB in dir/small, then stats
 * them: files and stats per second. */
int fs_bench_small_files(const char *dir, int n, uint8_t *pool, double *create, double *stats);
/* Writes the media tree (photos, audio, text, nested directories) at root. */
int fs_bench_make_media(const char *root, uint8_t *pool);
/* Seconds of `rsync -a src/ dst/` after dropping the caches, or -1. */
double fs_bench_rsync(const char *src, const char *dst);
/* Requests per second of wrk against nginx serving dir (its files in work),
 * or -1. */
double fs_bench_nginx_wrk(const char *dir, const char *work);
/* Microseconds a request and its answer between two threads take (both on
 * one CPU with one_cpu), or -1. */
double fs_bench_pingpong_us(bool one_cpu);

/* ---- spawn.c ---- */

/* Runs argv and waits: its exit status, or -1. Its output goes to
 * /dev/null unless out is given (then its stdout is read into out). */
int fs_bench_run(char *const argv[], char *out, size_t outcap);
/* Whether prog is on PATH. */
bool fs_bench_have(const char *prog);
/* `rm -rf path`: its exit status, or -1. */
int fs_bench_rm_rf(const char *path);

/* The children a signal that stops the bench takes down. */
enum { FS_BENCH_PID_FLOOR, FS_BENCH_PID_NGINX, FS_BENCH_PIDS };
/* Child which is now pid (0: none). */
void fs_bench_stop_pid(int which, pid_t pid);
/* The directories a signal that stops the bench removes. */
void fs_bench_stop_dirs(char *work, char *mnt_dir);
/* Installs (on) or removes the handler of SIGINT, SIGTERM, SIGHUP, SIGPIPE. */
void fs_bench_catch_signals(bool on);
/* The null filesystem in a child process, mounted on dir (made here): its
 * pid, or -1 when it could not be mounted (said on stderr). */
pid_t fs_bench_floor_start(const char *dir);
/* Unmounts the null filesystem at dir and waits for its process (pid <= 0:
 * nothing). */
void fs_bench_floor_stop(pid_t pid, const char *dir);

/* ---- floor.c ---- */

/* Mounts the null filesystem on mountpoint, writes a byte to ready_fd
 * (unless -1) once mounted, and serves it until unmounted or sent SIGTERM:
 * 0 or -errno. */
int fs_floor_serve(const char *mountpoint, int ready_fd);

#endif
