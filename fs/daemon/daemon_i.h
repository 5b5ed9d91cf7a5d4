/*
 * daemon_i.h - the mount (fs/daemon): its shared state, struct fs, the file
 * states and inode tables, and what each file of the daemon offers the
 * others. Above it, fs/cli calls cli_mount and fs_gc and fs/bench the
 * session (session_i.h); it calls fs/repl, fs/common, meta/ and store/.
 * Ownership: struct fs lives as long as the mount's process (mount.c) and
 * owns its store, meta, node, cache, repl, ae and every struct fs_file. A
 * struct fs_file from fs_file_get or fs_file_find is a reference, dropped
 * with fs_file_put (or fs_file_close).
 */
#ifndef CASKFS_FS_DAEMON_DAEMON_I_H
#define CASKFS_FS_DAEMON_DAEMON_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "chunk_i.h"
#include "session_i.h"
#include "fs/common/common_i.h"
#include "fs/repl/repl_i.h"
#include "meta/meta.h"
#include "store/store.h"

/* Chunk buffers all file states may hold at once (64 MiB): past it a writer
 * stores its own before taking another. */
#define FS_DIRTY_MAX 64

/* A chunk written but not yet stored: META_CHUNK_SIZE bytes, len of them valid. */
struct fs_dirty {
	uint32_t idx;
	uint32_t len;
	uint8_t *buf;
	/* the fsync journal (journal_i.h): the seq of the record this buffer's
	 * run of records began with (0: none yet), and the bytes [jlo, jhi)
	 * written since its last record (none when jhi <= jlo) */
	uint64_t jchain;
	uint32_t jlo, jhi;
};

/*
 * inotab.c: a hash table of nodes keyed by inode number, for the file states
 * and the kernel's lookup counts. A node is embedded in its owner, which
 * fs_container_of gets back. The caller locks.
 */
struct fs_ino_node {
	uint64_t ino;
	struct fs_ino_node *next;
};

struct fs_ino_table {
	struct fs_ino_node **buckets; /* nbuckets chains (a power of two; 0 until the first insert) */
	size_t nbuckets, n;
};

#define fs_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* The node of ino, or NULL. */
struct fs_ino_node *fs_ino_find(const struct fs_ino_table *t, uint64_t ino);
/* Adds node (its ino set, not in the table yet): 0, or -ENOMEM when the
 * table has no buckets and gets none. */
int fs_ino_insert(struct fs_ino_table *t, struct fs_ino_node *node);
/* Takes node (in the table) out. */
void fs_ino_remove(struct fs_ino_table *t, struct fs_ino_node *node);
/* The node after node (the first for NULL) in the table's order, or NULL. */
struct fs_ino_node *fs_ino_next(const struct fs_ino_table *t, const struct fs_ino_node *node);
/* Frees the buckets (the nodes are their owners'). */
void fs_ino_table_free(struct fs_ino_table *t);

struct fs_file {
	struct fs_ino_node node; /* ino, and fs->files's chain (protected by fs->files_mu) */
	int refs;		 /* protected by fs->files_mu */
	pthread_mutex_t mu;	 /* protects everything below */
	uint64_t size;		 /* including writes not yet committed */
	struct meta_map map;	 /* the chunk map as it will be committed */
	struct fs_dirty *dirty;
	uint32_t ndirty, capdirty;
	bool changed;		 /* size, map or mtime differ from the namespace */
	int64_t dirty_ms;	 /* CLOCK_MONOTONIC ms: when changed became true */
	int64_t write_ms;	 /* ... of the last write */
	struct timespec mtime;	 /* of the last write, committed with it */
	bool written;		 /* mtime is set (and newer than the namespace's) */
	int error; /* a failed store or commit, reported by the next fsync */
	/* the fsync journal: the seq of f's last record, of the last one its
	 * committed content includes (jseq > jfolded: records to replay after a
	 * crash), of the first since then; jclean: nothing written since jseq */
	uint64_t jseq, jfolded, jlive_first;
	bool jclean;
	uint64_t log_through; /* store_appended() after its last chunk put */
};

/* ---- nlookup.c: the kernel's lookup count of each inode it knows ---- */
struct fs_nlookup {
	pthread_mutex_t mu;	    /* protects table */
	struct fs_ino_table table; /* of struct fs_nlookup_entry */
};

/* One more lookup of ino handed to the kernel: 0 or -ENOMEM. */
int fs_nlookup_add(struct fs_nlookup *t, uint64_t ino);
/* The kernel forgets n lookups of ino: true when it holds none any more
 * (also for an inode never counted). */
bool fs_nlookup_forget(struct fs_nlookup *t, uint64_t ino, uint64_t n);
/* The lookups of ino the kernel holds (0 when unknown). */
uint64_t fs_nlookup_count(struct fs_nlookup *t, uint64_t ino);
/* Frees the table (the mutex stays usable). */
void fs_nlookup_free(struct fs_nlookup *t);

struct fs {
	const char *data_dir;
	struct store *store;
	struct node node; /* the quorum client chunks go through, and the server */
	struct meta *meta;
	struct fs_chunk_cache *cache;
	pthread_mutex_t files_mu;
	struct fs_ino_table files; /* of struct fs_file, protected by files_mu */
	double timeout;	       /* attribute and entry timeout, seconds */
	struct fuse_session *_Atomic se; /* set once mounted: for cache invalidations */
	struct fs_repl_sink sink;	 /* records from peers: into meta, then fs_invalidate_change */
	struct fs_repl *repl;		 /* namespace replication, or NULL (one node) */
	struct fs_ae *ae;		 /* background anti-entropy, or NULL */
	struct fs_inval *inval;		 /* invalidations sent again (invalidate.c), or NULL */
	bool writeback;	       /* ask the kernel for its writeback cache */
	bool no_open;	       /* the kernel sends no OPEN, FLUSH or RELEASE for files (ops.c) */
	bool dont_mask;	       /* the kernel leaves the umask to us (FUSE_CAP_DONT_MASK) */
	struct fs_nlookup lookups; /* what the kernel holds, for FORGET */
	struct fs_purge *purge;	   /* forgotten inodes, deleted in batches (purge.c), or NULL */
	/* chunk buffers held by all file states: past FS_DIRTY_MAX a writer
	 * stores its own before taking another, so memory stays bounded
	 * however many files are written at once */
	_Atomic uint32_t dirty_chunks;
	struct fs_journal *journal; /* fsync's journal (journal_i.h), or NULL: fsync commits */
	_Atomic uint64_t meta_synced; /* meta_last_txn() as last made durable */
	/* FUSE requests served, by opcode (fs_session_loop), for stats */
	_Atomic uint64_t requests[FS_OPCODES];
};

struct proto_req;

/* ---- invalidate.c, node_ext.c: the mount's side of its node ---- */

/* A sink's callback (arg is the struct fs): what a record from
 * a peer changed is dropped from the kernel's caches, and an inode no name
 * leads to any more goes when the kernel holds none of it. */
void fs_invalidate_change(void *arg, const struct meta_change *c);
/* The thread that sends again the invalidations that found nothing (set
 * up before replication starts, stopped after it ended): 0 or -errno. */
struct fs_inval;
int fs_invalidate_start(struct fs *fs);
void fs_invalidate_stop(struct fs *fs);

/* What the mount adds to its node server (arg is the struct
 * fs): the namespace commands (fs_repl_command) and mgc, and the
 * namespace's and the FUSE requests' numbers for `stats` and /metrics. */
void fs_node_ext_command(void *arg, const struct proto_req *r, server_emit_fn emit, void *ctx);
void fs_node_ext_stats(void *arg, bool metrics, server_emit_fn emit, void *ctx);

/* ---- killpriv.c ---- */

/* Clears setuid, setgid (where the group may execute, or the caller of req
 * is outside the file's group and not privileged) and security.capability
 * of ino, as a write, a truncation or a chown must under
 * FUSE_HANDLE_KILLPRIV_V2; tell_kernel: also drop the attributes the
 * kernel holds (a write's answer carries none). 0 or -errno. */
int fs_killpriv(struct fs *fs, fuse_req_t req, uint64_t ino, bool privileged, bool tell_kernel);

/* ---- gc.c: collection of unreferenced chunks (docs/OPERATIONS.md) ---- */
struct fs_gc_result {
	uint64_t referenced;	     /* distinct chunks the namespace (and open files) name */
	uint64_t chunks;	     /* distinct chunks found on this node and its peers */
	uint64_t young;		     /* unreferenced but within the grace period */
	uint64_t garbage;	     /* unreferenced and older */
	uint64_t garbage_bytes;	     /* their bytes, of those held here */
	uint64_t deleted;	     /* tombstones written */
	uint64_t segments_compacted; /* on this node */
	uint64_t reclaimed_bytes;    /* disk bytes freed on this node */
	uint64_t peers_missed;	     /* peers that could not be swept */
};
/* Marks from m (and fs's open files when fs is given, else a progress bar
 * is drawn), sweeps s and the peers of c (authenticated with key, which may
 * be NULL), then compacts s: 0 or -errno, the findings in r. */
int fs_gc(struct store *s, struct meta *m, struct cluster *c, struct fs *fs,
	  const struct auth_key *key, uint64_t grace_ms, bool dry_run, struct fs_gc_result *r);
/* The node command `mgc GRACE_MS [dry]`. */
void fs_gc_command(struct fs *fs, const struct proto_req *r, server_emit_fn emit, void *ctx);

/* ---- hashx.c: the read-only xattrs user.caskfs.* (docs/USAGE.md) ---- */
#define FS_HASHX_PREFIX "user.caskfs."
/* Whether name is one of ours (the prefix): those are never listed, never
 * set, never removed (EPERM). */
bool fs_hashx_name(const char *name);
/* The value of name (hash, chunks, replicas) for ino into buf (cap bytes;
 * cap 0 asks the length only): its length, -ENODATA (another name, or not
 * a regular file), -ERANGE (cap too small), -E2BIG (over 64 KiB), or the
 * error of committing buffered writes or reading the inode. */
ssize_t fs_hashx_get(struct fs *fs, uint64_t ino, const char *name, char *buf, size_t cap);

/* ---- file.c: a state's life ---- */

/* Finds or creates the state of ino and takes a reference to it: 0, -ENOMEM
 * or the error of loading it from the namespace. */
int fs_file_get(struct fs *fs, uint64_t ino, struct fs_file **out);
/* The state of ino with a reference taken, or NULL when it has none. */
struct fs_file *fs_file_find(struct fs *fs, uint64_t ino);
/* With fs->files_mu held: the state after f (the first for NULL) in the
 * table's order, or NULL after the last. */
struct fs_file *fs_file_next_locked(struct fs *fs, struct fs_file *f);
/* Drops a reference. A state goes with its last one unless it holds writes
 * not committed yet (or a failure to report); true when it went. */
bool fs_file_put(struct fs *fs, struct fs_file *f);
/* When ino has a state: true, with the size it holds (which includes
 * writes not committed, and is never older than the namespace's), the bytes
 * its slots and buffers take (for st_blocks) and the mtime of its last write
 * (tv_nsec UTIME_OMIT when there was none). */
bool fs_file_peek(struct fs *fs, uint64_t ino, uint64_t *size, uint64_t *allocated,
		  struct timespec *mtime);
/* meta_setattr on f's inode, with writes still buffered: an mtime set here
 * (utimens) is the one their commit writes. */
int fs_file_setattr(struct fs *fs, struct fs_file *f, unsigned mask,
		    const struct meta_inode *attr);

/* ---- file_commit.c: its writes made durable ---- */

/* Stores every written chunk and commits size, grid and mtime in one
 * transaction; reports a failure kept from an earlier attempt once. */
int fs_file_commit(struct fs *fs, struct fs_file *f);
/* Commits, then drops a reference; returns the commit's error. */
int fs_file_close(struct fs *fs, struct fs_file *f);
/* Truncates or extends an open file: commit, then the namespace, then the
 * state; out (may be NULL) gets the inode as it is then. */
int fs_file_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct meta_inode *out);

/* fallocate on f (mode: 0, FALLOC_FL_KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE,
 * ZERO_RANGE with or without KEEP_SIZE) of [off, off + len), committed at
 * once. Reserving fills the holes with reserved slots (zeros, allocated);
 * punching and zeroing make the slots covered whole holes and zero the
 * bytes of the others. -EOPNOTSUPP (other modes), -EINVAL (len 0), -EFBIG
 * (past META_FILE_MAX), -ENOSPC, or the commit's error. */
int fs_file_fallocate(struct fs *fs, struct fs_file *f, int mode, uint64_t off, uint64_t len);

/* space.c: statvfs of the disk under DATA_DIR, its free counts less the
 * bytes reserved by fallocate; the bytes free that way. 0 or -errno. */
struct statvfs;
int fs_space_stat(struct fs *fs, struct statvfs *sv);
int fs_space_avail(struct fs *fs, uint64_t *bytes);

/* The kernel forgot ino: commits its state and drops it as fs_file_put
 * does. False when the state stays (still referenced, or written again
 * meanwhile by a new lookup of the inode): the inode must stay too. */
bool fs_file_forget(struct fs *fs, uint64_t ino);
/* Commits the states whose last write is idle_ms old or whose first
 * uncommitted one is max_age_ms old (every state with writes when idle_ms
 * is 0). Returns how many failed (kept for a later round and for fsync). */
int fs_file_commit_idle(struct fs *fs, int64_t idle_ms, int64_t max_age_ms);

/* ---- file_sync.c: fsync ---- */

/* Makes f's writes durable: one record in the fsync journal and one flush
 * of it when the journal can take them, else a commit and fs_sync_all.
 * Reports a failure kept from earlier once, as fs_file_commit does. */
int fs_file_fsync(struct fs *fs, struct fs_file *f);
/* Commits f when it holds journal records no commit holds yet (before a
 * change the records must not undo at replay): 0 or the commit's error. */
int fs_file_unjournal(struct fs *fs, struct fs_file *f);
/* Makes the log and then the namespace durable (the namespace only when it
 * changed since its last sync): 0 or -errno. */
int fs_sync_all(struct fs *fs);
/* Whether a file state holds journal records below seq not yet committed
 * (they keep the older journal file from being emptied). */
bool fs_file_journaled_below(struct fs *fs, uint64_t seq);
/* Commits the states that hold journal records below seq; how many failed. */
int fs_file_commit_journaled(struct fs *fs, uint64_t seq);

/* ---- journal_replay.c ---- */

/* Opens the fsync journal of fs->data_dir into fs->journal and applies the
 * records the namespace does not hold yet, committing and syncing them,
 * then empties the journal: before the mount serves anything. 0 or -errno
 * (logged: the mount must not start without what fsync promised). */
int fs_journal_replay(struct fs *fs);
/* How many records of DATA_DIR data_dir's fsync journal the namespace m does
 * not hold yet (what the next mount replays): offline tools must not act as
 * if their content were not there. 0 (no journal: 0 records) or -errno. */
int fs_journal_pending(const char *data_dir, struct meta *m, uint64_t *records);

/* ---- file_io.c: reads and writes through it ---- */

/* Bytes written or read (fewer at the end of the file), or -errno; a write
 * past META_FILE_MAX is -EFBIG. */
ssize_t fs_file_write(struct fs *fs, struct fs_file *f, const void *buf, size_t n, uint64_t off);
ssize_t fs_file_read(struct fs *fs, struct fs_file *f, void *buf, size_t n, uint64_t off);
/*
 * Copies len bytes from fin at off_in to fout at off_out. Whole 1 MiB slots
 * at aligned offsets share their chunks (no bytes move); the rest is copied.
 * Returns the bytes copied or -errno.
 */
ssize_t fs_file_copy(struct fs *fs, struct fs_file *fin, uint64_t off_in, struct fs_file *fout,
		     uint64_t off_out, size_t len);
/* SEEK_DATA / SEEK_HOLE over the chunk grid (1 MiB granularity; the end of
 * the file is a hole). -ENXIO past the end. */
int64_t fs_file_seek(struct fs_file *f, uint64_t off, int whence);

/* ---- purge.c: forgotten inodes, deleted in batches ---- */

/* The queue and its thread, as fs->purge: 0, or -ENOMEM or -EAGAIN (then
 * fs->purge is NULL and each FORGET deletes its orphan at once). */
int fs_purge_start(struct fs *fs);
/* Deletes what is queued, then ends the thread; nothing may be queued after.
 * Without a queue, nothing. */
void fs_purge_stop(struct fs *fs);
/* The kernel forgot ino: deleted soon if it is an orphan (meta_forget). */
void fs_purge_forgotten(struct fs *fs, uint64_t ino);
/* Deletes what is queued now (gc marks after it). */
void fs_purge_flush(struct fs *fs);

/* ---- committer.c, mount.c ---- */

/* The group-commit thread over fs: 0, or -ENOMEM or -EAGAIN
 * (then the namespace syncs at fsync only); stop takes NULL. */
struct fs_committer;
int fs_committer_start(struct fs *fs, struct fs_committer **out);
void fs_committer_stop(struct fs_committer *c);

/* `caskfs mount` (docs/USAGE.md): the process exit status. */
struct mount_args {
	const char *data_dir;
	const char *mountpoint;
	bool foreground;
	const char *options;  /* extra -o options for FUSE, or NULL */
	const char *log_file; /* where a backgrounded daemon writes; NULL: /dev/null */
	bool writeback;	      /* the kernel's writeback cache */
	enum fs_uring_mode uring; /* --uring: the transport of requests */
	struct node_args node;
	struct store_options store;
};

int cli_mount(const struct mount_args *a);

#endif
