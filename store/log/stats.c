/*
 * stats - what the engine reports about itself: the counters and sizes of
 * store_stats() and the segment list of store_segments(). The one idea: the
 * numbers that live under the rwlock are read under it, in one go, so they
 * agree with each other; the atomic counters are read after it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

void store_stats(struct store *s, struct store_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->node_id = s->opt.node_id;
	pthread_rwlock_rdlock(&s->lock);
	st->keys = s->keys;
	st->tombstones = s->tombstones;
	st->expiring = s->expiring;
	st->live_bytes = s->live_bytes;
	for (uint32_t i = 0; i < s->segs_cap; i++) {
		if (s->segs[i]) {
			st->segments++;
			st->disk_bytes += atomic_load(&s->segs[i]->size);
		}
	}
	st->keydir_bytes = store_kd_bytes(s->kd);
	st->tree_root = store_htree_node(s->tree, 0, 0).hash;
	pthread_rwlock_unlock(&s->lock);
	st->puts = atomic_load(&s->puts);
	st->deletes = atomic_load(&s->deletes);
	st->gets = atomic_load(&s->gets);
	st->read_bytes = atomic_load(&s->read_bytes);
	st->get_misses = atomic_load(&s->get_misses);
	st->compactions = atomic_load(&s->compactions);
	st->compacted_bytes = atomic_load(&s->compacted_bytes);
	st->reclaimed_bytes = atomic_load(&s->reclaimed_bytes);
	st->corrupt_records = atomic_load(&s->corrupt_records);
	st->cut_bytes = atomic_load(&s->cut_bytes);
	st->expired = atomic_load(&s->expired);
	st->appended = atomic_load(&s->appended);
	pthread_mutex_lock(&s->sync_mu);
	st->synced_through = s->synced;
	pthread_mutex_unlock(&s->sync_mu);
}

int store_segments(struct store *s, store_segment_fn fn, void *arg)
{
	struct store_segment_info *info;
	size_t n = 0;
	int rc = 0;

	pthread_rwlock_rdlock(&s->lock);
	info = calloc(s->segs_cap ? s->segs_cap : 1, sizeof(*info));
	for (uint32_t i = 0; info && i < s->segs_cap; i++) {
		struct store_segment *seg = s->segs[i];
		if (!seg)
			continue;
		info[n].id = seg->id;
		info[n].disk_bytes = atomic_load(&seg->size);
		info[n].live_bytes = seg->live_bytes;
		info[n].sealed = seg->sealed;
		n++;
	}
	pthread_rwlock_unlock(&s->lock);
	if (!info)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(arg, &info[i]);
	free(info);
	return rc;
}
