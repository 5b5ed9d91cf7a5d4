/*
 * meta.h - the namespace of a caskfs node in LMDB (DATA_DIR/meta/data.mdb):
 * inodes, directory entries, extended attributes, symlink targets and each
 * file's chunk list. Every change is one LMDB write transaction, so a rename,
 * link or unlink is seen whole or not at all.
 *
 * Every record carries a version (stamp, node) from the node's clock; between
 * machines each record is a last-writer-wins register, and a removed entry or
 * xattr stays as a tombstone so an older copy cannot bring it back. Link
 * counts are derived here from live entries and are not part of any record.
 * Inode numbers are node_id << 48 | counter, unique across a cluster.
 *
 * Functions return 0 or a negative errno; LMDB codes are mapped in
 * meta_errno(). Safe to call from many threads (LMDB serialises writers).
 * Record formats: docs/FORMAT.md ("Namespace").
 */
#ifndef CASKFS_META_H
#define CASKFS_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "store/store.h"

#define META_ROOT_INO 1
/* /lost+found, where entries of directories removed elsewhere are kept */
#define META_LOST_FOUND_INO 2
#define META_NAME_MAX 255
#define META_XATTR_NAME_MAX 255
#define META_XATTR_SIZE_MAX 65536
#define META_CHUNK_SIZE (1u << 20)
#define META_CHUNK_KEY 16 /* xxh3-128 of the chunk's bytes */
#define META_SYMLINK_MAX 4095

/* The largest file: the grid counts its slots in 32 bits. */
#define META_FILE_MAX ((uint64_t)UINT32_MAX * META_CHUNK_SIZE)

/* One slot of a file's chunk grid: bytes [i * META_CHUNK_SIZE, ...). */
struct meta_chunk {
	uint8_t key[META_CHUNK_KEY]; /* all zero: a hole, reads as zeros */
	uint32_t len;		     /* bytes stored; the rest of the slot reads as zeros */
};

struct meta_inode {
	uint64_t ino;
	struct store_version version;
	uint32_t mode; /* type and permission bits, as in st_mode */
	uint32_t uid, gid, rdev;
	uint32_t nlink; /* derived: live entries naming it (+1 and subdirs for a dir) */
	uint64_t size;
	struct timespec atime, mtime, ctime;
	char *target;		   /* symlink target (malloc'd, NUL-terminated) or NULL */
	uint32_t nchunks;	   /* chunk grid, filled only when asked for */
	struct meta_chunk *chunks; /* malloc'd, or NULL */
};

/* Slots in the chunk grid of a file of size bytes. */
uint32_t meta_grid_slots(uint64_t size);

/*
 * Resizes a chunk grid (*grid, malloc'd, *n slots) to cover a file of size
 * bytes: new slots are holes, slots past the end are dropped, and the last
 * slot's length is clipped to the end. Returns 0 or -ENOMEM (grid unchanged).
 */
int meta_grid_fit(struct meta_chunk **grid, uint32_t *n, uint64_t size);

/* Frees target and chunks of an inode filled by this API. */
void meta_inode_release(struct meta_inode *in);

struct meta;

/*
 * Opens (creating when needed, with a root directory owned by uid 0, mode
 * 0755) the namespace in DATA_DIR dir. clock stamps new records; it must
 * outlive the meta (use store_clock() of the node's store). node_id goes
 * into versions and inode numbers (1..65535). Errors: -EINVAL, -ENOMEM, the
 * errno of LMDB or the file system (logged to stderr).
 */
int meta_open(const char *dir, uint32_t node_id, struct store_clock *clock, struct meta **out);
/* Closes the environment. NULL is fine. */
void meta_close(struct meta *m);

/* Makes committed changes durable (LMDB runs with MDB_NOSYNC: the caller
 * orders this after the store's sync, log first). Returns 0 or -errno. */
int meta_sync(struct meta *m);

/* The id of the last committed write transaction: it changes with every
 * change to the namespace (to tell whether a sync is due). */
uint64_t meta_last_txn(struct meta *m);

/* Maps an LMDB return code to a negative errno. */
int meta_errno(int mdb_rc);

/* Reads an inode; with chunks, also its chunk grid. -ENOENT when absent. */
int meta_getattr(struct meta *m, uint64_t ino, bool chunks, struct meta_inode *out);

/* Looks up name in directory parent. -ENOENT, -ENOTDIR, -ENAMETOOLONG. */
int meta_lookup(struct meta *m, uint64_t parent, const char *name, struct meta_inode *out);

/*
 * Creates name in parent: a regular file, directory, symlink (target not
 * NULL, mode's type S_IFLNK), fifo, socket or device. The new inode belongs to
 * uid and gid; a setgid parent passes on its group (and, to a directory, the
 * setgid bit). The parent's mtime and ctime move. -EEXIST, -ENOENT (no parent),
 * -ENOTDIR, -ENAMETOOLONG, -EINVAL (bad name or mode).
 */
int meta_mknod(struct meta *m, uint64_t parent, const char *name, uint32_t mode, uint32_t uid,
	       uint32_t gid, uint32_t rdev, const char *target, struct meta_inode *out);

/* Removes the entry name (not a directory: -EISDIR). The inode goes with its
 * last link. -ENOENT, -ENOTDIR. */
int meta_unlink(struct meta *m, uint64_t parent, const char *name);

/* Called when the kernel forgets ino (no open handle is left): an inode whose
 * last link is gone is deleted now. Orphans left by a crash go at meta_open. */
int meta_forget(struct meta *m, uint64_t ino);

/* Removes the empty directory name. -ENOTEMPTY, -ENOTDIR, -ENOENT, -EBUSY (root). */
int meta_rmdir(struct meta *m, uint64_t parent, const char *name);

#define META_RENAME_NOREPLACE 1u /* RENAME_NOREPLACE */
#define META_RENAME_EXCHANGE 2u	 /* RENAME_EXCHANGE */
/*
 * Renames parent/name to newparent/newname in one transaction, replacing a
 * target of a compatible type. -ENOENT, -EEXIST (NOREPLACE), -ENOTEMPTY,
 * -EISDIR / -ENOTDIR (type mismatch), -EINVAL (a directory into itself,
 * both flags), -ENAMETOOLONG.
 */
int meta_rename(struct meta *m, uint64_t parent, const char *name, uint64_t newparent,
		const char *newname, unsigned flags);

/* Adds the name newparent/newname for ino (not a directory: -EPERM). -EEXIST,
 * -ENOENT. *out gets the inode with its new link count. */
int meta_link(struct meta *m, uint64_t ino, uint64_t newparent, const char *newname,
	      struct meta_inode *out);

/* What meta_setattr changes. Times given as UTIME_NOW take the current time. */
#define META_SET_MODE 0x01u
#define META_SET_UID 0x02u
#define META_SET_GID 0x04u
#define META_SET_SIZE 0x08u
#define META_SET_ATIME 0x10u
#define META_SET_MTIME 0x20u
#define META_SET_CTIME 0x40u
/*
 * Changes attributes of ino and moves its ctime. A size change cuts or
 * extends the chunk grid (extension reads as zeros) and moves the mtime.
 * -ENOENT, -EISDIR (size of a directory), -EFBIG.
 */
int meta_setattr(struct meta *m, uint64_t ino, unsigned mask, const struct meta_inode *attr,
		 struct meta_inode *out);

/*
 * Replaces a regular file's content description: its size and the chunk
 * slots [first, first + n) (the grid grows as needed; slots past the new size
 * are dropped). Sets mtime to *mtime (the time of the write; now when NULL)
 * and ctime to now. The chunks must be stored already.
 */
int meta_set_content(struct meta *m, uint64_t ino, uint64_t size, const struct timespec *mtime,
		     uint32_t first,
		     const struct meta_chunk *chunks, uint32_t n, struct meta_inode *out);

/* meta_set_content of several files (all their slots from 0) in one
 * transaction, each item's result in its rc. Returns 0 when the transaction
 * committed (items that failed on their own, as -ENOENT, are left out of
 * it), or the error that ended it (no item was committed). */
struct meta_content {
	uint64_t ino, size;
	const struct timespec *mtime; /* NULL: now */
	const struct meta_chunk *chunks;
	uint32_t n;
	int rc;
};
int meta_set_contents(struct meta *m, struct meta_content *items, size_t n);

/*
 * Lists directory ino from position pos (0 for the start), calling fn for each
 * live entry in position order with its name, inode, type (S_IFMT bits) and
 * the position to resume after it. fn returns non-zero to stop (that value is
 * returned). Positions are stable: each is derived from the entry's name.
 */
typedef int (*meta_readdir_fn)(void *arg, const char *name, uint64_t ino, uint32_t type,
			       uint64_t next_pos);
int meta_readdir(struct meta *m, uint64_t ino, uint64_t pos, meta_readdir_fn fn, void *arg);

#define META_XATTR_CREATE 1  /* XATTR_CREATE */
#define META_XATTR_REPLACE 2 /* XATTR_REPLACE */
/* Extended attributes. Errors: -ENODATA (absent), -EEXIST (CREATE), -ERANGE
 * (name or buffer), -E2BIG (value over META_XATTR_SIZE_MAX), -ENOENT (ino). */
int meta_setxattr(struct meta *m, uint64_t ino, const char *name, const void *value, size_t size,
		  int flags);
/* Copies the value into buf (cap bytes) and returns its length; with cap 0,
 * returns the length only. -ERANGE when cap is too small. */
ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf, size_t cap);
/* Writes the NUL-terminated names into buf; returns the bytes needed (cap 0
 * asks for the size). -ERANGE when cap is too small. */
ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t cap);
int meta_removexattr(struct meta *m, uint64_t ino, const char *name);

/* Calls fn for every inode, with its chunk grid, over one read snapshot.
 * fn returns non-zero to stop (that value is returned). */
typedef int (*meta_inode_fn)(void *arg, const struct meta_inode *in);
int meta_scan_inodes(struct meta *m, meta_inode_fn fn, void *arg);

struct meta_stats {
	uint64_t inodes;
	uint64_t entries;    /* live directory entries */
	uint64_t tombstones; /* removed entries and xattrs kept for replication */
	uint64_t map_bytes;  /* size of the LMDB file in use */
};
int meta_stats(struct meta *m, struct meta_stats *st);

/* ---- replication (docs/REPLICATION.md) ---- */

/* The replicated tables, as they are named in a record on the wire. */
enum meta_table { META_TABLE_INODES = 1, META_TABLE_ENTRIES = 2, META_TABLE_XATTRS = 3 };

/*
 * A replicated record as it travels: u8 table, le16 key length, the key, then
 * the value (which carries its version: le32 node at offset 4, le64 stamp at
 * offset 8, bit 0 of byte 1 "deleted"). docs/FORMAT.md, "Namespace".
 */
#define META_WIRE_HEAD 3

/* From now on every local change is also appended to the outbox (a local
 * LMDB table, written in the change's own transaction) for meta_outbox_read(). */
void meta_set_replication(struct meta *m, bool on);

/*
 * Calls fn for the outbox records after seq after (in order), at most max of
 * them; fn gets the record's seq and its wire bytes. Returns the number of
 * records visited, or -errno.
 */
typedef int (*meta_outbox_fn)(void *arg, uint64_t seq, const uint8_t *rec, size_t len);
int meta_outbox_read(struct meta *m, uint64_t after, int max, meta_outbox_fn fn, void *arg);
/* Removes the outbox records up to and including seq (every peer has them). */
int meta_outbox_trim(struct meta *m, uint64_t upto);
/* The last outbox seq, and the number of records waiting. */
void meta_outbox_state(struct meta *m, uint64_t *last, uint64_t *pending);
/* A small local value kept with the namespace (e.g. a peer's acknowledged
 * outbox seq): get returns -ENOENT when unset. name is at most 200 bytes. */
int meta_state_get(struct meta *m, const char *name, uint64_t *v);
int meta_state_put(struct meta *m, const char *name, uint64_t v);

/* What applying a record changed, for the caller's cache invalidation. */
struct meta_change {
	enum meta_table table;
	uint64_t ino;	 /* the inode changed (inodes, xattrs), or the entry's child */
	uint64_t parent; /* entries: the directory */
	char name[META_NAME_MAX + 1]; /* entries: the name */
	uint64_t old_child; /* entries: the inode the name named before, or 0 */
};

/*
 * Applies one wire record from a peer under the last-writer-wins rule: it is
 * written when its version is newer than the local record's (or there is
 * none), and the local tables derived from entries (link counts, parents,
 * orphans) follow. An entry whose directory does not exist here is kept under
 * /lost+found instead (docs/REPLICATION.md). Returns 1 when applied (chg
 * filled), 0 when the local record was as new or newer, -EBADMSG for a
 * malformed record, or another -errno.
 */
int meta_apply(struct meta *m, const uint8_t *rec, size_t len, struct meta_change *chg);

/*
 * The hash tree over the replicated records, shaped like the store's (16-ary,
 * STORE_TREE_DEPTH levels, sums of leaves mod 2^64): a record's bucket is the
 * top 16 bits of xxh3-64 of (table byte, key), its leaf the xxh3-64 of
 * (table byte, key, value). Equal namespaces have equal roots.
 */
int meta_tree_children(struct meta *m, const uint8_t *path, int depth,
		       struct store_tree_node *self, struct store_tree_node children[16]);
/* Calls fn for every record of a leaf bucket: tk is the table byte followed by
 * the key. */
typedef int (*meta_bucket_fn)(void *arg, const uint8_t *tk, size_t tklen,
			      const struct store_version *v, uint64_t leaf, bool deleted);
int meta_tree_bucket(struct meta *m, const uint8_t path[STORE_TREE_DEPTH], meta_bucket_fn fn,
		     void *arg);
/*
 * fsck of the namespace: link counts and subdirectory counts against the live
 * entries, entries naming missing inodes, inodes no name leads to that are not
 * known orphans. fn gets one line per problem. With repair, counts are
 * rewritten and such inodes are linked into /lost+found as inode-<ino hex>.
 */
typedef void (*meta_problem_fn)(void *arg, uint64_t ino, const char *what);
int meta_verify(struct meta *m, bool repair, meta_problem_fn fn, void *arg, uint64_t *problems,
		uint64_t *fixed);

/* The wire record (malloc'd) of the record named by tk (table byte + key).
 * -ENOENT when there is none. */
int meta_get_record(struct meta *m, const uint8_t *tk, size_t tklen, uint8_t **rec, size_t *len);

#endif
