/*
 * placement - which nodes hold a key: rendezvous hashing. Every node scores
 * xxh3(key, seed = xxh3(node address)) and the N highest hold the key, so
 * every node computes the same replicas from the same node list, and a node
 * joining or leaving moves only its own share. The node list is kept sorted
 * by address, so it is the same list on every node whatever order it was
 * given in. Protocol: docs/PROTOCOL.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"
#include "../xxh_i.h"

static int cmp_peer(const void *a, const void *b)
{
	return strcmp(((const struct peer *)a)->addr, ((const struct peer *)b)->addr);
}

static int add_node(struct cluster *c, const char *addr, size_t len, bool self)
{
	char host[256], port[16], buf[256];

	if (len == 0 || len >= sizeof(buf))
		goto bad;
	memcpy(buf, addr, len);
	buf[len] = 0;
	if (mc_split_addr(buf, host, sizeof(host), port, sizeof(port)) < 0)
		goto bad;
	for (int i = 0; i < c->nnodes; i++)
		if (strcmp(c->peers[i].addr, buf) == 0) {
			c->peers[i].self |= self;
			return 0;
		}
	if (c->nnodes == CLUSTER_MAX_NODES) {
		fprintf(stderr, "caskfs: more than %d nodes\n", CLUSTER_MAX_NODES);
		return -EINVAL;
	}
	struct peer *p = &c->peers[c->nnodes++];
	memset(p, 0, sizeof(*p));
	strcpy(p->addr, buf);
	p->seed = XXH3_64bits(buf, len);
	p->self = self;
	p->hint_fd = -1;
	return 0;
bad:
	fprintf(stderr, "caskfs: bad node address '%.*s' (want HOST:PORT)\n", (int)len, addr);
	return -EINVAL;
}

void cluster_placement(struct cluster *c, const void *key, size_t klen, int *reps)
{
	uint64_t score[CLUSTER_MAX_NODES];
	bool taken[CLUSTER_MAX_NODES] = { false };

	for (int i = 0; i < c->nnodes; i++)
		score[i] = XXH3_64bits_withSeed(key, klen, c->peers[i].seed);
	for (int k = 0; k < c->n; k++) {
		int best = -1;
		for (int i = 0; i < c->nnodes; i++)
			if (!taken[i] && (best < 0 || score[i] > score[best]))
				best = i;
		taken[best] = true;
		reps[k] = best;
	}
}

int cluster_nodes_parse(struct cluster *c, const struct cluster_options *opt)
{
	int rc;

	if (opt->self) {
		rc = add_node(c, opt->self, strlen(opt->self), true);
		for (const char *s = opt->peers; rc == 0 && s && *s;) {
			const char *comma = strchr(s, ',');
			size_t len = comma ? (size_t)(comma - s) : strlen(s);
			if (len)
				rc = add_node(c, s, len, false);
			s += len + (comma ? 1 : 0);
		}
	} else {
		rc = add_node(c, "local:0", 7, true);
	}
	if (rc < 0)
		return rc;
	qsort(c->peers, (size_t)c->nnodes, sizeof(*c->peers), cmp_peer);
	return 0;
}

bool cluster_is_replica(struct cluster *c, const void *key, size_t klen)
{
	int reps[CLUSTER_MAX_NODES];

	cluster_placement(c, key, klen, reps);
	for (int k = 0; k < c->n; k++)
		if (c->peers[reps[k]].self)
			return true;
	return false;
}

int cluster_read_order(struct cluster *c, const void *key, size_t klen, int *order)
{
	int reps[CLUSTER_MAX_NODES], n = 0;

	cluster_placement(c, key, klen, reps);
	for (int k = 0; k < c->n; k++)
		if (c->peers[reps[k]].self)
			order[n++] = reps[k];
	for (int k = 0; k < c->n; k++)
		if (!c->peers[reps[k]].self)
			order[n++] = reps[k];
	return n;
}
