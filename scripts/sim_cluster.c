/*
 * sim_cluster - placement and gossip of caskfs's cluster, simulated in one
 * process with the library's own functions (no network): how evenly
 * rendezvous hashing of buckets spreads 10 million keys over 100 nodes, how
 * much moves when one node joins or leaves against the ideal 1/n, what the
 * number of buckets does to that, and in how many gossip ticks a new map
 * reaches every node. Prints ratios for docs/BENCHMARKS.md ("The cluster").
 * Build and run: make sim
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/endian.h"
#include "store/node/cluster_i.h"
#include "store/node/cmap.h"

#define KEYS 10000000u
#define N 3

static uint64_t seeds[CLUSTER_MAX_NODES];

static void make_seeds(int nodes)
{
	char a[32];

	for (int i = 0; i < nodes; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d:7700", i / 250, i % 250 + 1);
		seeds[i] = cluster_seed(a);
	}
}

/* Keys per bucket when there are `buckets` of them (top bits of the hash). */
static uint32_t *key_counts(uint32_t buckets)
{
	uint32_t *count = calloc(buckets, sizeof(*count));
	int shift = 64 - __builtin_ctz(buckets);
	uint8_t k[8];

	for (uint32_t i = 0; i < KEYS && count; i++) {
		put_le64(k, i);
		count[store_key_hash(k, sizeof(k)) >> shift]++;
	}
	return count;
}

static void owners(int nodes, uint32_t buckets, uint8_t *t)
{
	int rank[N];

	for (uint32_t b = 0; b < buckets; b++) {
		cluster_rank(seeds, nodes, N, b, rank);
		for (int k = 0; k < N; k++)
			t[b * N + k] = (uint8_t)rank[k];
	}
}

/* The fullest and emptiest node against the mean, in objects. */
static void spread(const uint8_t *t, const uint32_t *count, uint32_t buckets, int nodes, double *lo,
		   double *hi)
{
	uint64_t obj[CLUSTER_MAX_NODES] = { 0 };
	double mean = (double)KEYS * N / nodes;

	for (uint32_t b = 0; b < buckets; b++)
		for (int k = 0; k < N; k++)
			obj[t[b * N + k]] += count[b];
	*lo = 1e30;
	*hi = 0;
	for (int i = 0; i < nodes; i++) {
		double r = (double)obj[i] / mean;
		*lo = r < *lo ? r : *lo;
		*hi = r > *hi ? r : *hi;
	}
}

/* Copies that change owner from table a to table b, as a share of all. */
static double moved(const uint8_t *a, const uint8_t *b, const uint32_t *count, uint32_t buckets)
{
	uint64_t m = 0;

	for (uint32_t x = 0; x < buckets; x++)
		for (int k = 0; k < N; k++) {
			bool was = false;
			for (int j = 0; j < N; j++)
				was |= a[x * N + j] == b[x * N + k];
			if (!was)
				m += count[x];
		}
	return (double)m / ((double)KEYS * N);
}

static int gossip_ticks(int nodes, uint64_t *rng)
{
	struct cmap **maps = calloc((size_t)nodes, sizeof(*maps));
	bool *fresh = calloc((size_t)nodes, 1), *next = calloc((size_t)nodes, 1);
	char peers[CLUSTER_MAX_NODES * 32] = "", err[200];
	int tick;

	for (int i = 1; i < nodes; i++)
		snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers), "%s10.0.0.%d:7700",
			 i > 1 ? "," : "", i + 1);
	for (int i = 0; i < nodes; i++) {
		maps[i] = malloc(sizeof(struct cmap));
		cmap_bootstrap(maps[i], "10.0.0.1:7700", 1, peers, CLUSTER_MAX_NODES, err,
			       sizeof(err));
		cmap_promote(maps[i]);
	}
	cmap_add(maps[0], "10.0.9.9:7700", 0, CLUSTER_MAX_NODES);
	uint64_t want = cmap_digest(maps[0]);
	fresh[0] = true;
	for (tick = 1; tick < 100; tick++) {
		memset(next, 0, (size_t)nodes);
		for (int i = 0; i < nodes; i++) {
			int tell = fresh[i] ? 4 : tick % 2 == 0 ? 1 : 0;
			for (int k = 0; k < tell; k++) {
				*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
				int j = (int)((*rng >> 33) % (uint64_t)(nodes - 1));
				j += j >= i;
				next[j] |= cmap_merge(maps[j], maps[i]) == 1;
				next[i] |= cmap_merge(maps[i], maps[j]) == 1;
			}
		}
		memcpy(fresh, next, (size_t)nodes);
		int have = 0;
		for (int i = 0; i < nodes; i++)
			have += cmap_digest(maps[i]) == want;
		if (have == nodes)
			break;
	}
	for (int i = 0; i < nodes; i++)
		free(maps[i]);
	free(maps);
	free(fresh);
	free(next);
	return tick;
}

int main(void)
{
	uint32_t bucket_counts[] = { 1024, 4096, CLUSTER_BUCKETS };
	int sizes[] = { 5, 20, 100 };

	printf("caskfs cluster simulation: %u keys, N=%d, rendezvous hashing of buckets\n", KEYS,
	       N);
	printf("%8s %6s  %-22s  %-18s  %-18s\n", "buckets", "nodes", "objects/node vs mean",
	       "add one: moved/ideal", "remove one: moved/ideal");
	for (size_t bc = 0; bc < sizeof(bucket_counts) / sizeof(bucket_counts[0]); bc++) {
		uint32_t buckets = bucket_counts[bc];
		uint32_t *count = key_counts(buckets);
		uint8_t *t = malloc((size_t)buckets * N), *t2 = malloc((size_t)buckets * N);
		for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
			int nodes = sizes[s];
			double lo, hi;
			make_seeds(nodes + 1);
			owners(nodes, buckets, t);
			spread(t, count, buckets, nodes, &lo, &hi);
			owners(nodes + 1, buckets, t2);
			double add = moved(t, t2, count, buckets) * (nodes + 1);
			owners(nodes - 1, buckets, t2);
			double rem = moved(t, t2, count, buckets) * nodes;
			printf("%8u %6d  %.3f .. %.3f         %.3f               %.3f\n", buckets,
			       nodes, lo, hi, add, rem);
		}
		free(t);
		free(t2);
		free(count);
	}
	uint64_t rng = 7;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		int worst = 0, sum = 0;
		for (int trial = 0; trial < 20; trial++) {
			int t = gossip_ticks(sizes[s], &rng);
			worst = t > worst ? t : worst;
			sum += t;
		}
		printf("gossip: a new map reaches all %3d nodes in %.1f ticks on average, %d at "
		       "worst (20 trials; a tick is 0.5 s)\n",
		       sizes[s], sum / 20.0, worst);
	}
	return 0;
}
