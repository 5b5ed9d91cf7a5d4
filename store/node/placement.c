/*
 * placement - which nodes own a bucket: rendezvous hashing. A key falls into
 * one of CLUSTER_BUCKETS buckets by the top bits of its tree hash (so a
 * bucket is a leaf of the store's hash tree), and every node scores
 * xxh3(bucket, seed = xxh3(node address)); the N highest own the bucket.
 * Every node computes the same owners from the same node list, and a node
 * joining or leaving changes only the buckets it wins or held. Placing
 * buckets instead of keys lets two nodes find what they share (and what a
 * change moved) a bucket at a time. docs/REPLICATION.md ("Placement").
 */
#include <string.h>

#include "cluster_i.h"
#include "../endian.h"
#include "../xxh_i.h"

uint64_t cluster_seed(const char *addr)
{
	return XXH3_64bits(addr, strlen(addr));
}

uint32_t cluster_bucket(const void *key, size_t klen)
{
	return cluster_bucket_of(store_key_hash(key, klen));
}

static inline uint64_t score(uint64_t seed, uint32_t bucket)
{
	uint8_t b[4];

	put_le32(b, bucket);
	return XXH3_64bits_withSeed(b, sizeof(b), seed);
}

void cluster_rank(const uint64_t *seeds, int count, int n, uint32_t bucket, int *rank)
{
	uint64_t best[CLUSTER_MAX_NODES];
	int have = 0;

	/* insertion into the n best so far; n is small (N = 3) */
	for (int i = 0; i < count; i++) {
		uint64_t s = score(seeds[i], bucket);
		int at = have;
		while (at > 0 && best[at - 1] < s)
			at--;
		if (at >= n)
			continue;
		int last = have < n ? have : n - 1;
		for (int k = last; k > at; k--) {
			best[k] = best[k - 1];
			rank[k] = rank[k - 1];
		}
		best[at] = s;
		rank[at] = i;
		if (have < n)
			have++;
	}
}

void cluster_owners_table(const uint64_t *seeds, int count, int n, uint8_t *out)
{
	int rank[CLUSTER_MAX_NODES];

	for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++) {
		cluster_rank(seeds, count, n, b, rank);
		for (int k = 0; k < n; k++)
			out[(size_t)b * (size_t)n + (size_t)k] = (uint8_t)rank[k];
	}
}

static bool owner_in(const uint8_t *table, int n, uint32_t bucket, int idx)
{
	const uint8_t *o = table + (size_t)bucket * (size_t)n;

	if (idx < 0)
		return false;
	for (int k = 0; k < n; k++)
		if (o[k] == idx)
			return true;
	return false;
}

void cluster_set_fill(const struct cluster_place *pl, enum cluster_set_kind kind, int a_m, int a_p,
		      int b_m, int b_p, struct cluster_bucket_set *out)
{
	memset(out, 0, sizeof(*out));
	if (kind == CLUSTER_SET_GIVE) {
		int t = a_m;
		a_m = b_m;
		b_m = t;
		t = a_p;
		a_p = b_p;
		b_p = t;
		kind = CLUSTER_SET_PULL;
	}
	if (kind == CLUSTER_SET_PULL && !pl->prev_owners)
		return; /* settled: nothing moves */
	if (kind == CLUSTER_SET_OWNED) {
		for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++)
			if (owner_in(pl->owners, pl->n, b, a_m) ||
			    (pl->prev_owners && owner_in(pl->prev_owners, pl->pn, b, a_p))) {
				out->bits[b >> 6] |= 1ull << (b & 63);
				out->count++;
			}
		return;
	}
	for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++) {
		bool in;
		if (kind == CLUSTER_SET_SHARED) {
			in = owner_in(pl->owners, pl->n, b, a_m) &&
			     owner_in(pl->owners, pl->n, b, b_m);
			if (in && pl->prev_owners)
				in = owner_in(pl->prev_owners, pl->pn, b, a_p) &&
				     owner_in(pl->prev_owners, pl->pn, b, b_p);
		} else {
			in = owner_in(pl->owners, pl->n, b, a_m) &&
			     !owner_in(pl->prev_owners, pl->pn, b, a_p) &&
			     owner_in(pl->prev_owners, pl->pn, b, b_p);
		}
		if (in) {
			out->bits[b >> 6] |= 1ull << (b & 63);
			out->count++;
		}
	}
}
