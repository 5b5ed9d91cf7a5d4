/*
 * file_i.h - between the three files of the file states: file.c (a state's
 * life: found, created, referenced, dropped), file_commit.c (its writes made
 * durable) and file_io.c (reads and writes through it). Calls go one way,
 * file_io.c -> file_commit.c -> file.c. Every function here takes f->mu held
 * unless it says otherwise; what the rest of the daemon calls is in
 * daemon_i.h.
 */
#ifndef CASKFS_FS_DAEMON_FILE_I_H
#define CASKFS_FS_DAEMON_FILE_I_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon_i.h"

/* ---- file.c ---- */

/* Loads f's size and chunk map from the namespace (f->map empty): 0 or the
 * error of meta_getattr. */
int fs_file_load(struct fs *fs, struct fs_file *f);
/* A write or a shared range changed f: remember when, for stat and for the
 * committer. */
void fs_file_touch(struct fs_file *f);
/* Bytes [lo, hi) of d were written: the next journal record carries them. */
static inline void fs_dirty_mark(struct fs_dirty *d, uint32_t lo, uint32_t hi)
{
	if (d->jhi <= d->jlo) {
		d->jlo = lo;
		d->jhi = hi;
		return;
	}
	if (lo < d->jlo)
		d->jlo = lo;
	if (hi > d->jhi)
		d->jhi = hi;
}
/* Frees the buffer of d, one of f's dirty chunks, and puts f's last dirty
 * chunk in its place. */
void fs_file_dirty_free(struct fs *fs, struct fs_file *f, struct fs_dirty *d);
/* Unlinks and frees f: fs->files_mu held (f->mu not), no reference left. */
void fs_file_drop_locked(struct fs *fs, struct fs_file *f);

/* ---- file_io.c ---- */

/* A new buffer for slot idx of f (which has none), holding the slot's bytes
 * as the map and the size give them; no limit on buffers is applied. NULL
 * with *err: -ENOMEM, or the error of reading the slot's chunk. */
struct fs_dirty *fs_file_dirty_load(struct fs *fs, struct fs_file *f, uint32_t idx, int *err);

/* ---- file_commit.c ---- */

/* Stores the dirty chunk d of f and points the map at it; d's buffer is
 * freed and d is reused for the last dirty chunk. 0 or the error (also kept
 * in f->error) of fs_chunk_put, -ENOMEM. */
int fs_file_store_dirty(struct fs *fs, struct fs_file *f, struct fs_dirty *d);
/* fs_file_store_dirty for every dirty chunk of f. */
int fs_file_store_all(struct fs *fs, struct fs_file *f);
/* Stores what is buffered and commits size, map and mtime; a failure is
 * kept in f->error, and with report a failure kept from earlier is returned
 * (once). */
int fs_file_commit_locked(struct fs *fs, struct fs_file *f, bool report);

#endif
