/*
 * workload - the file workloads of `caskfs bench`, each run the same way in
 * the native directory, on the mount and on the null filesystem, once per
 * round, in an empty directory the caller removes afterwards: sequential
 * write + fsync and cold and warm reads; small files created, stat'ed cold
 * and warm and listed cold; empty files created and unlinked; 1 MiB files;
 * the latency of an fsync after a 4 KiB write. Every byte comes from the
 * generator of data.c, seeded per round and place, so no block repeats.
 * Workloads and goals: docs/BENCHMARKS.md ("The mount").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_i.h"

#define MIB (1u << 20)

/* figures: write MB/s, cold read MB/s, warm read MB/s */
int fs_bench_seq(const struct bench_place *p, double *out)
{
	size_t bytes = p->a->seq_bytes;
	uint8_t *data = malloc(bytes), *buf = malloc(MIB);
	struct fs_bench_rng rng;
	char path[SUB_MAX];
	double t, got;
	int rc = -ENOMEM;

	if (!data || !buf)
		goto out;
	fs_bench_rng_seed(&rng, p->seed);
	fs_bench_fill(&rng, data, bytes); /* before the clock starts */
	snprintf(path, sizeof(path), "%s/seq.bin", p->dir);
	t = fs_now_seconds();
	if ((rc = fs_bench_write_file(path, data, bytes, MIB, true)) < 0)
		goto out;
	out[0] = (double)bytes / 1e6 / (fs_now_seconds() - t);
	fs_bench_drop_caches();
	t = fs_now_seconds();
	got = fs_bench_read_file(path, buf, MIB);
	out[1] = got / 1e6 / (fs_now_seconds() - t);
	t = fs_now_seconds();
	got = fs_bench_read_file(path, buf, MIB);
	out[2] = got / 1e6 / (fs_now_seconds() - t);
	rc = got == (double)bytes ? 0 : -EIO;
out:
	free(data);
	free(buf);
	return rc;
}

/* figures: 16 KiB files created+written+closed /s, cold stats/s, warm
 * stats/s, entries listed /s cold */
int fs_bench_small(const struct bench_place *p, double *out)
{
	const size_t size = 16384;
	int n = p->a->files;
	uint8_t *data = malloc((size_t)n * size);
	struct fs_bench_rng rng;
	char path[SUB_MAX];
	struct progress bar;
	struct stat st;
	double t;
	int rc = 0;

	if (!data)
		return -ENOMEM;
	fs_bench_rng_seed(&rng, p->seed);
	fs_bench_fill(&rng, data, (size_t)n * size);
	progress_start(&bar, "bench: 16 KiB files", (uint64_t)n);
	t = fs_now_seconds();
	for (int i = 0; i < n && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/f%06d", p->dir, i);
		rc = fs_bench_write_file(path, data + (size_t)i * size, size, size, false);
		if ((i & 255) == 0)
			progress_step(&bar, (uint64_t)i);
	}
	out[0] = n / (fs_now_seconds() - t);
	progress_end(&bar);
	free(data);
	if (rc < 0)
		return rc;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			fs_bench_drop_caches();
		t = fs_now_seconds();
		for (int i = 0; i < n; i++) {
			snprintf(path, sizeof(path), "%s/f%06d", p->dir, i);
			if (stat(path, &st) < 0)
				return -errno;
		}
		out[1 + pass] = n / (fs_now_seconds() - t);
	}
	fs_bench_drop_caches();
	t = fs_now_seconds();
	DIR *d = opendir(p->dir);
	long entries = 0;
	if (!d)
		return -errno;
	while (readdir(d))
		entries++;
	closedir(d);
	out[3] = entries / (fs_now_seconds() - t);
	return entries >= n ? 0 : -EIO;
}

/* figures: empty files created /s, unlinked /s */
int fs_bench_empty(const struct bench_place *p, double *out)
{
	int n = p->a->files;
	char path[SUB_MAX];
	double t = fs_now_seconds();

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/e%06d", p->dir, i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0)
			return -errno;
		close(fd);
	}
	out[0] = n / (fs_now_seconds() - t);
	t = fs_now_seconds();
	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/e%06d", p->dir, i);
		if (unlink(path) < 0)
			return -errno;
	}
	out[1] = n / (fs_now_seconds() - t);
	return 0;
}

/* figures: 1 MiB files created+written+closed /s (a quarter of --size of them) */
int fs_bench_big(const struct bench_place *p, double *out)
{
	int n = (int)(p->a->seq_bytes / 4 / MIB);
	uint8_t *data;
	struct fs_bench_rng rng;
	char path[SUB_MAX];
	double t;
	int rc = 0;

	if (n < 4)
		n = 4;
	if (!(data = malloc((size_t)n * MIB)))
		return -ENOMEM;
	fs_bench_rng_seed(&rng, p->seed);
	fs_bench_fill(&rng, data, (size_t)n * MIB);
	t = fs_now_seconds();
	for (int i = 0; i < n && rc == 0; i++) {
		snprintf(path, sizeof(path), "%s/b%04d", p->dir, i);
		rc = fs_bench_write_file(path, data + (size_t)i * MIB, MIB, MIB, false);
	}
	out[0] = n / (fs_now_seconds() - t);
	free(data);
	return rc;
}

#define FSYNC_ROUNDS 200

/* figures: p50 and p90 of the microseconds a 4 KiB pwrite + fsync takes */
int fs_bench_fsync(const struct bench_place *p, double *out)
{
	char path[SUB_MAX];
	uint8_t block[4096];
	double us[FSYNC_ROUNDS];
	struct fs_bench_rng rng;
	int fd, rc = 0;

	fs_bench_rng_seed(&rng, p->seed);
	snprintf(path, sizeof(path), "%s/fsync.bin", p->dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return -errno;
	for (int i = 0; i < FSYNC_ROUNDS && rc == 0; i++) {
		fs_bench_fill(&rng, block, sizeof(block));
		double t = fs_now_seconds();
		if (pwrite(fd, block, sizeof(block), (off_t)i * 4096) != (ssize_t)sizeof(block) ||
		    fsync(fd) < 0)
			rc = errno ? -errno : -EIO;
		us[i] = (fs_now_seconds() - t) * 1e6;
	}
	close(fd);
	if (rc < 0)
		return rc;
	qsort(us, FSYNC_ROUNDS, sizeof(us[0]), fs_bench_cmp_double);
	out[0] = us[FSYNC_ROUNDS / 2];
	out[1] = us[FSYNC_ROUNDS * 9 / 10];
	return 0;
}
