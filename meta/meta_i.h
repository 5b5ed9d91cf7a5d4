/*
 * meta_i.h - what the files of meta/ share: the struct behind struct meta,
 * the transaction runner (txn.c) and the table helpers (table.c) every
 * operation is built from, and the few helpers one mechanism lends another.
 * Calls go one way, from the public operations down to these; nothing here
 * calls up. Every helper that takes an MDB_txn works inside it and leaves
 * committing to meta_txn_write(). Tables and records: docs/FORMAT.md
 * ("Namespace").
 */
#ifndef CASKFS_META_I_H
#define CASKFS_META_I_H

#include <lmdb.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "meta.h"
#include "record_i.h"

/* Inode numbers are node_id << META_INO_NODE_SHIFT | counter. */
/* The node bit of a record every node derives alike from others (a rename
 * that lost, rebind.c; a merged inode record, lineage.c): its version is
 * (stamp, node | this) of the record it comes from, so it is newer than
 * that record and older than any later write (whose stamp is higher). Node
 * ids of writers are below it (store.h). */
#define META_DERIVED_NODE 0x80000000u
#define META_INO_NODE_SHIFT 48

struct meta_tree;

struct meta {
	MDB_env *env;
	MDB_dbi inodes;	 /* be64 ino -> inode record (replicated) */
	MDB_dbi entries; /* be64 parent, be64 pos, name -> dirent record (replicated) */
	MDB_dbi xattrs;	 /* be64 ino, name -> xattr record (replicated) */
	MDB_dbi counts;	 /* be64 ino -> le32 links, le32 subdirs (local) */
	MDB_dbi parents; /* be64 dir ino -> be64 parent ino (local) */
	MDB_dbi orphans; /* be64 ino -> "" : no links left, maybe still open (local) */
	MDB_dbi state;	 /* "next_ino" -> le64 (local) */
	MDB_dbi outbox;	 /* be64 seq -> a replicated record to push to the peers (local) */
	MDB_dbi names;	 /* be64 child, entry key -> "" : the live entries naming child (local) */
	MDB_dbi folded;	 /* be64 ino -> le64 fsync journal seq its content holds (local) */
	uint32_t node;
	struct store_clock *clock;
	bool replicate; /* record every replicated write in the outbox */
	/* the last outbox key used; written under LMDB's writer lock */
	_Atomic uint64_t outbox_seq;
	/* Under LMDB's writer lock: inode numbers [ino_next, ino_end) are
	 * reserved in the state table ("next_ino" says ino_end), so creates
	 * take one without writing it; ino_reserved says the open write
	 * transaction moved the reservation (undone if it does not commit). */
	uint64_t ino_next, ino_end;
	bool ino_reserved;
	struct meta_tree *tree; /* protected by mtree.c's lock: built on demand */
	/* conflict.c: the count of conflict copies as of LMDB transaction
	 * conflicts_txn (counted again after a change) */
	_Atomic uint64_t conflicts, conflicts_txn;
};

/* ---- txn.c: transactions ---- */

/* The body of a write transaction: returns 0 to commit, else a -errno that
 * aborts it. */
typedef int (*meta_txn_fn)(struct meta *m, MDB_txn *txn, void *arg);

/* Runs fn(m, txn, arg) in a new write transaction and commits it when fn
 * returns 0. Returns fn's error, or the commit's (-ENOSPC when the map is
 * full). A transaction that fails after moving the inode reservation makes
 * the next create read it again. */
int meta_txn_write(struct meta *m, meta_txn_fn fn, void *arg);

/* Begins a read-only transaction in *txn; the caller ends it with
 * mdb_txn_abort(). Returns 0 or -errno. */
int meta_txn_read(struct meta *m, MDB_txn **txn);

/* ---- table.c: the table helpers ---- */

/* The current time (CLOCK_REALTIME), for atime, mtime and ctime. */
struct timespec meta_now(void);

/* A new version (stamp from the node's clock, this node) for a record. */
struct store_version meta_version_new(struct meta *m);

/* Checks a name for an entry: -EINVAL when empty, ".", ".." or holding '/',
 * -ENAMETOOLONG over META_NAME_MAX bytes, else 0. */
int meta_name_check(const char *name);

/* The LMDB table of a replicated table (already checked by the caller:
 * anything that is not inodes or entries gets xattrs). */
MDB_dbi meta_table_dbi(struct meta *m, enum meta_table table);

/* The tables keyed by a be64 number (inodes, counts, parents, orphans).
 * get points val into the map (valid until the transaction ends) and returns
 * 0, -ENOENT or -errno; put copies vlen bytes of v; del of an absent key is
 * not an error. */
int meta_u64_get(MDB_txn *txn, MDB_dbi dbi, uint64_t k64, MDB_val *val);
int meta_u64_put(MDB_txn *txn, MDB_dbi dbi, uint64_t k64, const void *v, size_t vlen);
int meta_u64_del(MDB_txn *txn, MDB_dbi dbi, uint64_t k64);

/* Reads inode ino into *out (with its chunk grid when chunks); release it
 * with meta_inode_release(). nlink is not filled (meta_nlink_fill). -ENOENT,
 * -EBADMSG (a damaged record, logged), -ENOMEM. */
int meta_inode_get(struct meta *m, MDB_txn *txn, uint64_t ino, bool chunks, struct meta_inode *out);

/* Writes in under a new version (set in in->version) and, when replicating,
 * into the outbox. in stays the caller's. -ENOMEM, -ENOSPC, -errno. */
int meta_inode_put(struct meta *m, MDB_txn *txn, struct meta_inode *in);
/* Before the inode record under key is replaced by now (NULL: deleted):
 * moves the node's count of reserved bytes (state "reserved") by the
 * difference. 0 or -errno. */
int meta_reserved_move(struct meta *m, MDB_txn *txn, const MDB_val *key, const MDB_val *now);

/* Reads directory ino (its inode without chunks into *dir, nothing left to
 * release): -ENOTDIR when ino is something else, -ENOENT when absent. */
int meta_dir_get(struct meta *m, MDB_txn *txn, uint64_t ino, struct meta_inode *dir);

/* Creates directory inode ino (S_IFDIR | perm, every time now) unless it
 * exists: the directories every node has (/ and /lost+found). *created says
 * whether it was written now. Returns 0 or the errors of meta_inode_get/put
 * (but -ENOENT). */
int meta_dir_ensure(struct meta *m, MDB_txn *txn, uint64_t ino, uint32_t perm, bool *created);

/* Moves directory dir's mtime and ctime to t (an entry in it was added or
 * removed). -ENOENT when dir is gone. */
int meta_dir_touch(struct meta *m, MDB_txn *txn, uint64_t dir, struct timespec t);

/* Reads the entry parent/name into *d: 0 when live, -ENOENT when absent or
 * removed (a tombstone), -EBADMSG when damaged. */
int meta_entry_get(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name,
		   struct meta_dirent *d);

/* Writes parent/name -> child of type (S_IFMT bits) under a new version, or a
 * tombstone when child is 0, and when replicating into the outbox. The local
 * tables derived from entries are the caller's to update (but names). */
int meta_entry_put(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t child,
		   uint32_t type);
/* The same for an entry that continues the binding origin (a rename: the
 * source entry's meta_dirent_binding; NULL: a new binding). */
int meta_entry_move(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name, uint64_t child,
		    uint32_t type, const struct store_version *origin);
/* The same at an entry key already made (be64 parent, be64 position, name). */
int meta_entry_put_key(struct meta *m, MDB_txn *txn, MDB_val *key, uint64_t child, uint32_t type,
		       const struct store_version *origin);
/* Every write of an entry record goes through here: the record val at key,
 * and the names table (child -> its live entries) after it. Not queued for
 * the peers. -EINVAL (a key too long), -errno. */
int meta_entry_store(struct meta *m, MDB_txn *txn, const MDB_val *key, const MDB_val *val);
/* Calls fn for every live entry naming child (the names table, in entry key
 * order: the same on every node with the same entries), with its entry key;
 * fn returns non-zero to stop (returned). 0 or -errno. */
typedef int (*meta_names_fn)(void *arg, const MDB_val *entry_key);
int meta_names_each(struct meta *m, MDB_txn *txn, uint64_t child, meta_names_fn fn, void *arg);
/* Builds the names table from the entries when it was never built (a
 * namespace written before it existed). 0 or -errno. */
int meta_names_build(struct meta *m, MDB_txn *txn);
/* Builds it again from the entries (fsck --repair). 0 or -errno. */
int meta_names_rebuild(struct meta *m, MDB_txn *txn);

/* The counts table: live entries naming ino (links) and its subdirectories.
 * get gives 0 and 0 for an inode without a record; add adds dl and ds and
 * tells the new link count in *links_out (may be NULL). -EBADMSG, -errno. */
int meta_count_get(struct meta *m, MDB_txn *txn, uint64_t ino, uint32_t *links, uint32_t *subdirs);
int meta_count_put(struct meta *m, MDB_txn *txn, uint64_t ino, uint32_t links, uint32_t subdirs);
int meta_count_add(struct meta *m, MDB_txn *txn, uint64_t ino, int dl, int ds, uint32_t *links_out);

/* The parents table: the directory that holds directory dir. get returns
 * -ENOENT when unknown, -EBADMSG when damaged. */
int meta_parent_get(struct meta *m, MDB_txn *txn, uint64_t dir, uint64_t *parent);
int meta_parent_put(struct meta *m, MDB_txn *txn, uint64_t dir, uint64_t parent);

/* The state table: a le64 under a name ("next_ino", a peer's acked seq).
 * read returns -ENOENT when unset, -EBADMSG when the value is not 8 bytes. */
int meta_state_read(struct meta *m, MDB_txn *txn, const char *name, uint64_t *v);
int meta_state_write(struct meta *m, MDB_txn *txn, const char *name, uint64_t v);

/* Sets in->nlink from the counts table (a directory: 2 + subdirectories
 * while it has a name, else 0). A damaged count reads as 0. */
void meta_nlink_fill(struct meta *m, MDB_txn *txn, struct meta_inode *in);

/* Drops one link of in (an entry naming it went): with none left it becomes
 * an orphan until forgotten, else its ctime moves to t. */
int meta_link_drop(struct meta *m, MDB_txn *txn, struct meta_inode *in, struct timespec t);

/* Accounts in the local tables for an entry of parent that now names child
 * of type (delta 1) or no longer does (delta -1): links, the parent's
 * subdirectories and the child's parent, and the orphans. */
int meta_entry_account(struct meta *m, MDB_txn *txn, uint64_t parent, uint64_t child, uint32_t type,
		       int delta);

/* Finds the live xattr name of ino: 0 with *val pointing at its value bytes
 * (valid until txn ends), -ENODATA when absent or removed, or -EBADMSG. */
int meta_xattr_find(struct meta *m, MDB_txn *txn, uint64_t ino, const char *name, MDB_val *val);
/* Writes xattr name of ino (a tombstone when remove), stamped now, and queues
 * it for the peers. No checks of flags: the caller's. */
int meta_xattr_write(struct meta *m, MDB_txn *txn, uint64_t ino, const char *name,
		     const void *value, size_t size, bool remove);

/* When replicating, appends the replicated record (table, key, value) to the
 * outbox under the next seq; else does nothing. -ENOSPC, -errno. */
int meta_outbox_add(struct meta *m, MDB_txn *txn, enum meta_table table, const MDB_val *key,
		    const MDB_val *val);

/* ---- lent by one mechanism to another ---- */

/* dir.c: 0 when directory ino has no live entry, -ENOTEMPTY when it has. */
int meta_dir_empty(struct meta *m, MDB_txn *txn, uint64_t ino);

/* remove.c: deletes the records of an inode no name leads to: the inode,
 * its xattrs, its counters and its orphans mark. */
int meta_orphan_purge(struct meta *m, MDB_txn *txn, uint64_t ino);

/* lostfound.c: /lost+found, where the entries of a directory removed
 * elsewhere are kept (docs/REPLICATION.md). ensure creates it (inode 2 and
 * its entry in /) when absent; rescue links the live entry parent/name
 * (naming d) into it; rescue_children moves every live entry of dir into it
 * and leaves a tombstone where each was. All are local changes, replicated
 * like any other. */
int meta_lost_found_ensure(struct meta *m, MDB_txn *txn);
int meta_lost_found_rescue(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name,
			   const struct meta_dirent *d);
int meta_lost_found_rescue_children(struct meta *m, MDB_txn *txn, uint64_t dir);

/* lineage.c: the lineage of a regular file's record in->ino about to be
 * written as buf (len bytes, its encoding, lineage trailer last): a change
 * of content against the stored record starts or extends a run; the
 * trailer of buf and in->lineage are set. Other types: nothing. */
void meta_lineage_stamp(struct meta *m, MDB_txn *txn, struct meta_inode *in, uint8_t *buf,
			size_t len);
/* Whether two encoded inode records hold the same content (size, chunk map). */
bool meta_content_same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* Two encoded records of one inode (cur, the local one, and in, a peer's)
 * where one has the later version and the other the later content (a
 * change of attributes, or a rename's ctime, made beside an edit): *out
 * gets the record that keeps both, the attributes of the one and the
 * content (size, mtime, chunk map, lineage) of the other, under the first's
 * version with META_DERIVED_NODE (malloc'd, *outlen bytes). With the same
 * version and two contents (two such merges), *out is a copy of the one
 * with the later content. Returns 1 then (*in_content says whose content
 * it is), 0 when the later record is simply the later one (or they are not
 * both regular files of version 2 with a lineage), -ENOMEM. */
int meta_inode_merge(const MDB_val *cur, const MDB_val *in, uint8_t **out, size_t *outlen,
		     bool *in_content);
/* Whether l carries a lineage (records written before it was kept do not). */
bool meta_lineage_known(const struct meta_lineage *l);
/* Whether content x is in the history of content w (the same, an earlier
 * state of w's run, or of one of the two runs before): replacing x by w
 * then loses nothing. */
bool meta_lineage_includes(const struct meta_lineage *w, const struct meta_lineage *x);

/* conflict.c, called by apply.c inside its transaction: an inode record
 * from a peer (in) met the local one (cur, in the map: call before writing
 * over it), in_wins saying which wins; a file's content written beside the
 * other's is kept as a conflict copy. The same for a live entry: two
 * bindings of parent/name to two objects written beside each other keep the
 * loser under a conflict name. Both return 1 when something was made (chg's
 * conflict_* set), 0, or -errno. */
int meta_conflict_inode(struct meta *m, MDB_txn *txn, uint64_t ino, const MDB_val *cur,
			const MDB_val *in, bool in_wins, struct meta_change *chg);
int meta_conflict_entry(struct meta *m, MDB_txn *txn, uint64_t parent, const char *name,
			const struct meta_dirent *local, const struct meta_dirent *in, bool in_wins,
			struct meta_change *chg);

/* rebind.c: the entry record nd just stored at key from a peer, live, not
 * yet counted: every other live entry of nd->child with the same binding
 * (a rename of the same name made apart) that is older becomes a
 * tombstone, counted out (chg's conflict_* name one that went); when one
 * is newer, nd itself becomes the tombstone and 1 is returned (nd is not
 * to be counted). Else 0, or -errno. */
int meta_rebind_settle(struct meta *m, MDB_txn *txn, const MDB_val *key,
		       const struct meta_dirent *nd, struct meta_change *chg);

/* mtree.c: frees m's hash tree (under the tree's lock). */
void meta_tree_free(struct meta *m);

#endif
