/*
 * journal_i.h - the fsync journal (journal.c): two preallocated files,
 * DATA_DIR/journal.0 and journal.1, that an fsync appends one record to and
 * flushes once, instead of storing a chunk and syncing the log and LMDB. A
 * record holds what a commit of the file would write (size, mtime, chunk
 * map) and, for each slot still in a buffer, only the bytes written since
 * the file's previous record. The committer commits the file later as
 * usual; the commit notes the record's seq in the namespace (meta_folded),
 * and the mount's replay (journal_replay.c) applies the records newer than
 * that. Format: docs/FORMAT.md ("Fsync journal"). Thread-safe.
 */
#ifndef CASKFS_FS_DAEMON_JOURNAL_I_H
#define CASKFS_FS_DAEMON_JOURNAL_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FS_JOURNAL_FILE_SIZE (4u << 20) /* each of the two files */
#define FS_JOURNAL_DATA 4096		/* records start here; the header before */
#define FS_JOURNAL_HEAD 64		/* a record's fixed fields */
#define FS_JOURNAL_SLOT 24		/* a map entry: le32 idx, le32 len, key */
#define FS_JOURNAL_DIRTY 24		/* a buffered slot, before its bytes */
/* A record's new bytes at most: past it, a commit costs about as much */
#define FS_JOURNAL_BYTES_MAX (256u << 10)
/* The largest record: its bytes, 16 buffered slots and a map of 4,096 slots */
#define FS_JOURNAL_RECORD_MAX                                                                      \
	(FS_JOURNAL_HEAD + 4096 * FS_JOURNAL_SLOT + 16 * (FS_JOURNAL_DIRTY + 8) +                  \
	 FS_JOURNAL_BYTES_MAX + 8)

struct fs_journal;

/* A record as read back (pointers into the file's bytes). */
struct fs_journal_rec {
	uint64_t seq, ino, size;
	struct timespec mtime;
	bool has_mtime;
	uint32_t nmap, ndirty;
	const uint8_t *map;   /* nmap entries of FS_JOURNAL_SLOT bytes */
	const uint8_t *dirty; /* ndirty buffered slots, each checked */
	size_t dirty_len;
};

/* One buffered slot of a record, taken from rec->dirty at *pos (which it
 * moves on): its index, the slot's valid length, the seq of the record its
 * run of records began with (0: this one), and bytes n at offset off. */
struct fs_journal_dirty {
	uint32_t idx, len, off, n;
	uint64_t chain;
	const uint8_t *bytes;
};
void fs_journal_dirty_next(const struct fs_journal_rec *rec, size_t *pos,
			   struct fs_journal_dirty *out);

/*
 * Opens (creating and zero-filling them when missing or short) the two
 * journal files of DATA_DIR dir. The records found valid are kept for
 * fs_journal_scan until fs_journal_reset. *out is the caller's
 * (fs_journal_close). -errno of open/read/write, logged with the path.
 */
int fs_journal_open(const char *dir, struct fs_journal **out);
void fs_journal_close(struct fs_journal *j);
/* Calls fn for every valid record, in seq order; fn's non-zero ends it. */
typedef int (*fs_journal_fn)(void *arg, const struct fs_journal_rec *rec);
int fs_journal_scan(struct fs_journal *j, fs_journal_fn fn, void *arg);
/* fs_journal_scan of one journal file's n bytes (for the fuzzer: nothing
 * is read but bytes, which stay the caller's). */
int fs_journal_parse(const uint8_t *bytes, size_t n, fs_journal_fn fn, void *arg);
/* The highest seq met in the files (records and headers). */
uint64_t fs_journal_max_seq(struct fs_journal *j);
/* Empties both files durably (after a replay made their records obsolete);
 * the next record's seq is above next_floor. 0 or -errno. */
int fs_journal_reset(struct fs_journal *j, uint64_t next_floor);

/*
 * Appends a record built by the caller in buf (len bytes, a multiple of 8,
 * room for the checksum included: fs_journal_encode_head first): the
 * journal gives it its file id, seq and checksum and writes it; *seq gets
 * the seq. Not durable until fs_journal_sync(seq). -ENOSPC when neither
 * file has room (the committer empties the older one), -EIO.
 */
int fs_journal_append(struct fs_journal *j, uint8_t *buf, size_t len, uint64_t *seq);
/* Makes the records up to seq durable: one fdatasync shared by every
 * caller waiting meanwhile. 0 or -errno. */
int fs_journal_sync(struct fs_journal *j, uint64_t seq);
/* Fills a record's fixed fields in buf (seq, file id and checksum are the
 * journal's). */
void fs_journal_encode_head(uint8_t *buf, size_t len, uint64_t ino, uint64_t size,
			    const struct timespec *mtime, uint32_t nmap, uint32_t ndirty);

/*
 * For the committer. fs_journal_rotate_due: the active file is past half,
 * or the other holds records (then fs_journal_rotate switches when the
 * other is empty and returns the seq from which records are in the active
 * file; fs_journal_retire empties the other, once every record it holds is
 * obsolete, i.e. committed and synced: 0 or -errno).
 */
bool fs_journal_rotate_due(struct fs_journal *j);
uint64_t fs_journal_rotate(struct fs_journal *j);
int fs_journal_retire(struct fs_journal *j);

#endif
