/*
 * test_placement - buckets placed by rendezvous hashing (store/node/placement.c)
 * and maps spread by gossip, simulated in one process: 100 nodes, 10 million
 * keys (each hashed to its bucket, as the store does), N=3. Objects per node
 * within 10% of the mean; adding or removing one node moves within 10% of the
 * ideal 1/n of the copies and only copies to or from that node; the bucket
 * sets two nodes compare agree from either side; a new map reaches all 100
 * nodes within a few gossip rounds (the rule of gossip.c, on real maps and
 * cmap_merge()). scripts/sim-cluster prints the same figures for
 * docs/BENCHMARKS.md.
 */
#include <errno.h>

#include "testutil.h"

#include "store/endian.h"
#include "store/node/cluster_i.h"
#include "store/node/cmap.h"
#include "store/xxh_i.h"

#define NODES 100
#define KEYS 10000000u
#define N 3

static uint32_t *key_counts(void)
{
	uint32_t *count = calloc(CLUSTER_BUCKETS, sizeof(*count));
	uint8_t k[8];

	assert_non_null(count);
	for (uint32_t i = 0; i < KEYS; i++) {
		put_le64(k, i);
		count[cluster_bucket(k, sizeof(k))]++;
	}
	return count;
}

static void addresses(char (*addr)[32], uint64_t *seeds, int n)
{
	for (int i = 0; i < n; i++) {
		snprintf(addr[i], 32, "10.0.%d.%d:7700", i / 250, i % 250 + 1);
		seeds[i] = cluster_seed(addr[i]);
	}
}

static void test_rank_is_the_top_n(void **state)
{
	uint64_t seeds[CLUSTER_MAX_NODES];
	int rank[8];
	uint8_t b[4];

	(void)state;
	for (int i = 0; i < CLUSTER_MAX_NODES; i++)
		seeds[i] = XXH3_64bits(&i, sizeof(i));
	for (int count = 1; count <= CLUSTER_MAX_NODES; count += 9)
		for (uint32_t bucket = 0; bucket < 200; bucket++) {
			int n = count < 5 ? count : 5;
			cluster_rank(seeds, count, n, bucket, rank);
			put_le32(b, bucket);
			for (int k = 0; k < n; k++) {
				uint64_t s = XXH3_64bits_withSeed(b, 4, seeds[rank[k]]);
				int above = 0;
				for (int i = 0; i < count; i++)
					above += XXH3_64bits_withSeed(b, 4, seeds[i]) > s;
				assert_int_equal(above, k); /* the k-th best */
			}
		}
}

/* Objects per node, and per node the (bucket, copy) pairs it holds. */
static void per_node(const uint8_t *owners, const uint32_t *count, int nodes, uint64_t *objects)
{
	memset(objects, 0, sizeof(*objects) * (size_t)nodes);
	for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++)
		for (int k = 0; k < N; k++)
			objects[owners[b * N + k]] += count[b];
}

static void test_balance_and_moves(void **state)
{
	static char addr[NODES + 1][32];
	uint64_t seeds[NODES + 1], objects[NODES + 1];
	uint8_t *t100 = malloc(CLUSTER_BUCKETS * N), *t101 = malloc(CLUSTER_BUCKETS * N),
		*t99 = malloc(CLUSTER_BUCKETS * N);
	uint32_t *count = key_counts();

	(void)state;
	addresses(addr, seeds, NODES + 1);
	cluster_owners_table(seeds, NODES, N, t100);
	per_node(t100, count, NODES, objects);
	double mean = (double)KEYS * N / NODES, lo = 1e30, hi = 0;
	for (int i = 0; i < NODES; i++) {
		lo = (double)objects[i] < lo ? (double)objects[i] : lo;
		hi = (double)objects[i] > hi ? (double)objects[i] : hi;
	}
	printf("100 nodes, 10M keys, N=3: objects per node %.3f..%.3f of the mean\n", lo / mean,
	       hi / mean);
	assert_true(lo > 0.9 * mean && hi < 1.1 * mean);

	/* one node more: only copies to it move, about 1/101 of them */
	cluster_owners_table(seeds, NODES + 1, N, t101);
	uint64_t moved = 0, total = (uint64_t)KEYS * N;
	for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++)
		for (int k = 0; k < N; k++) {
			int o = t101[b * N + k];
			bool before = false;
			for (int j = 0; j < N; j++)
				before |= t100[b * N + j] == o;
			if (!before) {
				assert_int_equal(o, NODES); /* only the new node gains */
				moved += count[b];
			}
		}
	double add = (double)moved / (double)total * (NODES + 1);
	/* one node fewer (the last: the list is in no order that matters) */
	cluster_owners_table(seeds, NODES - 1, N, t99);
	moved = 0;
	for (uint32_t b = 0; b < CLUSTER_BUCKETS; b++)
		for (int k = 0; k < N; k++) {
			int o = t99[b * N + k];
			bool before = false;
			for (int j = 0; j < N; j++)
				before |= t100[b * N + j] == o;
			if (!before)
				moved += count[b];
		}
	double rem = (double)moved / (double)total * NODES;
	printf("adding a node moves %.3f of the ideal 1/101 of the copies, removing one %.3f of "
	       "1/100\n",
	       add, rem);
	assert_true(add > 0.9 && add < 1.1);
	assert_true(rem > 0.9 && rem < 1.1);
	free(t100);
	free(t101);
	free(t99);
	free(count);
}

static void test_sets_agree(void **state)
{
	struct cmap *m = malloc(sizeof(*m));
	struct cluster_bucket_set *ab = malloc(sizeof(*ab)), *ba = malloc(sizeof(*ba));
	char err[200];

	(void)state;
	assert_int_equal(cmap_bootstrap(m, "h1:1", 1, "h2:1,h3:1,h4:1,h5:1", 8, err, sizeof(err)),
			 0);
	cmap_promote(m);
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_SHARED, "h1:1", "h2:1", ab), 0);
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_SHARED, "h2:1", "h1:1", ba), 0);
	assert_memory_equal(ab, ba, sizeof(*ab));
	/* 3 of 5 own each bucket: a pair shares 3/5 * 2/4 of them */
	assert_true(ab->count > 0.27 * CLUSTER_BUCKETS && ab->count < 0.33 * CLUSTER_BUCKETS);
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_PULL, "h1:1", "h2:1", ab), 0);
	assert_int_equal(ab->count, 0); /* settled: nothing moves */
	assert_int_equal(cmap_add(m, "h6:1", 6, 8), 0);
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_PULL, "h6:1", "h2:1", ab), 0);
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_GIVE, "h2:1", "h6:1", ba), 0);
	assert_memory_equal(ab, ba, sizeof(*ab));
	assert_true(ab->count > 0.25 * CLUSTER_BUCKETS && ab->count < 0.35 * CLUSTER_BUCKETS);
	/* while moving, the shared set leaves out what moves */
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_SHARED, "h6:1", "h2:1", ab), 0);
	assert_int_equal(ab->count, 0);
	assert_int_equal(cluster_bucket_set_of(m, 3, CLUSTER_SET_SHARED, "zz:1", "h2:1", ab),
			 -ENOENT);
	free(m);
	free(ab);
	free(ba);
}

/* Ticks of gossip.c's rule until all nodes hold the newest map: a node that
 * took a new map passes it to 4 others at the next tick; every other tick
 * every node exchanges with one at random. */
static int converge(struct cmap **maps, int nodes, uint64_t *rng)
{
	bool *fresh = calloc((size_t)nodes, sizeof(bool)), *next = calloc((size_t)nodes, 1);
	uint64_t want = cmap_digest(maps[0]);
	int tick;

	fresh[0] = true;
	for (tick = 1; tick < 100; tick++) {
		memset(next, 0, (size_t)nodes);
		for (int i = 0; i < nodes; i++) {
			int tell = fresh[i] ? 4 : tick % 2 == 0 ? 1 : 0;
			for (int k = 0; k < tell; k++) {
				*rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
				int j = (int)((*rng >> 33) % (uint64_t)(nodes - 1));
				j += j >= i;
				/* push and pull: each side takes the other's if newer */
				if (cmap_merge(maps[j], maps[i]) == 1)
					next[j] = true;
				if (cmap_merge(maps[i], maps[j]) == 1)
					next[i] = true;
			}
		}
		memcpy(fresh, next, (size_t)nodes);
		int have = 0;
		for (int i = 0; i < nodes; i++)
			have += cmap_digest(maps[i]) == want;
		if (have == nodes)
			break;
	}
	free(fresh);
	free(next);
	return tick;
}

static void test_gossip_converges(void **state)
{
	struct cmap *maps[NODES + 1];
	char peers[NODES * 32] = "", err[200];
	uint64_t rng = 42;
	int worst = 0;

	(void)state;
	for (int i = 1; i < NODES; i++)
		snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers), "%s10.0.0.%d:7700",
			 i > 1 ? "," : "", i + 1);
	for (int i = 0; i < NODES; i++) {
		maps[i] = malloc(sizeof(struct cmap));
		assert_int_equal(cmap_bootstrap(maps[i], "10.0.0.1:7700", 1, peers,
						CLUSTER_MAX_NODES, err, sizeof(err)),
				 0);
		cmap_promote(maps[i]);
	}
	for (int trial = 0; trial < 5; trial++) {
		char a[32];
		snprintf(a, sizeof(a), "10.0.1.%d:7700", trial + 1);
		assert_int_equal(cmap_add(maps[0], a, 0, CLUSTER_MAX_NODES), 0);
		int ticks = converge(maps, NODES, &rng);
		worst = ticks > worst ? ticks : worst;
	}
	printf("a new map reaches 100 nodes in at most %d gossip ticks (of 0.5 s)\n", worst);
	assert_true(worst <= 8);
	for (int i = 0; i < NODES; i++)
		free(maps[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rank_is_the_top_n),
		cmocka_unit_test(test_balance_and_moves),
		cmocka_unit_test(test_sets_agree),
		cmocka_unit_test(test_gossip_converges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
