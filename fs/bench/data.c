/*
 * data - what the workloads of `caskfs bench` write and how they time it:
 * bytes from a fast generator (xoshiro256+, seeded by splitmix64), so that
 * every block of every file of every round is different. caskfs stores a
 * chunk once however often it is written, so data that repeats would
 * measure deduplication instead of the write path; the one workload that
 * measures deduplication says so (tree.c). Also the helpers each workload
 * shares: dropping the caches, writing and reading a file, medians.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_i.h"
#include "store/node/client.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void fs_bench_rng_seed(struct fs_bench_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t fs_bench_rng_next(struct fs_bench_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = s[0] + s[3], t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

void fs_bench_fill(struct fs_bench_rng *r, void *p, size_t n)
{
	uint8_t *b = p;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v = fs_bench_rng_next(r);
		memcpy(b + i, &v, 8);
	}
	if (i < n) {
		uint64_t v = fs_bench_rng_next(r);
		memcpy(b + i, &v, n - i);
	}
}

/* Words for text that compresses like prose and still differs in every
 * block (the word sequence comes from the generator). */
static const char *const words[] = {
	"the",	  "harbour", "at",	"dusk",	 "a",	  "comment", "on",     "photo",
	"of",	  "light",   "and",	"water", "nice",  "colours", "from",   "above",
	"where",  "was",     "this",	"taken", "boats", "in",	     "winter", "morning",
	"thanks", "for",     "sharing", "great", "view",  "old",     "town",   "bridge",
};

void fs_bench_fill_text(struct fs_bench_rng *r, char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint64_t v = fs_bench_rng_next(r);
		const char *w = words[v % (sizeof(words) / sizeof(words[0]))];
		for (; *w && i < n; w++)
			p[i++] = *w;
		if (i < n)
			p[i++] = (v >> 32) % 11 == 0 ? '\n' : ' ';
	}
}

static unsigned long own_drops; /* fs_bench_drop_caches's, for fs_bench_foreign_drops */

/* drop_pagecache + drop_slab of /proc/vmstat: what every writer of drop_caches adds. */
static unsigned long vmstat_drops(void)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char name[64];
	unsigned long v, total = 0;

	if (!f)
		return 0;
	while (fscanf(f, "%63s %lu", name, &v) == 2)
		if (strcmp(name, "drop_pagecache") == 0 || strcmp(name, "drop_slab") == 0)
			total += v;
	fclose(f);
	return total;
}

unsigned long fs_bench_foreign_drops(unsigned long *mark)
{
	unsigned long now = vmstat_drops() - 2 * own_drops, then = *mark;

	*mark = now;
	return now - then;
}

void fs_bench_drop_caches(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0)
		own_drops++;
	if (fd >= 0) {
		if (write(fd, "3\n", 2) != 2)
			fprintf(stderr, "caskfs bench: cannot drop caches: %s\n", strerror(errno));
		close(fd);
	}
}

int fs_bench_write_file(const char *path, const void *buf, size_t len, size_t block, bool do_fsync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	const uint8_t *b = buf;

	if (fd < 0)
		return -errno;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < block ? len - done : block;
		ssize_t w = write(fd, b + done, n);
		if (w <= 0) {
			int e = w < 0 ? -errno : -EIO;
			close(fd);
			return e;
		}
		done += (size_t)w;
	}
	if (do_fsync && fsync(fd) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return close(fd) < 0 ? -errno : 0;
}

double fs_bench_read_file(const char *path, void *buf, size_t block)
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

int fs_bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double fs_bench_median(const double *v, int n)
{
	double s[FS_BENCH_MAX_ROUNDS];

	if (n <= 0)
		return 0;
	if (n > (int)(sizeof(s) / sizeof(s[0])))
		n = (int)(sizeof(s) / sizeof(s[0]));
	memcpy(s, v, (size_t)n * sizeof(*v));
	qsort(s, (size_t)n, sizeof(*s), fs_bench_cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

struct stat_query {
	const char *name;
	long long value;
};

static int stat_line(void *arg, const char *line, size_t len)
{
	struct stat_query *q = arg;
	size_t n = strlen(q->name);

	(void)len;
	if (strncmp(line, "STAT ", 5) == 0 && strncmp(line + 5, q->name, n) == 0 &&
	    line[5 + n] == ' ')
		q->value = atoll(line + 6 + n);
	return 0;
}

long long fs_bench_mount_stat(const char *data_dir, const char *name)
{
	struct stat_query q = { name, -1 };
	char addr[SUB_MAX];
	struct mc_conn *c;

	if (node_control_addr(data_dir, addr, sizeof(addr)) &&
	    mc_connect(addr, NULL, 2000, 10000, &c) == 0) {
		mc_lines(c, "stats", stat_line, &q);
		mc_close(c);
	}
	return q.value;
}
