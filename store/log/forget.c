/*
 * forget - a node lets go of its copy of a key it no longer holds for the
 * cluster (a bucket that moved to other nodes, docs/REPLICATION.md). The
 * one idea: nothing is written, the key only leaves the keydir, the hash
 * tree and the live counters, so the record becomes garbage that compaction
 * reclaims; no version is created that could travel to the owners and win
 * over their copies. Until its segment is compacted, a restart brings the
 * record back, and the rebalancer forgets it again.
 */
#include "store_i.h"

int store_forget(struct store *s, const void *key, size_t klen, const struct store_version *v)
{
	uint64_t hash;
	int rc;

	if (store_key_check(key, klen) < 0 || !v)
		return -EINVAL;
	hash = store_key_hash(key, klen);
	/* write_mu: no append of this key slips between the check and the removal */
	pthread_mutex_lock(&s->write_mu);
	pthread_rwlock_wrlock(&s->lock);
	rc = store_index_forget(s, hash, key, klen, v);
	pthread_rwlock_unlock(&s->lock);
	pthread_mutex_unlock(&s->write_mu);
	return rc;
}
