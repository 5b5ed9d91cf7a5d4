/*
 * store_i.h - the log engine's internals, shared by the files of store/log/,
 * declared here bottom first. Calls go one way, from store.h's entry points
 * down to the helpers, never back up:
 *   open -> recover, background, dirlock;  background -> expire, compact, sync
 *   read, compact -> expire -> write;  write, compact -> append, sync
 *   forget -> index;  sync -> append -> segment, hint, index
 *   read -> mapread, index, segment;  tree -> snapshot -> index
 *   verify -> sync, hint, segment;  index -> keydir, htree, hlc
 *   everything -> io, message, record, hash, compress (which call nothing here).
 * Locking, in the order they are taken:
 *   compact_mu  one compaction pass at a time
 *   write_mu    appends to the active segment, its hint buffer, rolling
 *   lock        (rwlock) keydir, hash tree, segment table, live counters
 *   sync_mu     durability progress
 * Readers take only `lock`, for reading, and never hold it during I/O.
 */
#ifndef CASKFS_STORE_STORE_I_H
#define CASKFS_STORE_STORE_I_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "htree_i.h"
#include "keydir_i.h"
#include "record_i.h"
#include "../store.h"

struct store_segment {
	uint32_t id;
	int fd;
	_Atomic uint64_t size; /* file bytes; grows only while active (under write_mu) */
	uint64_t live_bytes;   /* bytes of newest-version records; protected by store->lock */
	_Atomic int refs;      /* the table holds one; readers take one while reading */
	bool sealed;	       /* has a hint file, never written again */
	uint8_t version;       /* of its header (STORE_SEG_VERSION unless written before) */
	/* Read-only shared mapping for reads (NULL: use pread). It covers room to
	 * grow, so appends show through it; only bytes below size are touched. */
	const uint8_t *map;
	size_t map_len;
	/* Bytes [flushed, size) of the active segment wait in wbuf (protected by
	 * write_mu) to be written in one large write; below flushed, the file has
	 * them. A sealed segment has flushed == size. */
	_Atomic uint64_t flushed;
	uint8_t *wbuf;
	size_t wbuf_len;
};

/* The append buffer's size, and the record size from which records bypass it. */
#define STORE_WBUF_CAP (1u << 20)
#define STORE_WBUF_DIRECT (256u << 10)

/* Encoded hint entries of the active segment, written out when it is sealed. */
struct store_hintbuf {
	uint8_t *buf;
	size_t len, cap;
	uint64_t count;
	bool broken; /* an entry could not be added: write no hint, let open scan */
};

struct store {
	char *dir;
	char *logdir;
	int lock_fd;
	int logdir_fd;
	struct store_options opt;
	struct store_clock clock;

	pthread_rwlock_t lock;
	struct store_kd *kd;		       /* protected by lock */
	struct store_htree *tree;	       /* protected by lock */
	struct store_segment **segs;	       /* by id, NULL where none; protected by lock */
	uint32_t segs_cap;		       /* protected by lock */
	uint64_t keys, tombstones, live_bytes; /* protected by lock */
	uint64_t expiring; /* live keys with an expiry time; protected by lock */

	pthread_mutex_t write_mu;
	struct store_segment *active; /* protected by write_mu */
	struct store_hintbuf hint;    /* protected by write_mu */
	_Atomic uint64_t appended;    /* bytes appended since open; written under write_mu */
	int write_err;		      /* a flush failed; retried before each append (write_mu) */

	pthread_mutex_t sync_mu;
	pthread_cond_t sync_cv;
	uint64_t synced; /* protected by sync_mu */
	bool syncing;	 /* protected by sync_mu */

	pthread_mutex_t compact_mu;

	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;
	bool stopping; /* protected by bg_mu */
	bool threads_started;
	pthread_t syncer, compactor;
	int64_t trimmed_at; /* memory.c: seconds (monotonic) of the last trim; compactor only */

	_Atomic uint64_t puts, deletes, gets, get_misses;
	_Atomic uint64_t compactions, compacted_bytes, reclaimed_bytes;
	_Atomic uint64_t corrupt_records, cut_bytes, expired;
	_Atomic uint64_t read_bytes; /* value bytes read by gets, for stats */
	_Atomic bool no_expiry;

	struct store_scrubber *scrub; /* scrub.c: the scrubber thread, or NULL */
};

/* The key rule of store.h: 1..STORE_KEY_MAX bytes. 0 or -EINVAL. */
static inline int store_key_check(const void *key, size_t klen)
{
	return (key && klen > 0 && klen <= STORE_KEY_MAX) ? 0 : -EINVAL;
}

/* ---- message.c: what the engine reports ---- */

/* Logging through opt.log; fmt is printf-style, no trailing newline. */
void store_logf(struct store *s, enum store_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes a printable, escaped form of key (at most 120 bytes shown) into buf. */
const char *store_key_repr(const void *key, size_t klen, char *buf, size_t size);

/* ---- memory.c: the process's resident set, trimmed by the compactor ---- */

/* Drops mapped log pages from the resident set past opt.map_resident_max and
 * gives freed malloc memory back; acts at most every few seconds. */
void store_memory_trim(struct store *s);

/* ---- io.c: whole reads and writes ---- */

/* pwrite(v) of every byte at off, retrying short writes; 0 or -errno. */
int store_write_full(int fd, const void *buf, size_t len, off_t off);
int store_pwritev_full(int fd, struct iovec *iov, int cnt, off_t off);
/* Moves past n bytes of an iovec array (after a short read or write). */
void store_iov_advance(struct iovec **iov, int *cnt, size_t n);
/* pread of len bytes at off, retrying short reads: the bytes read (fewer
 * than len only at the end of the file) or -errno. */
ssize_t store_read_full(int fd, void *buf, size_t len, off_t off);

/* ---- compress.c ---- */

/* Returns 1 and a malloc'd *out when zstd saves enough, 0 when the value should
 * be stored as it is, -ENOMEM. */
int store_zstd_compress(int level, const void *src, size_t len, void **out, size_t *outlen);
/* Decompresses exactly dlen bytes; -EBADMSG when the input is not that. */
int store_zstd_decompress(const void *src, size_t slen, void *dst, size_t dlen);

/* ---- dirlock.c: takes DATA_DIR/LOCK; -EBUSY (logged with the owner's pid) if held. ---- */

int store_dirlock_take(struct store *s);

/* ---- segment.c: segment files ---- */

void store_seg_path(const struct store *s, uint32_t id, const char *ext, char *buf, size_t size);
int store_segment_create(struct store *s, uint32_t id, struct store_segment **out);
int store_segment_open(struct store *s, uint32_t id, bool active, struct store_segment **out);
/* Bytes to map for a segment that may still grow. */
size_t store_segment_map_room(const struct store *s, uint64_t file_size);
void store_segment_ref(struct store_segment *seg);
void store_segment_unref(struct store_segment *seg);

/* A record met by a scan: its decoded header, key, and all its bytes. */
struct store_scan_rec {
	struct store_rec_hdr hdr;
	const uint8_t *raw; /* the whole record: header, key, stored value */
	const uint8_t *key;
	uint32_t off;
	uint32_t len;
	bool corrupt; /* fails its checksum, but its lengths are proven by the next record */
};
typedef int (*store_seg_scan_fn)(void *arg, const struct store_scan_rec *rec);

/*
 * Reads every record of seg from its start, verifying checksums. A failing
 * record followed by a good one is passed to fn with rec->corrupt set (and
 * counted), so its key reads as damaged rather than absent; anything else that
 * fails ends the scan. *end receives the offset after the last good
 * record. fn returning non-zero stops the scan with that value.
 */
int store_segment_scan(struct store *s, struct store_segment *seg, store_seg_scan_fn fn, void *arg,
		       uint64_t *end);

/* How many well-formed records (a header that decodes, a length that fits the
 * file) follow each other from off; stops counting at 2. A torn write leaves
 * at most one: more means the bytes are damaged or not ours, not torn. */
int store_segment_wellformed_after(struct store *s, struct store_segment *seg, uint64_t off);

/* ---- hint.c: hint files ---- */

void store_hint_add(struct store_hintbuf *hb, const struct store_rec_hdr *h, const void *key,
		    uint32_t off, uint32_t len);
void store_hint_reset(struct store_hintbuf *hb);
/* Writes hb as seg id's hint file (durably, via a temp file and rename). */
int store_hint_write(struct store *s, uint32_t id, const struct store_hintbuf *hb);

/* One entry of a hint file. */
struct store_hint_entry {
	struct store_rec_hdr hdr; /* stamp, value_hash, node, flags, key_len, expires */
	const uint8_t *key;
	uint32_t off;
	uint32_t len;
};
/*
 * Reads seg's hint file and calls fn for each entry. Returns 0, -ENOENT when
 * there is none, -EBADMSG when it is damaged or does not fit the segment.
 * Nothing is passed to fn unless the whole file checks out.
 */
int store_hint_load(struct store *s, struct store_segment *seg,
		    int (*fn)(void *arg, const struct store_hint_entry *e), void *arg);

/* ---- index.c: segment table and keydir accounting (caller holds lock for writing,
 * or for reading where it only looks) ---- */

/* Puts seg in the table under id. 0 or -ENOMEM. */
int store_table_set(struct store *s, uint32_t id, struct store_segment *seg);
/* The segment with id, or NULL. */
struct store_segment *store_table_get(struct store *s, uint32_t id);
/*
 * Makes the keydir point at a record when its version is newer than the
 * current one (or equal, with ties_win: a later copy of the same version).
 * Returns 1 when indexed, 0 when the record is older, -ENOMEM.
 */
int store_index_record(struct store *s, uint64_t hash, const void *key,
		       const struct store_rec_hdr *h, uint32_t seg, uint32_t off, uint32_t len,
		       bool ties_win);
/* Takes key out of the keydir, the tree and the counters when its newest
 * record has version v: 0, STORE_STALE (another version), -ENOENT. */
int store_index_forget(struct store *s, uint64_t hash, const void *key, size_t klen,
		       const struct store_version *v);
/* Points e, whose record compaction copied out of from, at the copy. */
void store_index_move(struct store *s, struct store_kd_entry *e, struct store_segment *from,
		      uint32_t seg, uint32_t off);
/* Fills m from e (size and stored_size 0: the keydir does not hold them). */
void store_index_meta(const struct store_kd_entry *e, struct store_meta *m);

/* ---- write.c: the one write path ---- */

#define STORE_WRITE_MUST_EXIST 1 /* -ENOENT unless the key has a live value */
#define STORE_WRITE_EQUAL_OK 2	 /* a given version equal to the current one is written too */
/*
 * Writes one record: a put (version NULL: stamped by this node's clock), a
 * tombstone, or a record that carries its version, written only when newer
 * than the key's current one (else STORE_STALE). attr may be NULL; how is
 * STORE_WRITE_* bits. meta, when given, describes what was written.
 */
int store_write_record(struct store *s, const void *key, size_t klen, const void *val, size_t vlen,
		       const struct store_version *version, bool tombstone,
		       const struct store_attr *attr, unsigned how, struct store_meta *meta);

/* ---- expire.c: expiry times ---- */

/* Whether an object with this expiry time reads as absent now. */
bool store_is_expired(struct store *s, uint32_t expires);
/* Replaces key's object of version v (expired) with its expiry tombstone and
 * fills m (may be NULL) with that tombstone. Returns 0, STORE_STALE when key
 * has a newer version than v by now (nothing written), or -errno (logged;
 * m still describes the tombstone). */
int store_expire_key(struct store *s, const void *key, size_t klen, const struct store_version *v,
		     struct store_meta *m);

/* ---- append.c: the append buffer and rolling (caller holds write_mu) ---- */

/* Appends an encoded record (hdr: its header bytes, h: the same decoded),
 * rolling the active segment when it is full; a failed append leaves nothing. */
int store_append_locked(struct store *s, const uint8_t *hdr, const struct store_rec_hdr *h,
			const void *key, const void *val, uint32_t *seg_id, uint32_t *off);
/* Writes the active segment's append buffer to its file.
 * On failure the bytes stay buffered, the error is sticky and retried. */
int store_flush_locked(struct store *s);

/* ---- sync.c: group commit (store_sync_through is in store.h) ---- */

/* ---- mapread.c: reads from segment mappings, guarded against SIGBUS ---- */

/* Installs the SIGBUS handler (once per process, again if replaced). */
void store_mapread_install(void);
/* Copies len bytes at off out of seg's mapping into dst (and hashes them, when
 * hash is given); -EIO if a page of it cannot be read. */
int store_mapread_copy(const struct store_segment *seg, uint64_t off, void *dst, size_t len,
		       uint64_t *hash);

/* ---- snapshot.c: copies of keydir entries, walked without the lock ---- */

struct store_snapshot {
	uint8_t *buf;
	size_t len, cap;
	const void *prefix;
	size_t plen;
	bool tombstones;
	uint64_t now; /* without tombstones: objects expired by now are left out too (0: none) */
	int err;
};
/* Adds e to the snapshot arg (a struct store_snapshot) when it passes the
 * snapshot's filter; the caller holds lock. Shaped for store_kd_range(). */
void store_snapshot_add(void *arg, struct store_kd_entry *e);
/* Calls fn for every entry added (no lock held), frees the snapshot, and
 * returns fn's first non-zero value, or the snapshot's -ENOMEM. */
int store_snapshot_walk(struct store_snapshot *sn, store_scan_fn fn, void *arg);

/* ---- recover.c: rebuilding the keydir at open ---- */

/* Loads every segment (hints, or scans), cuts a torn tail of the active
 * one, and leaves s->active set. 0 or -errno (logged). */
int store_recover(struct store *s);

/* ---- background.c: the syncer and compactor threads ---- */

int store_background_start(struct store *s);
void store_background_stop(struct store *s);

#endif
