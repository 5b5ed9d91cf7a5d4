/*
 * fs_i.h - the FUSE daemon's shared state: the node's store and namespace,
 * the chunk cache, and the open-file states (one per inode with open handles,
 * shared by all its handles, holding writes not yet committed).
 */
#ifndef CASKFS_FS_FS_I_H
#define CASKFS_FS_FS_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "chunk_i.h"
#include "cli_i.h"
#include "meta/meta.h"
#include "store/store.h"

/* A chunk written but not yet stored: META_CHUNK_SIZE bytes, len of them valid. */
struct fs_dirty {
	uint32_t idx;
	uint32_t len;
	uint8_t *buf;
};

struct fs_file {
	uint64_t ino;
	int opens;		 /* protected by fs->files_mu */
	struct fs_file *next;	 /* protected by fs->files_mu */
	pthread_mutex_t mu;	 /* protects everything below */
	uint64_t size;		 /* including writes not yet committed */
	struct meta_chunk *grid; /* the grid as it will be committed */
	uint32_t ngrid;
	struct fs_dirty *dirty;
	uint32_t ndirty, capdirty;
	bool changed; /* size or grid differ from the namespace */
	int error;    /* a chunk that could not be stored, reported at the next flush */
	/* the last chunk read, so small reads of one chunk fetch it once */
	uint8_t *rbuf;
	uint32_t ridx, rlen;
	bool rvalid;
};

/* What a file looked like when last opened, to let the kernel keep its cache. */
struct fs_seen {
	uint64_t ino;
	struct timespec mtime;
	uint64_t size;
};
#define FS_SEEN_SLOTS 4096

struct fs {
	const char *data_dir;
	pthread_mutex_t seen_mu;
	struct fs_seen seen[FS_SEEN_SLOTS]; /* protected by seen_mu; a direct-mapped table */
	struct store *store;
	struct node node; /* the quorum client chunks go through, and the server */
	struct meta *meta;
	struct fs_chunk_cache *cache;
	pthread_mutex_t files_mu;
	struct fs_file *files; /* protected by files_mu */
	double timeout;	       /* attribute and entry timeout, seconds */
	struct fuse_session *_Atomic se; /* set once mounted: for cache invalidations */
	struct repl *repl;		 /* namespace replication, or NULL (one node) */
	struct ae *ae;			 /* background anti-entropy, or NULL */
	bool writeback;	       /* ask the kernel for its writeback cache */
};

/* ops.c: the next open of ino does not keep the kernel's cached pages. */
void fs_seen_forget(struct fs *fs, uint64_t ino);

/* replicate.c (docs/REPLICATION.md) */
struct proto_req;
/* Starts pushing the namespace's outbox to a->peers (nothing without peers). */
int fs_repl_start(struct fs *fs, const struct node_args *a);
/* Wakes the pusher (a change was committed). */
void fs_repl_kick(struct fs *fs);
void fs_repl_stop(struct fs *fs);
/* Applies a record from a peer (meta_apply) and invalidates what it changed. */
int fs_repl_apply(struct fs *fs, const uint8_t *rec, size_t len);
/* The namespace's numbers for `stats` and /metrics. */
void fs_repl_stats(void *arg, bool metrics, server_emit_fn emit, void *ctx);
/* The server's handler of the namespace commands (mput, mtree, mget). */
void fs_repl_ext(void *arg, const struct proto_req *r, server_emit_fn emit, void *ctx);

/* gc.c (docs/OPERATIONS.md) */
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
/* Marks from m (and fs's open files when fs is given), sweeps s and the
 * peers of c, then compacts s. */
int fs_gc(struct store *s, struct meta *m, struct cluster *c, struct fs *fs,
	  const struct auth_key *key, uint64_t grace_ms, bool dry_run, struct fs_gc_result *r);
/* The node command `mgc GRACE_MS [dry]`. */
void fs_gc_command(struct fs *fs, const struct proto_req *r, server_emit_fn emit, void *ctx);

/* sync.c: anti-entropy rounds with every peer every a->sync_interval_s. */
int fs_ae_start(struct fs *fs, const struct node_args *a);
void fs_ae_stop(struct fs *fs);

/* file.c */
/* Finds or creates the open state of ino and counts one more open. */
int fs_file_open(struct fs *fs, uint64_t ino, struct fs_file **out);
/* Commits and drops one open; the state goes with the last. Returns the
 * commit's error. */
int fs_file_close(struct fs *fs, struct fs_file *f);
/* The size of ino including writes not committed yet, when it is open:
 * returns true and fills *size; false when ino has no open state. */
bool fs_file_peek_size(struct fs *fs, uint64_t ino, uint64_t *size);
ssize_t fs_file_write(struct fs *fs, struct fs_file *f, const void *buf, size_t n, uint64_t off);
ssize_t fs_file_read(struct fs *fs, struct fs_file *f, void *buf, size_t n, uint64_t off);
/* Stores every written chunk and commits size and grid in one transaction. */
int fs_file_commit(struct fs *fs, struct fs_file *f);
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

/* Truncates or extends an open file: commit, then the namespace, then the state. */
int fs_file_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct meta_inode *out);

#endif
