/*
 * bench_i.h - `caskfs bench` (fs/bench/bench.c) and the null filesystem it
 * measures beside caskfs (fs/bench/floor.c).
 */
#ifndef CASKFS_FS_BENCH_BENCH_I_H
#define CASKFS_FS_BENCH_BENCH_I_H

#include <stddef.h>

struct bench_args {
	const char *mountpoint;
	size_t seq_bytes; /* sequential workload size */
	int files;	  /* small files created */
};

int cli_bench(const struct bench_args *a);

/* Mounts the null filesystem of fs/bench/floor.c on mountpoint, writes a byte
 * to ready_fd (unless -1) once mounted, and serves it until unmounted or sent
 * SIGTERM: 0 or -errno. */
int fs_floor_serve(const char *mountpoint, int ready_fd);

#endif
