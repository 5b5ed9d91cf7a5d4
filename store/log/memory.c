/*
 * memory - keeps what the process holds in memory near what it needs,
 * whatever a program asks of the store: called by the compactor thread
 * every compact_interval_ms, it acts at most every few seconds. Two things
 * grow by themselves otherwise. Pages of the segment mappings a read has
 * touched stay in the process's resident set (RssFile) until the kernel
 * needs them, so reading a large log through the mappings makes a daemon
 * look gigabytes large; above opt.map_resident_max they are dropped from
 * the mappings (MADV_DONTNEED: the pages stay in the page cache, the next
 * read maps them again with a minor fault, nothing is lost, since the
 * mappings are read-only). And freed malloc memory in the middle of glibc's
 * per-thread arenas is not given back until malloc_trim.
 */
#include <malloc.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "store_i.h"

#define TRIM_PERIOD_S 5

/* Resident pages that are file-backed or shared (statm's third field). */
static uint64_t shared_resident_bytes(void)
{
	unsigned long size, resident, shared;
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%lu %lu %lu", &size, &resident, &shared);
	fclose(f);
	return n == 3 ? (uint64_t)shared * (uint64_t)sysconf(_SC_PAGESIZE) : 0;
}

void store_memory_trim(struct store *s)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (s->trimmed_at && now.tv_sec - s->trimmed_at < TRIM_PERIOD_S)
		return;
	s->trimmed_at = now.tv_sec;
	if (s->opt.map_resident_max && shared_resident_bytes() > s->opt.map_resident_max) {
		pthread_rwlock_rdlock(&s->lock);
		for (uint32_t i = 0; i < s->segs_cap; i++) {
			struct store_segment *seg = s->segs[i];
			if (seg && seg->map)
				madvise((void *)seg->map, seg->map_len, MADV_DONTNEED);
		}
		pthread_rwlock_unlock(&s->lock);
	}
	malloc_trim(0);
}
