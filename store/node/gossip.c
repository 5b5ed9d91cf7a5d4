/*
 * gossip - how every node comes to hold the same cluster map: on each tick
 * this node exchanges maps (xmap, push and pull in one round trip) with one
 * peer at random, and with every peer when its map just changed, so a new
 * map reaches n nodes in a few rounds. Two decisions are taken here:
 *   - a provisional map (made from --peers) becomes the first agreed map
 *     once every node it names answers with the same provisional map; a
 *     node that finds a peer with an agreed map takes that one instead, so
 *     a node started with one seed learns the whole cluster;
 *   - the lowest member settles a map in which buckets move once every
 *     member says it holds what it gained (docs/REPLICATION.md).
 * Protocol: docs/PROTOCOL.md ("xmap").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"

#define GOSSIP_FANOUT 4 /* peers a node passes a new map on to at once */

/* One exchange with addr; 0 and the peer's map in *in, or -errno. */
static int exchange(struct cluster *c, const char *addr, const struct cmap *mine, struct cmap *in,
		    struct cmap_peer_info *info)
{
	struct mc_conn *conn;
	int rc = mc_connect(addr, c->key, c->connect_ms, c->io_ms, &conn);

	if (rc == 0)
		rc = cmap_exchange(conn, mine, in, info);
	mc_close(conn);
	if (rc == 0) {
		cluster_peer_heard(c, info->self[0] ? info->self : addr, info->id,
				   info->done_epoch);
		cluster_view_offer(c, in);
	}
	return rc;
}

static bool is_seed_in(const struct cmap *m, const char *addr)
{
	return cmap_find(m, addr) >= 0;
}

/* The lowest member decides when a map is settled. */
static bool settler(const struct cluster *c, const struct cmap *m)
{
	for (int i = 0; i < m->count; i++)
		if (m->node[i].flags & CMAP_MEMBER)
			return strcmp(m->node[i].addr, c->self) == 0;
	return false;
}

/* Whether every member of m (this node included) holds what epoch gave it. */
static bool all_done(struct cluster *c, const struct cmap *m, uint64_t self_done)
{
	for (int i = 0; i < m->count; i++) {
		if (!(m->node[i].flags & CMAP_MEMBER))
			continue;
		if (strcmp(m->node[i].addr, c->self) == 0) {
			if (self_done < m->epoch)
				return false;
			continue;
		}
		int slot = cluster_slot_find(c, m->node[i].addr);
		bool done = slot >= 0 && atomic_load(&c->peers[slot].done_epoch) >= m->epoch;
		if (slot >= 0)
			cluster_slot_release(c, slot);
		if (!done)
			return false;
	}
	return true;
}

void cluster_gossip(struct cluster *c)
{
	if (!c->has_addr)
		return;
	struct cmap *m = malloc(sizeof(*m)), *in = malloc(sizeof(*in));
	struct cmap_peer_info info;
	uint64_t done;
	bool dirty;

	if (!m || !in)
		goto out;
	uint64_t round = atomic_fetch_add(&c->gossip_rounds, 1);
	cluster_map_get(c, m, &done);
	pthread_mutex_lock(&c->mu);
	dirty = c->map_dirty;
	c->map_dirty = false;
	pthread_mutex_unlock(&c->mu);

	bool provisional = m->epoch == 0,
	     settling = !provisional && !cmap_settled(m) && settler(c, m);
	if (provisional || dirty || settling) {
		/* to agree on a first map (everyone), to hear who is done (every
		 * member), to pass a change on (GOSSIP_FANOUT peers from a random
		 * place: each node that takes the map passes it on the same way, so
		 * it spreads in a few rounds without every node telling everyone) */
		int others = 0, agree = 0, start = 0, told = 0;
		bool everyone = provisional || settling;
		uint64_t digest = cmap_digest(m);
		if (!everyone)
			start = (int)((cluster_seed(c->self) + round) % (uint64_t)m->count);
		for (int k = 0; k < m->count; k++) {
			int i = (start + k) % m->count;
			const char *addr = m->node[i].addr;
			if (strcmp(addr, c->self) == 0)
				continue;
			if (settling && !dirty && !(m->node[i].flags & CMAP_MEMBER))
				continue;
			if (!everyone && told++ >= GOSSIP_FANOUT)
				break;
			others++;
			if (exchange(c, addr, m, in, &info) == 0 && in->epoch == 0 &&
			    cmap_digest(in) == digest)
				agree++;
		}
		/* seeds not in the map: a node started with one seed asks it */
		for (const char *s = c->seeds; provisional && s && *s;) {
			const char *comma = strchr(s, ',');
			size_t len = comma ? (size_t)(comma - s) : strlen(s);
			char addr[CLUSTER_ADDR];
			if (len && len < sizeof(addr)) {
				memcpy(addr, s, len);
				addr[len] = 0;
				if (!is_seed_in(m, addr))
					exchange(c, addr, m, in, &info);
			}
			s += len + (comma ? 1 : 0);
		}
		struct cmap *now = in; /* reused: the map after the exchanges */
		cluster_map_get(c, now, &done);
		if (provisional && now->epoch == 0 && others > 0 && agree == others &&
		    cmap_digest(now) == digest) {
			cmap_promote(now);
			if (cluster_view_offer(c, now) == 1)
				fprintf(stderr, "caskfs: the %d nodes agree on the cluster map\n",
					others + 1);
		} else if (settling && now->epoch == m->epoch && all_done(c, now, done)) {
			cmap_settle(now);
			if (cluster_view_offer(c, now) == 1)
				fprintf(stderr,
					"caskfs: every member holds its buckets: map settled at "
					"epoch %llu\n",
					(unsigned long long)now->epoch);
		}
	} else if (m->count > 1 && round % 2 == 0) {
		/* one peer at random, every other tick */
		uint64_t r = cluster_seed(c->self) + round * 0x9E3779B97F4A7C15ull;
		r ^= r >> 29;
		int pick = (int)(r % (uint64_t)m->count);
		for (int k = 0; k < m->count; k++) {
			const char *addr = m->node[(pick + k) % m->count].addr;
			if (strcmp(addr, c->self) != 0) {
				exchange(c, addr, m, in, &info);
				break;
			}
		}
	}
out:
	free(m);
	free(in);
}
