/*
 * cmap.h - the cluster map: which nodes make up the cluster, as data every
 * node holds durably (DATA_DIR/cluster.map) and passes on to its peers
 * (gossip, docs/PROTOCOL.md "xmap"), instead of command lines that must
 * agree. A map is a list of nodes (address, id, state) with an epoch; the
 * higher epoch wins everywhere, so every node ends with the same map.
 *
 * Each node is a member (owns buckets now), a previous member (owned
 * buckets in the last settled map), or both. A map whose members and
 * previous members are the same nodes is settled: nothing is moving. Adding
 * or removing a node changes only the members; once every member has taken
 * the buckets it gained, the map is settled again (cmap_settle()), and the
 * nodes that lost buckets let go of them. Placement: cluster.h.
 *
 * These are plain values and pure functions (no locking, no I/O but the
 * file functions); struct cmap is large (about 70 KiB): keep it off small
 * stacks. Formats: docs/FORMAT.md ("Cluster map").
 */
#ifndef CASKFS_STORE_NODE_CMAP_H
#define CASKFS_STORE_NODE_CMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMAP_MAX 256	  /* entries of a map: members and previous members */
#define CMAP_ADDR_MAX 255 /* longest HOST:PORT */
#define CMAP_MEMBER 0x01  /* owns buckets in this map */
#define CMAP_PREV 0x02	  /* owned buckets in the last settled map */
#define CMAP_FLAGS (CMAP_MEMBER | CMAP_PREV)
/* Largest encoded map: header, entries, checksum. */
#define CMAP_WIRE_MAX (32 + CMAP_MAX * (6 + CMAP_ADDR_MAX) + 8)

struct cmap_node {
	uint32_t id;		      /* the node's id (stamped into its records); 0: not known */
	uint8_t flags;		      /* CMAP_MEMBER, CMAP_PREV */
	char addr[CMAP_ADDR_MAX + 1]; /* HOST:PORT, NUL-terminated */
};

struct cmap {
	uint64_t epoch;	     /* 0: provisional, made from --listen and --peers */
	uint64_t cluster_id; /* fixed when the first map is agreed; 0 while provisional */
	int count;
	struct cmap_node node[CMAP_MAX]; /* sorted by addr, no two alike */
};

/* What a node keeps beside its map in DATA_DIR/cluster.map. */
struct cmap_local {
	char self[CMAP_ADDR_MAX + 1]; /* this node's HOST:PORT; "" when it has none */
	uint32_t replicas;	      /* N this node runs with */
	uint64_t done_epoch;	      /* the epoch whose gained buckets this node holds */
	uint64_t work_epoch;	      /* the epoch the pulls below belong to */
	uint8_t pulled[CMAP_MAX / 8]; /* entry i of the map at work_epoch was pulled from */
};

/* An empty provisional map. */
void cmap_init(struct cmap *m);
/* The index of addr in m, or -1. */
int cmap_find(const struct cmap *m, const char *addr);
/* Whether addr is a well-formed node address (HOST:PORT, printable, at most
 * CMAP_ADDR_MAX bytes, no spaces or commas). */
bool cmap_addr_ok(const char *addr, size_t len);

/*
 * A provisional map (epoch 0) of self and the comma-separated peers, all
 * members of a settled map; self_id is self's node id. -EINVAL for a bad
 * address (said in err, errcap bytes), -ENOSPC for more than CMAP_MAX or
 * than max_members nodes.
 */
int cmap_bootstrap(struct cmap *m, const char *self, uint32_t self_id, const char *peers,
		   int max_members, char *err, size_t errcap);
/* Turns a provisional map into the first agreed one: epoch 1, and the
 * cluster id drawn from its members, so nodes that agree on the members
 * agree on the map. */
void cmap_promote(struct cmap *m);

/* Makes addr (with id) a member, in a new epoch. -EEXIST when it is one,
 * -EINVAL for a bad address, -ENOSPC when max_members are members or the map
 * is full. */
int cmap_add(struct cmap *m, const char *addr, uint32_t id, int max_members);
/* Ends addr's membership, in a new epoch (it stays a previous member until
 * the map is settled). -ENOENT when it is no member, -EINVAL when it is the
 * last one. */
int cmap_remove(struct cmap *m, const char *addr);
/* Whether members and previous members are the same nodes. */
bool cmap_settled(const struct cmap *m);
/* The settled map that follows m: previous members := members, in a new
 * epoch; nodes that are no member any more leave the map. */
void cmap_settle(struct cmap *m);
/* Counts the entries with every bit of flags set. */
int cmap_count(const struct cmap *m, uint8_t flags);

/* A hash of what a map says (epoch, cluster id, addresses and states; not
 * the ids, which nodes learn over time): two maps with the same digest
 * place every bucket alike. */
uint64_t cmap_digest(const struct cmap *m);

/*
 * Merges a map heard from a peer into local: the higher epoch wins; of two
 * different maps of one epoch (made at once on two nodes) the higher digest
 * wins; the same map from a peer may fill in ids local lacks. A provisional
 * map never replaces another. Returns 1 when local changed, 0 when not, and
 * -EXDEV when the two maps are of different clusters (local is kept).
 */
int cmap_merge(struct cmap *local, const struct cmap *in);

/* Encodes m into out (cap bytes). Returns the length, or 0 when cap is too
 * small (CMAP_WIRE_MAX always suffices). */
size_t cmap_encode(const struct cmap *m, uint8_t *out, size_t cap);
/*
 * Decodes an encoded map from untrusted bytes (exactly len of them) into
 * out: magic, version, every length and address checked, entries sorted and
 * unique, known flags only, the checksum last. Returns 0 or -EBADMSG.
 */
int cmap_decode(const uint8_t *in, size_t len, struct cmap *out);

/*
 * DATA_DIR/cluster.map: the map and the local state, checksummed, written
 * to a temporary file, fsynced and renamed over the old one (then the
 * directory fsynced), so a crash leaves the old file or the new one.
 * save: 0 or -errno. load: 0, -ENOENT when there is none, -EBADMSG when it
 * is damaged, or the errno of reading it.
 */
int cmap_file_save(const char *data_dir, const struct cmap *m, const struct cmap_local *l);
int cmap_file_load(const char *data_dir, struct cmap *m, struct cmap_local *l);
/* The file's bytes decoded (what cmap_file_load() reads): 0 or -EBADMSG. */
int cmap_file_decode(const uint8_t *in, size_t len, struct cmap *m, struct cmap_local *l);


/* ---- xmap.c: the map exchange of the node protocol (docs/PROTOCOL.md) ---- */

struct mc_conn;

/* What a node says of itself when it answers xmap. */
struct cmap_peer_info {
	char self[CMAP_ADDR_MAX + 1]; /* its address in the map; "" when it has none */
	uint32_t id;		      /* its node id */
	uint64_t done_epoch;	      /* it holds what maps up to this epoch gave it */
	uint32_t replicas;	      /* the N it places with */
};

/*
 * Sends `xmap` over conn, with push (may be NULL) as the map offered, and
 * reads the node's map (after it took push, if newer) into *out and what it
 * says of itself into *info (may be NULL). Returns 0, -EXDEV when the node
 * refused push as another cluster's map, -EPROTO for a malformed reply or a
 * map that does not decode, -EIO for another error reply, or the errors of
 * talking (client.h).
 */
int cmap_exchange(struct mc_conn *conn, const struct cmap *push, struct cmap *out,
		  struct cmap_peer_info *info);

#endif
