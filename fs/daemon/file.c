/*
 * file - the state of a file between its writes and their commit (writes:
 * file_io.c; the commit: file_commit.c), one per inode in use, found by
 * inode number (inotab.c). The kernel sends no OPEN, FLUSH or RELEASE for
 * files (docs/DESIGN-NOTES.md), so a state is not tied to descriptors: a
 * request takes a reference for as long as it runs, and a state whose
 * writes are not committed outlives its references until a commit (a
 * rename or truncation, FORGET, the unmount, the committer once the file is
 * left alone, or an fsync the journal cannot take: file_sync.c). A kernel without that support gets handles from
 * fs_op_open and fs_op_create, whose RELEASE commits too.
 */
#include <errno.h>
#include <stdio.h> /* SEEK_DATA, SEEK_HOLE */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h> /* UTIME_OMIT */
#include <time.h>

#include "file_i.h"

int fs_file_load(struct fs *fs, struct fs_file *f)
{
	struct meta_inode in = { 0 };
	int rc = meta_getattr(fs->meta, f->node.ino, true, &in);

	if (rc)
		return rc;
	f->size = in.size;
	f->map = (struct meta_map){ in.chunks, in.nchunks, in.nchunks };
	in.chunks = NULL;
	meta_inode_release(&in);
	return 0;
}

/* A write or a shared range changed f (locked): remember when, for stat and
 * for the committer. */
void fs_file_touch(struct fs_file *f)
{
	int64_t ms = fs_now_ms();

	if (!f->changed)
		f->dirty_ms = ms;
	f->changed = true;
	f->jclean = false;
	f->write_ms = ms;
	f->written = true;
	clock_gettime(CLOCK_REALTIME, &f->mtime);
}

/* With files_mu held. */
static struct fs_file *find_locked(struct fs *fs, uint64_t ino)
{
	struct fs_ino_node *n = fs_ino_find(&fs->files, ino);

	return n ? fs_container_of(n, struct fs_file, node) : NULL;
}

struct fs_file *fs_file_next_locked(struct fs *fs, struct fs_file *f)
{
	struct fs_ino_node *n = fs_ino_next(&fs->files, f ? &f->node : NULL);

	return n ? fs_container_of(n, struct fs_file, node) : NULL;
}

bool fs_file_peek(struct fs *fs, uint64_t ino, uint64_t *size, uint64_t *allocated,
		  struct timespec *mtime)
{
	struct fs_file *f;
	bool found;

	pthread_mutex_lock(&fs->files_mu);
	f = find_locked(fs, ino);
	found = f != NULL;
	if (f) {
		pthread_mutex_lock(&f->mu);
		*size = f->size;
		*allocated = meta_map_allocated(f->map.v, f->map.n);
		for (uint32_t i = 0; i < f->ndirty; i++)
			if (!meta_map_find(f->map.v, f->map.n, f->dirty[i].idx))
				*allocated += (f->dirty[i].len + META_BLOCK - 1) / META_BLOCK * META_BLOCK;
		if (f->written)
			*mtime = f->mtime;
		else
			mtime->tv_nsec = UTIME_OMIT;
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_unlock(&fs->files_mu);
	return found;
}

int fs_file_setattr(struct fs *fs, struct fs_file *f, unsigned mask,
		    const struct meta_inode *attr)
{
	struct meta_inode now = { 0 };
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = meta_setattr(fs->meta, f->node.ino, mask, attr, &now);
	if (rc == 0 && (mask & META_SET_MTIME)) {
		/* a commit still to come writes this mtime, not its write's */
		f->mtime = now.mtime;
		f->written = f->changed;
	}
	pthread_mutex_unlock(&f->mu);
	meta_inode_release(&now);
	return rc;
}

int fs_file_get(struct fs *fs, uint64_t ino, struct fs_file **out)
{
	struct fs_file *f;
	int rc = 0;

	pthread_mutex_lock(&fs->files_mu);
	f = find_locked(fs, ino);
	if (!f) {
		f = calloc(1, sizeof(*f));
		if (!f) {
			rc = -ENOMEM;
		} else {
			f->node.ino = ino;
			pthread_mutex_init(&f->mu, NULL);
			rc = fs_file_load(fs, f);
			if (rc == 0)
				rc = fs_ino_insert(&fs->files, &f->node);
			if (rc) {
				meta_map_release(&f->map);
				free(f);
			}
		}
	}
	if (rc == 0) {
		f->refs++;
		*out = f;
	}
	pthread_mutex_unlock(&fs->files_mu);
	return rc;
}

struct fs_file *fs_file_find(struct fs *fs, uint64_t ino)
{
	struct fs_file *f;

	pthread_mutex_lock(&fs->files_mu);
	f = find_locked(fs, ino);
	if (f)
		f->refs++;
	pthread_mutex_unlock(&fs->files_mu);
	return f;
}

void fs_file_dirty_free(struct fs *fs, struct fs_file *f, struct fs_dirty *d)
{
	munmap(d->buf, META_CHUNK_SIZE);
	atomic_fetch_sub(&fs->dirty_chunks, 1);
	*d = f->dirty[--f->ndirty];
}

/* Unlinks and frees f; files_mu held, no reference left. */
void fs_file_drop_locked(struct fs *fs, struct fs_file *f)
{
	fs_ino_remove(&fs->files, &f->node);
	while (f->ndirty)
		fs_file_dirty_free(fs, f, &f->dirty[f->ndirty - 1]);
	free(f->dirty);
	meta_map_release(&f->map);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

bool fs_file_put(struct fs *fs, struct fs_file *f)
{
	bool gone = false;

	pthread_mutex_lock(&fs->files_mu);
	if (--f->refs == 0) {
		pthread_mutex_lock(&f->mu);
		gone = !f->changed && f->ndirty == 0 && f->error == 0;
		pthread_mutex_unlock(&f->mu);
		if (gone)
			fs_file_drop_locked(fs, f);
	}
	pthread_mutex_unlock(&fs->files_mu);
	return gone;
}
