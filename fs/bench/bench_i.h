/*
 * bench_i.h - `caskfs bench` (bench.c: the command, its rounds and its
 * table), the workloads it measures (workload.c: files; tree.c: trees;
 * serve.c: nginx, and the machine's thread round trip), the bytes they
 * write and the helpers they share (data.c), the programs and children it
 * runs and cleans up after a signal (spawn.c), and the null filesystem it
 * measures beside caskfs (floor.c). Calls go bench.c -> workload.c, tree.c,
 * serve.c -> data.c, spawn.c -> floor.c -> fs/daemon/session.c. Paths
 * passed in are the caller's; none is kept except by fs_bench_stop_dirs,
 * whose strings must live until the handler is removed.
 */
#ifndef CASKFS_FS_BENCH_BENCH_I_H
#define CASKFS_FS_BENCH_BENCH_I_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/common/common_i.h"
#include "fs/daemon/session_i.h"

/* Paths built from a base path of up to PATH_MAX bytes. */
#define SUB_MAX (PATH_MAX + 256)
#define FS_BENCH_MAX_ROUNDS 64

struct bench_args {
	const char *mountpoint;
	size_t seq_bytes; /* sequential workload size; trees are scaled from it */
	int files;	  /* small and empty files created */
	int rounds;	  /* of each workload in each place, 1 to FS_BENCH_MAX_ROUNDS */
	const char *tree; /* the small-file tree: comma-separated directories */
	const char *only; /* comma-separated workload names, or NULL for all */
};

/* bench.c: the command (docs/USAGE.md, "caskfs bench"). */
int cli_bench(const struct bench_args *a);

enum { T_NATIVE, T_CASKFS, T_FLOOR, T_COUNT }; /* the places a workload runs */

/* What a workload noted over its rounds besides its figures. */
struct bench_note {
	uint64_t requests[T_COUNT][FS_OPCODES]; /* FUSE requests of the tree's rsync */
	uint64_t files[T_COUNT];		/* the files they were for */
	uint64_t stored_bytes;			/* dedup: log growth of the second copies */
	uint64_t data_bytes;			/* ... and the bytes they copied */
};

/* One run of a workload in one place. */
struct bench_place {
	const struct bench_args *a;
	int target;			  /* T_* */
	const char *dir;		  /* an empty directory for this run, removed after it */
	const char *work;		  /* the bench's directory on the native disk (sources) */
	const char *data_dir;		  /* the mount's DATA_DIR */
	_Atomic uint64_t *floor_requests; /* the null filesystem's counts, or NULL */
	uint64_t seed;			  /* of its bytes: new in every round and place */
	struct bench_note *note;
};

/* ---- workload.c, tree.c, serve.c: each fills its figures in out and
 * returns 0 or -errno ---- */

int fs_bench_seq(const struct bench_place *p, double *out);
int fs_bench_small(const struct bench_place *p, double *out);
int fs_bench_empty(const struct bench_place *p, double *out);
int fs_bench_big(const struct bench_place *p, double *out);
int fs_bench_fsync(const struct bench_place *p, double *out);
/* The sources of a round, in work, from seed: 0 or -errno. */
int fs_bench_media_prepare(const struct bench_args *a, const char *work, uint64_t seed);
int fs_bench_media(const struct bench_place *p, double *out);
int fs_bench_dedup_prepare(const struct bench_args *a, const char *work, uint64_t seed);
int fs_bench_dedup(const struct bench_place *p, double *out);
int fs_bench_tree(const struct bench_place *p, double *out);
int fs_bench_nginx(const struct bench_place *p, double *out);
/* Microseconds a request and its answer between two threads take (both on
 * one CPU with one_cpu), or -1. */
double fs_bench_pingpong_us(bool one_cpu);

/* ---- data.c ---- */

struct fs_bench_rng {
	uint64_t s[4];
};
void fs_bench_rng_seed(struct fs_bench_rng *r, uint64_t seed);
uint64_t fs_bench_rng_next(struct fs_bench_rng *r);
/* n bytes that do not repeat (incompressible). */
void fs_bench_fill(struct fs_bench_rng *r, void *p, size_t n);
/* n bytes of words: compressible, and still never the same block twice. */
void fs_bench_fill_text(struct fs_bench_rng *r, char *p, size_t n);
/* sync, then drop the page, dentry and inode caches (needs root). */
void fs_bench_drop_caches(void);
/* How often programs other than this one dropped the machine's caches
 * since *mark was taken (then *mark is now); a first call with *mark 0
 * sets it. A warm figure measured meanwhile was not warm throughout. */
unsigned long fs_bench_foreign_drops(unsigned long *mark);
/* Writes len bytes of buf to path in writes of block bytes (then fsync):
 * 0 or -errno. */
int fs_bench_write_file(const char *path, const void *buf, size_t len, size_t block, bool do_fsync);
/* Reads path to its end in reads of block bytes into buf: the bytes, or -1. */
double fs_bench_read_file(const char *path, void *buf, size_t block);
/* The value of the stat name of the mount serving DATA_DIR data_dir (its
 * control socket), or -1. */
long long fs_bench_mount_stat(const char *data_dir, const char *name);
/* The median of v[0..n), n <= FS_BENCH_MAX_ROUNDS; qsort's comparison. */
double fs_bench_median(const double *v, int n);
int fs_bench_cmp_double(const void *a, const void *b);

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
/* The null filesystem in a child process, mounted on dir (made here),
 * counting its requests by opcode into requests[FS_OPCODES] (memory shared
 * with the child, or NULL), its requests through io_uring or not as uring
 * says: its pid, or -1 when it could not be mounted
 * (said on stderr). */
pid_t fs_bench_floor_start(const char *dir, _Atomic uint64_t *requests, enum fs_uring_mode uring);
/* Unmounts the null filesystem at dir and waits for its process (pid <= 0:
 * nothing). */
void fs_bench_floor_stop(pid_t pid, const char *dir);

/* ---- floor.c ---- */

/* Mounts the null filesystem on mountpoint, writes a byte to ready_fd
 * (unless -1) once mounted, and serves it until unmounted or sent SIGTERM,
 * counting requests into requests (or not, NULL), through io_uring or not
 * as uring says: 0 or -errno. */
int fs_floor_serve(const char *mountpoint, int ready_fd, _Atomic uint64_t *requests,
		   enum fs_uring_mode uring);

#endif
