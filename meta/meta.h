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
 * meta_errno(). Any of them may also return what LMDB can (-EBADMSG for a
 * damaged or incompatible file, -ENOSPC when the map is full, -EIO) besides
 * the errors listed with it. Safe to call from many threads (LMDB serialises
 * writers). Ownership: pointers passed in are borrowed for the call; a
 * struct meta_inode filled here owns its target and chunks: start it zeroed
 * ({ 0 }) and give it to meta_inode_release() whatever the call returned.
 * Record formats: docs/FORMAT.md ("Namespace"). The code is one file a
 * mechanism in meta/; meta_i.h says what those files share.
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

/* The largest file, 16 TiB (as on ext4 with 4 KiB blocks): a size, write,
 * fallocate or copy past it is -EFBIG. A file's map costs memory and
 * namespace bytes for the slots that hold data, never for its size. */
#define META_FILE_MAX ((uint64_t)1 << 44)
/* The unit of allocation counts (st_blocks, du): a slot's bytes round up to it. */
#define META_BLOCK 4096u

/*
 * One slot of a file's chunk map: bytes [idx * META_CHUNK_SIZE, + len) come
 * from the chunk key names; the rest of the slot reads as zeros. A key of
 * all zeros is a reserved slot (fallocate): allocated, reads as zeros.
 */
struct meta_chunk {
	uint32_t idx; /* slot number */
	uint32_t len; /* bytes stored (or reserved), at most META_CHUNK_SIZE */
	uint8_t key[META_CHUNK_KEY];
};

/*
 * Where a file's content came from (docs/REPLICATION.md, "Conflict copies"):
 * the version of the last change of its size or chunk map, the first change
 * of the run of changes that node made in a row, and the two runs before
 * (first and last change of each). All zero: not known (a record written
 * before lineage was kept, or not a regular file). Kept by meta itself on
 * every content change; callers only carry it from a read to a write.
 */
struct meta_lineage {
	struct store_version content, run;
	struct store_version prev_run[2], prev_last[2]; /* [0] the newer */
};

struct meta_inode {
	uint64_t ino;
	struct store_version version;
	uint32_t mode; /* type and permission bits, as in st_mode */
	uint32_t uid, gid, rdev;
	uint32_t nlink; /* derived: live entries naming it (+1 and subdirs for a dir) */
	uint64_t size;
	uint64_t allocated; /* bytes its slots take (META_BLOCK units; for st_blocks) */
	uint64_t snapshot;  /* the namespace transaction it was read in (meta_last_txn's count) */
	struct timespec atime, mtime, ctime;
	char *target; /* symlink target (malloc'd, NUL-terminated) or NULL */
	/* The chunk map, filled only when asked for: the slots that hold data
	 * or are reserved, sorted by idx, each once; a slot not listed is a
	 * hole. nchunks is the count even when chunks is not filled. */
	uint32_t nchunks;
	struct meta_chunk *chunks; /* malloc'd, or NULL */
	struct meta_lineage lineage;
};

/* A chunk map being changed (chunkmap.c): v holds n entries sorted by idx,
 * room for cap; v is malloc'd and the map's owner's. Start it zeroed. */
struct meta_map {
	struct meta_chunk *v;
	uint32_t n, cap;
};

/* The position in v (n entries, sorted) of the first entry whose idx is at
 * least idx (n when there is none). */
uint32_t meta_map_lower(const struct meta_chunk *v, uint32_t n, uint32_t idx);
/* The entry of slot idx in v (n entries, sorted), or NULL: a hole. */
const struct meta_chunk *meta_map_find(const struct meta_chunk *v, uint32_t n, uint32_t idx);
/* Puts *c (copied) into m in its place, replacing the entry of its slot.
 * Appending past the last slot moves nothing. -ENOMEM (m unchanged). */
int meta_map_set(struct meta_map *m, const struct meta_chunk *c);
/* Removes the entries of slots [first, end) from m: they become holes. */
void meta_map_punch(struct meta_map *m, uint32_t first, uint32_t end);
/* Fits m to a file of size bytes: slots past the end go, and the last
 * slot's length is clipped to the end. Never allocates. */
void meta_map_fit(struct meta_map *m, uint64_t size);
/* The bytes the n entries of v take, each rounded up to META_BLOCK. */
uint64_t meta_map_allocated(const struct meta_chunk *v, uint32_t n);
/* Replaces dst's entries by a copy of v's n: 0 or -ENOMEM (dst unchanged). */
int meta_map_copy(struct meta_map *dst, const struct meta_chunk *v, uint32_t n);
/* Whether c is a reserved slot (no chunk: reads as zeros). */
bool meta_chunk_reserved(const struct meta_chunk *c);
/* Frees m's entries and zeroes it. */
void meta_map_release(struct meta_map *m);

/*
 * POSIX ACLs in their xattr form (acl.c), as the kernel passes them for
 * system.posix_acl_access and system.posix_acl_default. Each takes the ACL's
 * bytes and checks them first: -EINVAL when malformed (version, sizes, tags,
 * order, a missing owner, group or other entry, named entries without a
 * mask). Nothing is allocated.
 */
#define META_ACL_ACCESS "system.posix_acl_access"
#define META_ACL_DEFAULT "system.posix_acl_default"
int meta_acl_valid(const uint8_t *acl, size_t len);
/* Sets the permission bits of *mode from an access ACL (owner, mask or
 * group, other); *equivalent: the ACL says no more than those bits. */
int meta_acl_mode(const uint8_t *acl, size_t len, uint32_t *mode, bool *equivalent);
/* Rewrites acl in place for chmod to mode: owner, mask (group without one)
 * and other entries take its bits. */
int meta_acl_chmod(uint8_t *acl, size_t len, uint32_t mode);
/* Turns a directory's default ACL (a copy, rewritten in place) into the
 * access ACL of an inode created in it with *mode, and masks *mode by it, as
 * the kernel's posix_acl_create does; *equivalent: no access ACL is needed. */
int meta_acl_create(uint8_t *acl, size_t len, uint32_t *mode, bool *equivalent);

/* ---- chash.c: the content hash (docs/FORMAT.md, "Content hash") ---- */

#define META_CONTENT_HASH 16
/* The content hash of in (size and chunk map; in->chunks filled, or NULL
 * for a file without slots): xxh3-128 over what the slots hold, so equal
 * bytes in equal slots hash equal, however they were written. 0 or -ENOMEM. */
int meta_content_hash(const struct meta_inode *in, uint8_t out[META_CONTENT_HASH]);
/* The same, exact for every file: fn is called for each slot that holds
 * something and is not a whole slot read whole (its stored length or the
 * length it reads, extent, up to the next slot or the file's end, is short
 * of META_CHUNK_SIZE), and fills id with the chunk id of the bytes the slot
 * reads: its chunk's bytes cut or padded with zeros to extent. That is its
 * key unless a truncate clipped the slot (the map's length is then shorter
 * than the chunk) or the file grew past it; only the caller, which can ask
 * the store, can tell. A -errno from fn ends the hash. With fn NULL this is
 * meta_content_hash, exact for files never clipped. 0 or -errno. */
typedef int (*meta_slot_bytes_fn)(void *arg, const struct meta_chunk *c, uint32_t extent,
				  uint8_t id[META_CHUNK_KEY]);
int meta_content_hash_read(const struct meta_inode *in, meta_slot_bytes_fn fn, void *arg,
			   uint8_t out[META_CONTENT_HASH]);
/* The same, fed slot by slot (holding bytes, in increasing index, lengths
 * cut to the end: what meta_slot_get gives) in constant memory: begin
 * returns NULL without memory; end frees h. */
struct meta_content_hasher;
struct meta_content_hasher *meta_content_hash_begin(uint64_t size);
void meta_content_hash_slot(struct meta_content_hasher *h, uint32_t idx, uint32_t len,
			    const uint8_t id[META_CHUNK_KEY]);
void meta_content_hash_end(struct meta_content_hasher *h, uint8_t out[META_CONTENT_HASH]);
/* Slot i of in's chunk map (i < nchunks): its index in the file, its length
 * cut to the file's end, and its chunk id (pointing into in). False when
 * the slot holds no bytes: a hole, all zeros, or past the end. */
bool meta_slot_get(const struct meta_inode *in, uint32_t i, uint32_t *idx, uint32_t *len,
		   const uint8_t **id);
/* Whether chunk id of len bytes reads as zeros (a hole's all-zero id, or
 * the id of len zero bytes). Hashes len zero bytes unless len is a whole
 * slot, whose zero id is computed once. */
bool meta_chunk_is_zero(const uint8_t id[META_CHUNK_KEY], uint32_t len);

/* Frees target and chunks of an inode filled by this API and sets them to
 * NULL (in itself stays the caller's). NULL, and a zeroed inode, are fine. */
void meta_inode_release(struct meta_inode *in);

struct meta;

/*
 * Opens (creating when needed, with a root directory owned by uid 0, mode
 * 0755) the namespace in DATA_DIR dir (dir/meta/data.mdb; dir is only read
 * during the call). clock stamps new records; it must outlive the meta (use
 * store_clock() of the node's store). node_id goes into versions and inode
 * numbers (1..65535). Inodes a crash left without a name are deleted now.
 * On success *out is the caller's, to give to meta_close(). Errors: -EINVAL
 * (dir or clock NULL, node_id out of range), -ENOMEM, the errno of mkdir or
 * of LMDB (-EBADMSG for a damaged or foreign file), these logged to stderr
 * with the path.
 */
int meta_open(const char *dir, uint32_t node_id, struct store_clock *clock, struct meta **out);
/* Makes committed changes durable, closes the environment and frees m. NULL
 * is fine. No other thread may be using m. */
void meta_close(struct meta *m);

/* Makes committed changes durable (LMDB runs with MDB_NOSYNC: the caller
 * orders this after the store's sync, log first). Returns 0 or -errno (-EIO). */
int meta_sync(struct meta *m);

/* The id of the last committed write transaction: it changes with every
 * change to the namespace (to tell whether a sync is due). 0 when LMDB
 * cannot say. */
uint64_t meta_last_txn(struct meta *m);

/* Maps an LMDB return code to a negative errno: 0 for MDB_SUCCESS, -ENOENT
 * (MDB_NOTFOUND), -EEXIST (MDB_KEYEXIST), -ENOSPC (MDB_MAP_FULL), -EBADMSG
 * (damaged or incompatible file), -rc for a system errno, else -EIO. */
int meta_errno(int mdb_rc);

/*
 * Reads inode ino into *out (see the ownership rule above); with chunks,
 * also its chunk map (out->chunks, out->nchunks), else out->chunks is NULL
 * and out->nchunks still tells the count. nlink is derived from the live
 * entries. -ENOENT when absent, -EBADMSG for a damaged record (logged),
 * -ENOMEM.
 */
int meta_getattr(struct meta *m, uint64_t ino, bool chunks, struct meta_inode *out);

/* Looks up name in directory parent and reads the inode it names into *out,
 * without its chunk map. -ENOENT (no such entry, no parent, or a name that
 * cannot exist: "", ".", "..", one with '/'), -ENOTDIR (parent is not a
 * directory), -ENAMETOOLONG, -EBADMSG, -ENOMEM. */
int meta_lookup(struct meta *m, uint64_t parent, const char *name, struct meta_inode *out);

/*
 * Creates name in parent: a regular file, directory, symlink (target not
 * NULL, mode's type S_IFLNK), fifo, socket or device (rdev). The new inode
 * belongs to uid and gid; a setgid parent passes on its group (and, to a
 * directory, the setgid bit). A parent with a default ACL passes it on (the
 * ACL masks mode; a directory also inherits the default ACL); elsewhere mode
 * loses the bits of umask. The parent's mtime and ctime move. out may be
 * NULL; else it gets the new inode (nlink 1, or 2 for a directory; a copy of
 * target, which the caller releases). target is copied. -EEXIST, -ENOENT (no
 * parent, or an empty target), -ENOTDIR, -ENAMETOOLONG (name over
 * META_NAME_MAX or target over META_SYMLINK_MAX), -EINVAL (bad name, an
 * unknown type, or a target with a type other than S_IFLNK or none with it),
 * -ENOSPC (also when this node's inode numbers are used up), -ENOMEM.
 */
int meta_mknod(struct meta *m, uint64_t parent, const char *name, uint32_t mode, uint32_t umask,
	       uint32_t uid, uint32_t gid, uint32_t rdev, const char *target, struct meta_inode *out);

/* Removes the entry name from parent, leaving a tombstone (not a directory:
 * -EISDIR). The inode goes with its last link, when the kernel forgets it
 * (meta_forget). The parent's mtime and ctime move. -ENOENT (no such entry
 * or parent, or an invalid name), -ENOTDIR (parent), -ENAMETOOLONG. */
int meta_unlink(struct meta *m, uint64_t parent, const char *name);

/* Called when the kernel forgets ino (no open handle is left): an inode whose
 * last link is gone is deleted now, with its xattrs; any other ino is left
 * alone. Orphans left by a crash go at meta_open. Returns 0 or -errno. */
int meta_forget(struct meta *m, uint64_t ino);
/* meta_forget of each of the n inodes at inos, in one transaction. */
int meta_forget_many(struct meta *m, const uint64_t *inos, size_t n);

/* Removes the empty directory name from parent, as meta_unlink does a file.
 * -ENOTEMPTY (also for "..", as rmdir(2), and for "" or a name with '/'),
 * -EINVAL ("."), -ENOTDIR (parent or name is not a directory), -ENOENT,
 * -EBUSY (the root), -ENAMETOOLONG. */
int meta_rmdir(struct meta *m, uint64_t parent, const char *name);

#define META_RENAME_NOREPLACE 1u /* RENAME_NOREPLACE */
#define META_RENAME_EXCHANGE 2u	 /* RENAME_EXCHANGE */
/*
 * Renames parent/name to newparent/newname in one transaction, replacing a
 * target of a compatible type (an empty directory for a directory); with
 * META_RENAME_EXCHANGE the two names swap inodes. The ctime of what moved
 * and the parents' mtime and ctime move. Renaming a name onto itself, or
 * (without EXCHANGE) onto another name of the same inode, changes nothing. -ENOENT (no source, no
 * parent, or EXCHANGE without a target), -EEXIST (NOREPLACE), -ENOTEMPTY,
 * -EISDIR / -ENOTDIR (type mismatch, or a parent that is not a directory),
 * -EINVAL (a directory into itself, an unknown flag or both, an invalid
 * name), -ENAMETOOLONG, -ELOOP (a parent chain too deep to check).
 */
int meta_rename(struct meta *m, uint64_t parent, const char *name, uint64_t newparent,
		const char *newname, unsigned flags);

/* Adds the name newparent/newname for ino (not a directory: -EPERM); an
 * orphan gets a name again. ino's ctime and newparent's mtime and ctime move.
 * out may be NULL; else it gets the inode with its new link count, without
 * its chunk map (nchunks 0). -EEXIST, -ENOENT (ino or newparent), -ENOTDIR
 * (newparent), -EINVAL / -ENAMETOOLONG (newname), -ENOMEM. */
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
 * Changes the attributes of ino that mask names, taken from attr (mode: the
 * permission bits 07777 only; the type stays), and moves its ctime (to
 * attr->ctime with META_SET_CTIME). A size change cuts the chunk map (an
 * extension is a hole, read as zeros) and moves the mtime. A mode change
 * rewrites an access ACL to match (meta_acl_chmod). out may be NULL; else it
 * gets the inode as written, without its chunk map (chunks NULL, nchunks the
 * count). -ENOENT, -EISDIR (size of a directory), -EINVAL (size of
 * anything else but a regular file), -EFBIG (over META_FILE_MAX), -ENOMEM.
 */
int meta_setattr(struct meta *m, uint64_t ino, unsigned mask, const struct meta_inode *attr,
		 struct meta_inode *out);

/*
 * Replaces a regular file's content description: its size and its whole
 * chunk map (n entries of chunks, sorted by idx, each slot once, every slot
 * inside size, each len at most META_CHUNK_SIZE; copied). Sets mtime to
 * *mtime (the time of the write; now when NULL) and ctime to now. The chunks
 * must be stored already. out as for meta_setattr. -ENOENT, -EISDIR, -EINVAL
 * (not a regular file, chunks NULL with n, or a map out of order), -EFBIG
 * (size over META_FILE_MAX, or a slot past size), -ENOMEM.
 */
int meta_set_content(struct meta *m, uint64_t ino, uint64_t size, const struct timespec *mtime,
		     const struct meta_chunk *chunks, uint32_t n, struct meta_inode *out);

/* meta_set_content of several files in one transaction, each item's result
 * in its rc; items (and what they point at) stay the caller's. Returns 0 when
 * the transaction committed (items that failed on their own, with -ENOENT,
 * -EISDIR, -EINVAL or -EFBIG, are left out of it), -EINVAL before starting
 * when an item has n slots but no chunks, or the error that ended it (no
 * item was committed). */
struct meta_content {
	uint64_t ino, size;
	const struct timespec *mtime; /* NULL: now */
	const struct meta_chunk *chunks;
	uint32_t n;
	/* not 0: the last fsync journal record (fs/daemon/journal.c) this
	 * content includes, kept with it in the same transaction (meta_folded) */
	uint64_t jseq;
	int rc;
};
int meta_set_contents(struct meta *m, struct meta_content *items, size_t n);

/*
 * folded.c: for each inode, the seq of the last fsync journal record its
 * committed content includes (a local table, `folded`): a record of that
 * seq or below is older than the namespace and is not replayed
 * (docs/FORMAT.md, "Fsync journal"). get: 0 with *seq, or -ENOENT (none:
 * *seq 0), -errno. max: the highest seq kept (0 for none). prune: drops
 * the rows below seq `below`. 0 or -errno.
 */
int meta_folded_get(struct meta *m, uint64_t ino, uint64_t *seq);
int meta_folded_max(struct meta *m, uint64_t *max);
int meta_folded_prune(struct meta *m, uint64_t below);

/* The bytes the node's files hold reserved by fallocate and not written yet
 * (their reserved slots): statfs counts them as used. 0 or -errno. */
int meta_reserved(struct meta *m, uint64_t *bytes);

/*
 * Lists directory ino from position pos (0 for the start), calling fn for each
 * live entry in position order with its name (NUL-terminated, valid during
 * the call only), inode, type (S_IFMT bits) and the position to resume after
 * it. "." and ".." are not listed. fn returns non-zero to stop (that value is
 * returned). Positions are stable: each is derived from the entry's name.
 * The listing is one read snapshot. -ENOENT, -ENOTDIR.
 */
typedef int (*meta_readdir_fn)(void *arg, const char *name, uint64_t ino, uint32_t type,
			       uint64_t next_pos);
int meta_readdir(struct meta *m, uint64_t ino, uint64_t pos, meta_readdir_fn fn, void *arg);

#define META_XATTR_CREATE 1  /* XATTR_CREATE */
#define META_XATTR_REPLACE 2 /* XATTR_REPLACE */
/*
 * Extended attributes of ino, by NUL-terminated name (1 to
 * META_XATTR_NAME_MAX bytes, else -ERANGE); every call returns -ENOENT when
 * ino does not exist. set stores a copy of size bytes of value (NULL is fine
 * when size is 0) and moves ino's ctime; with META_XATTR_CREATE it fails
 * with -EEXIST when the name is set, with META_XATTR_REPLACE with -ENODATA
 * when it is not; both flags: -EINVAL; size over META_XATTR_SIZE_MAX: -E2BIG.
 */
int meta_setxattr(struct meta *m, uint64_t ino, const char *name, const void *value, size_t size,
		  int flags);
/* Copies the value into buf (cap bytes, the caller's) and returns its length;
 * with cap 0, returns the length only. -ENODATA (not set), -ERANGE when cap
 * is too small. */
ssize_t meta_getxattr(struct meta *m, uint64_t ino, const char *name, void *buf, size_t cap);
/* Writes the names that are set into buf (cap bytes), each NUL-terminated;
 * returns the bytes needed (cap 0 asks for the size only). -ERANGE when cap
 * is too small. */
ssize_t meta_listxattr(struct meta *m, uint64_t ino, char *buf, size_t cap);
/* Removes name (leaving a tombstone) and moves ino's ctime. -ENODATA when
 * not set. */
int meta_removexattr(struct meta *m, uint64_t ino, const char *name);

/* Calls fn for every inode, with its chunk map and nlink, over one read
 * snapshot; in is valid during the call only. A damaged record is logged and
 * skipped. fn returns non-zero to stop (that value is returned). Returns 0
 * or -errno. */
typedef int (*meta_inode_fn)(void *arg, const struct meta_inode *in);
int meta_scan_inodes(struct meta *m, meta_inode_fn fn, void *arg);

struct meta_stats {
	uint64_t inodes;
	uint64_t entries;    /* live directory entries */
	uint64_t tombstones; /* removed entries and xattrs kept for replication */
	uint64_t map_bytes;  /* size of the LMDB file in use */
};
/* Fills *st over one read snapshot (a count LMDB cannot give reads 0).
 * Returns 0, or -errno when no transaction could start. */
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

/* From now on (on) every local change is also appended to the outbox (a
 * local LMDB table, written in the change's own transaction) for
 * meta_outbox_read(); off stops it. Not synchronised: call it before other
 * threads change the namespace. */
void meta_set_replication(struct meta *m, bool on);

/*
 * Calls fn for the outbox records after seq after (in order), at most max of
 * them, over one read snapshot; fn gets the record's seq and its wire bytes
 * (valid during the call only). fn returns 0 to go on, a positive value to
 * stop (that record not counted) or a -errno that is returned. Returns the
 * number of records visited, or -errno.
 */
typedef int (*meta_outbox_fn)(void *arg, uint64_t seq, const uint8_t *rec, size_t len);
int meta_outbox_read(struct meta *m, uint64_t after, int max, meta_outbox_fn fn, void *arg);
/* Removes the outbox records up to and including seq upto (every peer has
 * them). Returns 0 or -errno. */
int meta_outbox_trim(struct meta *m, uint64_t upto);
/* The last outbox seq used in *last, and the number of records waiting in
 * *pending (0 when LMDB cannot say). */
void meta_outbox_state(struct meta *m, uint64_t *last, uint64_t *pending);
/* A small local value kept with the namespace, never replicated (e.g. a
 * peer's acknowledged outbox seq), under a NUL-terminated name. get returns
 * -ENOENT when unset (a value of the wrong size reads as 0); put returns
 * -EINVAL when name is over 200 bytes. */
int meta_state_get(struct meta *m, const char *name, uint64_t *v);
int meta_state_put(struct meta *m, const char *name, uint64_t v);

/* What applying a record changed, for the caller's cache invalidation. */
struct meta_change {
	enum meta_table table;
	uint64_t ino;	 /* the inode changed (inodes, xattrs), or the entry's child */
	uint64_t parent; /* entries: the directory */
	char name[META_NAME_MAX + 1]; /* entries: the name */
	uint64_t old_child; /* entries: the inode the name named before, or 0 */
	/* a conflict copy (or a conflict name) was made: its directory (0:
	 * none), name and inode (docs/REPLICATION.md, "Conflict copies") */
	uint64_t conflict_parent, conflict_ino;
	char conflict_name[META_NAME_MAX + 1];
};

/*
 * Applies one wire record from a peer under the last-writer-wins rule: it is
 * written when its version is newer than the local record's (or there is
 * none), and the local tables derived from entries (link counts, parents,
 * orphans) follow. When the two were written beside each other (a file's
 * content changed on both nodes; one name bound to two objects), the loser,
 * whichever side it is, is kept as NAME.caskfs-conflict-NODE-STAMP beside
 * it and *chg says so (conflict_*): then 1 is returned even when the record
 * itself was older. One object renamed on two nodes ends under the later
 * name (the other name becomes a tombstone, named in conflict_*), and a
 * change of attributes made beside an edit of a file's content merges with
 * it (docs/REPLICATION.md, "Renames made apart"). An entry whose
 * directory does not exist here is kept under /lost+found instead, and so
 * are the entries here of a directory removed there (docs/REPLICATION.md). rec (len bytes) is untrusted and borrowed;
 * every length in it is checked. Returns 1 when applied (*chg filled), 0
 * when the local record was as new or newer, -EBADMSG for a malformed
 * record, or another -errno (the record is then not applied).
 */
int meta_apply(struct meta *m, const uint8_t *rec, size_t len, struct meta_change *chg);

/* Conflict copies and names carry this in their inode number (with node 0):
 * no node hands it out (docs/FORMAT.md). */
#define META_CONFLICT_INO_BIT (1ull << 47)
/* Calls fn for every live entry kept by a conflict (its name holds
 * ".caskfs-conflict-"), over one read snapshot: its directory, name (valid
 * during the call) and inode. fn returns non-zero to stop (returned). */
typedef int (*meta_conflict_fn)(void *arg, uint64_t parent, const char *name, uint64_t ino);
int meta_conflicts(struct meta *m, meta_conflict_fn fn, void *arg);
/* How many there are (counted again only after the namespace changed). */
uint64_t meta_conflict_count(struct meta *m);
/* The path of directory dir from the root ("" for the root, "/a/b"), into
 * buf (cap bytes). -ENOENT (no name leads there), -ENAMETOOLONG, -ELOOP. */
int meta_dir_path(struct meta *m, uint64_t dir, char *buf, size_t cap);

/*
 * The hash tree over the replicated records, shaped like the store's (16-ary,
 * STORE_TREE_DEPTH levels, sums of leaves mod 2^64): a record's bucket is the
 * top 16 bits of xxh3-64 of (table byte, key), its leaf the xxh3-64 of
 * (table byte, key, value). Equal namespaces have equal roots. Inodes listed
 * as orphans here, and their xattrs, are left out.
 *
 * children: the node at path (depth nibbles, each 0..15; NULL is fine for
 * depth 0) in *self (may be NULL) and its 16 children, 0 <= depth <
 * STORE_TREE_DEPTH. The tree is built on the first call after a change.
 * -EINVAL (depth or a nibble out of range), -ENOMEM, -errno.
 */
int meta_tree_children(struct meta *m, const uint8_t *path, int depth,
		       struct store_tree_node *self, struct store_tree_node children[16]);
/* Calls fn for every record of the leaf bucket at path (STORE_TREE_DEPTH
 * nibbles), tombstones included: tk is the table byte followed by the key
 * (valid during the call only), v its version, leaf its hash. fn returns
 * non-zero to stop (that value is returned). -EINVAL (a nibble over 15),
 * -ENOMEM, -errno. */
typedef int (*meta_bucket_fn)(void *arg, const uint8_t *tk, size_t tklen,
			      const struct store_version *v, uint64_t leaf, bool deleted);
int meta_tree_bucket(struct meta *m, const uint8_t path[STORE_TREE_DEPTH], meta_bucket_fn fn,
		     void *arg);
/*
 * fsck of the namespace: link counts and subdirectory counts against the live
 * entries, entries naming missing inodes, inodes no name leads to that are not
 * known orphans, the local index of names against the entries, one rename
 * left under two names. fn (may be NULL) gets the inode and one line per problem
 * (valid during the call only). With repair, counts are rewritten and such
 * inodes are linked into /lost+found as inode-<16 hex digits of ino>, all in
 * one write transaction. *problems and *fixed get the counts. Returns 0 or
 * -errno (-ENOMEM); with repair, an error means nothing was repaired.
 */
typedef void (*meta_problem_fn)(void *arg, uint64_t ino, const char *what);
int meta_verify(struct meta *m, bool repair, meta_problem_fn fn, void *arg, uint64_t *problems,
		uint64_t *fixed);

/* The wire record of the record named by tk (table byte + key, tklen bytes,
 * as meta_tree_bucket gives it): *rec is malloc'd (the caller frees it) and
 * *len its length; *rec is NULL on error. -ENOENT when there is none,
 * -EINVAL (an unknown table byte, or tklen out of 2..272), -ENOMEM. */
int meta_get_record(struct meta *m, const uint8_t *tk, size_t tklen, uint8_t **rec, size_t *len);

#endif
