/*
 * store.h - one node's object store: a Bitcask-like append-only log.
 *
 * Objects (key -> value) are appended as checksummed records to segment files
 * under DATA_DIR/log/; an in-memory keydir maps each key to the place of its
 * newest record, so a read is one pread. Every record carries a version
 * (hybrid-logical-clock stamp, node id) and the higher version wins everywhere,
 * including deletes, which are tombstone records. A 16-ary hash tree over
 * (key, version, value hash) is kept up to date for anti-entropy. An object
 * may carry the client's flags and an expiry time (struct store_attr); once
 * that time has passed it reads as absent and its record is replaced by a
 * tombstone whose version every replica derives alike (store_expiry_version).
 *
 * All functions are safe to call from many threads at once. Gets run in
 * parallel and never wait for a put's fsync or for compaction.
 * Errors are negative errnos; see each function. On-disk format: docs/FORMAT.md.
 *
 * The engine is built from store/log/ (internals: store/log/store_i.h); the
 * network node over it (protocol, server, client, quorum client,
 * authentication) is store/node/, with its own headers there.
 */
#ifndef CASKFS_STORE_H
#define CASKFS_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest key in bytes (the memcache protocol's limit). Keys are 1..250 bytes. */
#define STORE_KEY_MAX 250
/* Largest value in bytes. */
#define STORE_VALUE_MAX (64u << 20)
/* Depth of the hash tree: leaves are buckets of 4 nibbles of the key hash. */
#define STORE_TREE_DEPTH 4

enum store_sync_mode {
	STORE_SYNC_BATCH = 0, /* a background thread fsyncs the log every few ms */
	STORE_SYNC_ALWAYS,    /* a put returns after its record is fsynced (shared fsyncs) */
	STORE_SYNC_NONE,      /* fsync only on store_sync() and store_close() */
};

enum store_log_level { STORE_LOG_ERROR = 0, STORE_LOG_WARN, STORE_LOG_INFO, STORE_LOG_DEBUG };

struct store_options {
	uint32_t node_id;	    /* id written into records this node stamps; default 1 */
	enum store_sync_mode sync;  /* default STORE_SYNC_BATCH */
	uint64_t segment_size;	    /* roll the active segment past this size; default 256 MiB */
	unsigned batch_interval_ms; /* fsync period in batch mode; default 10 */
	/* sealed segments whose live ratio falls below this are rewritten; default 0.5,
	 * a negative value disables background compaction */
	double compact_live_ratio;
	unsigned compact_interval_ms; /* how often the compactor looks; default 1000 */
	bool no_background;	      /* start no threads (tools and tests drive sync/compaction) */
	int compress_level;	      /* zstd level; default 1; negative disables compression */
	/* the compactor thread drops the process's mapped log pages from its
	 * resident set (not from the page cache) once they pass this; default
	 * 256 MiB, 0 never (store/log/memory.c) */
	uint64_t map_resident_max;
	/* objects never expire: expiry times are kept and replicated, but ignored
	 * (also settable later: store_set_no_expiry()) */
	bool no_expiry;
	/* where messages go; NULL logs WARN and worse to stderr. msg has no newline. */
	void (*log)(void *arg, enum store_log_level level, const char *msg);
	void *log_arg;
};

/* Fills *opt with the defaults above. */
void store_options_init(struct store_options *opt);

/* A version: higher stamp wins, then higher node id. */
struct store_version {
	uint64_t stamp; /* hybrid logical clock: milliseconds << 16 | counter */
	uint32_t node;
};

/* Returns <0, 0 or >0 as a is older than, the same as, or newer than b. */
int store_version_cmp(const struct store_version *a, const struct store_version *b);

/*
 * Node ids of writers are below 2^31: the top bit marks the tombstone that
 * replaces an expired object. Its version is the object's stamp with node
 * `node | STORE_EXPIRY_NODE`: newer than the object, older than any later
 * write (whose stamp is higher), and the same on every replica, so replicas
 * that expire an object on their own still agree on its tombstone.
 */
#define STORE_EXPIRY_NODE 0x80000000u
/* Fills *out with the version of the tombstone that replaces an expired
 * object of version v (see STORE_EXPIRY_NODE). */
void store_expiry_version(const struct store_version *v, struct store_version *out);

/* What a client keeps with a value besides its bytes: the memcache
 * protocol's FLAGS and EXPTIME. Tombstones have neither. */
struct store_attr {
	uint32_t flags;	  /* opaque to the store, returned with the value */
	uint32_t expires; /* unix time (seconds) from which the object reads as absent; 0 never */
};

/*
 * The hybrid logical clock that stamps records: wall-clock milliseconds << 16
 * plus a counter. A stamp is never lower than one issued or observed before,
 * so this node's writes are newer than anything it has seen, even when the
 * wall clock steps back. Lock-free; share one clock per node (store_clock()).
 */
struct store_clock {
	_Atomic uint64_t last;
};
/* Returns a stamp greater than every stamp issued or observed before. */
uint64_t store_clock_now(struct store_clock *c);
/* Records that stamp exists, so later stamps are greater. */
void store_clock_observe(struct store_clock *c, uint64_t stamp);

/* What the store knows of one key's newest record. */
struct store_meta {
	struct store_version version;
	uint64_t value_hash;  /* xxh3-64 of the raw value; 0 for a tombstone */
	uint32_t size;	      /* raw value length */
	uint32_t stored_size; /* value bytes on disk (after compression) */
	uint32_t segment;     /* segment id and offset of the record */
	uint32_t offset;
	bool tombstone;
	bool compressed;
	/* the object's attributes: both from get, read and stat; from a scan or
	 * a tree bucket only expires (flags 0) */
	struct store_attr attr;
};

struct store_stats {
	uint32_t node_id;
	uint64_t keys;	     /* live keys (tombstones not counted) */
	uint64_t tombstones; /* keys whose newest record is a tombstone */
	uint64_t expiring;   /* live keys with an expiry time (expired or not) */
	uint64_t expired;    /* objects replaced by their expiry tombstone since open */
	uint64_t live_bytes; /* bytes of newest records, tombstones included */
	uint64_t disk_bytes; /* bytes of all segment files */
	uint64_t segments;
	uint64_t keydir_bytes; /* memory held by the keydir (entries and table) */
	uint64_t puts, deletes, gets, get_misses;
	uint64_t read_bytes;	  /* value bytes read from segments by gets since open */
	uint64_t compactions;	  /* segments rewritten and removed */
	uint64_t compacted_bytes; /* live bytes moved by compaction */
	uint64_t reclaimed_bytes; /* disk bytes freed by compaction */
	uint64_t corrupt_records; /* records found failing their checksum */
	uint64_t cut_bytes;	  /* bytes cut off torn tails at open */
	uint64_t tree_root;
	uint64_t synced_through; /* bytes appended and fsynced since open */
	uint64_t appended;	 /* bytes appended since open */
};

struct store;

/*
 * Opens (creating if needed) the store in DATA_DIR dir and takes the directory's
 * lock (DATA_DIR/LOCK). Recovers the keydir from hint files and segment scans; a
 * torn or failing tail of the active segment is cut off and reported through the
 * log callback. opt may be NULL for the defaults. On success *out owns the store
 * (release with store_close()).
 * Errors: -EBUSY when another process holds the lock (logged with its pid),
 * -EINVAL for bad options (a node id of 0 or from 2^31 on, ...), -ENOMEM, or
 * the errno of a failing system call.
 */
int store_open(const char *dir, const struct store_options *opt, struct store **out);

/* Stops the threads, fsyncs the log, releases the lock and frees s. NULL is fine.
 * Returns 0 or the errno of a failing final fsync. */
int store_close(struct store *s);

/*
 * Stores val under key with a new version from this node's clock; vlen may be 0.
 * When meta is not NULL it receives the written record's description.
 * Errors: -EINVAL (key length 0 or > STORE_KEY_MAX, value > STORE_VALUE_MAX),
 * -ENOSPC/-EIO (nothing is stored: a partial record is removed).
 */
int store_put(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
	      struct store_meta *meta);
/* store_put() of a value whose xxh3-64 (seed 0) the caller has computed
 * already: value_hash, which the record then carries unchecked (a wrong one
 * makes the record fail every later verification). A chunk's is the low half
 * of its id, xxh3-128, for values over 240 bytes. */
int store_put_hashed(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		     uint64_t value_hash, struct store_meta *meta);
/* store_put() with the object's attributes (attr NULL: none). An expiry time
 * that has already passed is stored too: the object then reads as absent. */
int store_put_attr(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		   const struct store_attr *attr, struct store_meta *meta);

/*
 * Writes a tombstone for key. Errors: -ENOENT when the key has no live value,
 * and those of store_put().
 */
int store_delete(struct store *s, const void *key, size_t klen, struct store_meta *meta);

/*
 * Applies a record that carries its own version (replication and sync): it is
 * written only when version is newer than the key's current one. A tombstone
 * ignores val. Returns 0 when applied, STORE_STALE (positive) when the store
 * already holds this version or a newer one, or the errors of store_put().
 */
#define STORE_STALE 1
int store_apply(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		const struct store_version *version, bool tombstone);
/* store_apply() of a record with attributes (attr NULL: none; a tombstone
 * ignores them). Errors also -EINVAL for a live record whose version.node
 * has STORE_EXPIRY_NODE set. */
int store_apply_attr(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		     const struct store_version *version, bool tombstone,
		     const struct store_attr *attr);

/*
 * Like store_apply(), but also writes a record of the same version as the
 * current one: how fsck --repair replaces a damaged copy with a good one
 * fetched from a peer. Returns 0, STORE_STALE when the store holds a newer
 * version, or the errors of store_put().
 */
int store_repair(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		 const struct store_version *version, bool tombstone);
/* store_repair() of a record with attributes (attr NULL: none). */
int store_repair_attr(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		      const struct store_version *version, bool tombstone,
		      const struct store_attr *attr);

/*
 * Reads key's value into a new buffer: *val (malloc'd, the caller frees it with
 * free(); never NULL on success, even for 0 bytes) and *vlen. meta may be NULL.
 * The record's checksum is verified on every read.
 * Errors: -ENOENT (absent, deleted or expired; meta, when given, then
 * describes the tombstone with meta->tombstone set, or is zeroed), -EBADMSG
 * (the record fails its checksum or does not match the keydir; logged), -EIO,
 * -ENOMEM. An object found expired is replaced by its expiry tombstone
 * (written then, best effort), which meta describes.
 */
int store_get(struct store *s, const void *key, size_t klen, void **val, size_t *vlen,
	      struct store_meta *meta);

/*
 * Like store_get(), into the caller's buffer buf of cap bytes; *vlen receives
 * the value's length. Errors: those of store_get(), and -ERANGE when cap is
 * smaller than the value (*vlen then holds the length needed).
 */
int store_read(struct store *s, const void *key, size_t klen, void *buf, size_t cap, size_t *vlen,
	       struct store_meta *meta);
/*
 * Like store_read(), for a value whose caller verifies the bytes by a hash of
 * its own (a chunk, whose key is the hash of its bytes): the header and the
 * key are checked as always, but an uncompressed value is not hashed; its
 * record's checksum is checked with the value hash the header holds. Bytes
 * damaged in the value are then the caller's to detect.
 */
int store_read_content(struct store *s, const void *key, size_t klen, void *buf, size_t cap,
		       size_t *vlen, struct store_meta *meta);

/*
 * Describes key's newest record without reading its value. Returns 0 for a live
 * value; -ENOENT when absent (meta zeroed) or deleted or expired (meta
 * describes the tombstone, meta->tombstone set; an expired object is replaced
 * as store_get() does); -EIO/-EBADMSG when its header cannot be read.
 */
int store_stat(struct store *s, const void *key, size_t klen, struct store_meta *meta);

/*
 * Calls fn for every key that starts with prefix (plen 0 for all), in no
 * particular order, over a snapshot taken when the call starts; fn may call the
 * store. Tombstones are included only when with_tombstones; objects whose
 * expiry time has passed (but whose tombstone is not written yet) only then
 * too, as the live records they still are. meta->size, stored_size and
 * attr.flags are not filled (0). fn returns non-zero to stop early; that value
 * is returned. Errors: -ENOMEM.
 */
typedef int (*store_scan_fn)(void *arg, const void *key, size_t klen,
			     const struct store_meta *meta);
int store_scan(struct store *s, const void *prefix, size_t plen, bool with_tombstones,
	       store_scan_fn fn, void *arg);

/* Writes records still in the append buffer to the segment file, without
 * fsync: after it, they survive the death of the process (not of the
 * machine). Returns 0 or -errno (the records stay buffered). */
int store_flush(struct store *s);

/* Makes every record appended so far durable (fsync). Returns 0 or -errno. */
int store_sync(struct store *s);
/* The bytes appended since open: a position for store_sync_through(). */
uint64_t store_appended(struct store *s);
/* Makes the records appended before position through (a value of
 * store_appended()) durable, returning at once when they are already: many
 * callers share one fsync. Returns 0 or -errno. */
int store_sync_through(struct store *s, uint64_t through);

/*
 * Runs one compaction pass now: expired objects are replaced by their
 * tombstones (store_expire()), then every sealed segment whose live ratio is
 * below the threshold (or, with all, any sealed segment holding garbage) is
 * rewritten into the active segment and removed. Reads and writes go on
 * meanwhile. Returns the number of segments removed, or -errno.
 */
int store_compact(struct store *s, bool all);

/* Seals the active segment (when it holds any record) and starts a new one,
 * so a following store_compact(s, true) can rewrite what was in it.
 * Returns 0, or the errno of writing, fsyncing or creating a file (logged);
 * on failure the active segment stays active. */
int store_roll(struct store *s);
/*
 * Replaces every object whose expiry time has passed with its expiry
 * tombstone (store_expiry_version()). Every compaction pass does this first
 * (the compactor thread's, every compact_interval_ms) while any object has
 * an expiry time; reads do it for the object they meet. Returns the number
 * replaced, or -errno of a write.
 * Does nothing (0) with no_expiry.
 */
int store_expire(struct store *s);

/* Turns expiry off (on: false) from now on, as the no_expiry option does. */
void store_set_no_expiry(struct store *s, bool on);

/* The store's clock, for stamping other records of this node (metadata). Owned
 * by the store; valid until store_close(). */
struct store_clock *store_clock(struct store *s);

/*
 * Reads every record of every segment and checks its checksum (what fsck
 * does). fn (may be NULL) is called for each problem with the segment, the
 * offset and what is wrong. *records and *bad receive the counts. Reads and
 * writes go on meanwhile. Returns 0 or -errno when a segment cannot be read.
 */
typedef void (*store_verify_fn)(void *arg, uint32_t segment, uint64_t offset, const char *what);
int store_verify(struct store *s, store_verify_fn fn, void *arg, uint64_t *records, uint64_t *bad);

/* One segment file, as store_segments() describes it. */
struct store_segment_info {
	uint32_t id;
	uint64_t disk_bytes; /* file size, header included */
	uint64_t live_bytes; /* bytes of records that are their key's newest version */
	bool sealed;	     /* false for the active segment */
};
/* Calls fn for every segment, in id order, over a snapshot taken first. fn
 * returns non-zero to stop (that value is returned). Errors: -ENOMEM. */
typedef int (*store_segment_fn)(void *arg, const struct store_segment_info *seg);
int store_segments(struct store *s, store_segment_fn fn, void *arg);

/* Fills *st with counters and sizes. */
void store_stats(struct store *s, struct store_stats *st);

/* The hash of a key that places it in the hash tree (xxh3-64 of the key). */
uint64_t store_key_hash(const void *key, size_t klen);

/* Per-key leaf value folded into the tree: xxh3-64 over key, stamp, node, value
 * hash and tombstone flag (see docs/FORMAT.md). */
uint64_t store_tree_leaf(const void *key, size_t klen, const struct store_version *version,
			 uint64_t value_hash, bool tombstone);

struct store_tree_node {
	uint64_t hash;	/* sum (mod 2^64) of the leaf values below this node */
	uint64_t count; /* number of keys below this node, tombstones included */
};

/*
 * Reads tree nodes. path holds depth nibbles (0..15) from the root; depth 0 is
 * the root itself. With depth < STORE_TREE_DEPTH, fills children[16] with the
 * node's children and *self (may be NULL) with the node.
 * Errors: -EINVAL for a bad depth or nibble.
 */
int store_tree_children(struct store *s, const uint8_t *path, int depth,
			struct store_tree_node *self, struct store_tree_node children[16]);

/*
 * Calls fn for every key (tombstones included) in the leaf bucket named by the
 * STORE_TREE_DEPTH nibbles in path, over a snapshot, like store_scan().
 * Returns 0, fn's non-zero value, -EINVAL for a nibble over 15, or -ENOMEM.
 */
int store_tree_bucket(struct store *s, const uint8_t path[STORE_TREE_DEPTH], store_scan_fn fn,
		      void *arg);

/*
 * Like store_tree_children(), but each node sums only the leaf buckets in
 * mask: a bitmap of the 16^STORE_TREE_DEPTH leaf buckets (bit b % 64 of
 * mask[b / 64] for leaf b, leaves numbered by their path as a number); NULL
 * counts every leaf. *self is the sum of the children. Errors: -EINVAL.
 */
int store_tree_children_in(struct store *s, const uint8_t *path, int depth, const uint64_t *mask,
			   struct store_tree_node *self, struct store_tree_node children[16]);

/* Copies count leaf buckets of the tree, from leaf first on (numbered as for
 * store_tree_children_in()), into out. Errors: -EINVAL past the last leaf. */
int store_tree_leaves(struct store *s, uint32_t first, uint32_t count, struct store_tree_node *out);

/*
 * Lets go of this node's copy of key when its newest record has version v:
 * the key leaves the keydir, the tree and the counters, and nothing is
 * written (no tombstone: other nodes keep their copies). The record stays in
 * the log as garbage until compaction, and comes back if the store is
 * reopened before that. Returns 0, STORE_STALE when the key's version is not
 * v (a newer write came in), -ENOENT when absent, -EINVAL.
 */
int store_forget(struct store *s, const void *key, size_t klen, const struct store_version *v);

/* ---- scrub.c: re-reading sealed segments while serving (docs/OPERATIONS.md) ---- */

struct store_scrub_options {
	uint64_t rate;	     /* bytes a second read at most (must be > 0) */
	unsigned interval_s; /* a pass starts this long after the last one started; 0: 7 days */
	uint64_t busy_ops;   /* pause while the store serves more requests a second; 0: 2000 */
	/* Checks a value against its key beyond the checksum (a chunk against
	 * its id): 0 good, negative bad. NULL: none. */
	int (*check)(void *arg, const void *key, size_t klen, const void *val, size_t vlen);
	/* Replaces the damaged newest record of key (version v) with a good copy
	 * from elsewhere (store_repair): 0 done, -errno. NULL: damage is counted. */
	int (*repair)(void *arg, const void *key, size_t klen, const struct store_version *v);
	void *arg; /* for check and repair; must outlive the scrubber */
};

struct store_scrub_stats {
	bool enabled; /* a scrubber thread runs */
	bool running; /* a pass is under way (or asked for) */
	bool paused;  /* waiting for the store to be less busy */
	uint64_t rate;
	uint64_t passes;		 /* completed */
	uint32_t segment;		 /* the pass is in this segment ... */
	uint64_t offset;		 /* ... before this offset */
	uint64_t pass_bytes, pass_total; /* read in this pass, of about this many */
	int64_t pass_started_ms, last_pass_end_ms, next_pass_ms; /* wall clock, ms */
	uint64_t bytes, records;				    /* read and checked, ever */
	/* damaged records found: repaired, left (no good copy), stale (not the
	 * key's newest: garbage compaction drops; counted each pass) */
	uint64_t damaged, repaired, unrepaired, stale;
};

/* Starts the scrubber thread of s (one per store), whose progress is kept in
 * DATA_DIR/scrub.state: a pass under way there resumes at once, else the
 * next is due interval_s after the last one started (the first, interval_s
 * after the first start). opt is copied. 0, -EINVAL (rate 0), -EBUSY (one
 * runs), -ENOMEM, -errno of pthread_create. store_close() stops it. */
int store_scrub_start(struct store *s, const struct store_scrub_options *opt);
/* Stops the thread (its position is saved; the next start resumes there).
 * Call it before what check and repair use goes away. NULL is fine. */
void store_scrub_stop(struct store *s);
/* Starts a pass now, unless one is under way. -ENOENT without a scrubber. */
int store_scrub_now(struct store *s);
/* The scrubber's numbers; without a thread, those of DATA_DIR/scrub.state
 * (zeros without one) with enabled false. */
void store_scrub_stats(struct store *s, struct store_scrub_stats *st);
/* One whole pass in the caller's thread (no scrubber may be running), from
 * the position scrub.state keeps, at opt->rate: 0 or -errno; *st as after. */
int store_scrub_pass(struct store *s, const struct store_scrub_options *opt,
		     struct store_scrub_stats *st);
/* DATA_DIR dir's scrub.state into *st: 0, -ENOENT, -EBADMSG. */
int store_scrub_state_read(const char *dir, struct store_scrub_stats *st);

/* Parses "always", "batch" or "none" into *mode. Returns 0 or -EINVAL. */
int store_sync_mode_parse(const char *name, enum store_sync_mode *mode);
/* The name store_sync_mode_parse() takes for mode (a static string). */
const char *store_sync_mode_name(enum store_sync_mode mode);

#endif
