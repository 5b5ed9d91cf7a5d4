/*
 * file - what a file holds between its writes and their commit. Writes land
 * in 1 MiB chunk buffers; a buffer that fills is stored at once as a chunk
 * (so a large sequential write holds one buffer), and a commit stores the
 * rest and then writes size, chunk grid and mtime in one namespace
 * transaction: chunks before the metadata that names them. A reader of the
 * file sees the old content or the new, never a mix, and reads on this mount
 * go through the same state, so they see writes not committed yet.
 *
 * The kernel sends no OPEN, FLUSH or RELEASE for files (docs/DESIGN-NOTES.md),
 * so a state is not tied to descriptors: requests take a reference for as
 * long as they run, and a state whose writes are not committed outlives its
 * references until a commit: fsync, a rename or truncation of the file, the
 * kernel forgetting the inode, the unmount, or the committer thread
 * (fs_file_commit_idle) once the file has been left alone for a moment.
 * (A kernel without that support gets handles from fs_op_open and fs_op_create,
 * and their RELEASE commits too.)
 */
#include <errno.h>
#include <stdio.h> /* SEEK_DATA, SEEK_HOLE */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h> /* UTIME_OMIT */
#include <time.h>

#include "daemon_i.h"

/* Past this many dirty chunks, they are stored before taking more. */
#define MAX_DIRTY 16

/* Resizes f's grid to cover size (new slots holes, the last clipped). */
static int grid_fit(struct fs_file *f, uint64_t size)
{
	return meta_grid_fit(&f->grid, &f->ngrid, size);
}

static int load_state(struct fs *fs, struct fs_file *f)
{
	struct meta_inode in = { 0 };
	int rc = meta_getattr(fs->meta, f->node.ino, true, &in);

	if (rc)
		return rc;
	f->size = in.size;
	f->grid = in.chunks;
	f->ngrid = in.nchunks;
	in.chunks = NULL;
	meta_inode_release(&in);
	return grid_fit(f, f->size);
}

/* A write or a shared range changed f (locked): remember when, for stat and
 * for the committer. */
static void touch(struct fs_file *f)
{
	int64_t ms = fs_now_ms();

	if (!f->changed)
		f->dirty_ms = ms;
	f->changed = true;
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

bool fs_file_peek(struct fs *fs, uint64_t ino, uint64_t *size, struct timespec *mtime)
{
	struct fs_file *f;
	bool found;

	pthread_mutex_lock(&fs->files_mu);
	f = find_locked(fs, ino);
	found = f != NULL;
	if (f) {
		pthread_mutex_lock(&f->mu);
		*size = f->size;
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
			rc = load_state(fs, f);
			if (rc == 0)
				rc = fs_ino_insert(&fs->files, &f->node);
			if (rc) {
				free(f->grid);
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

/* Unlinks and frees f; files_mu held, no reference left. */
static void drop_locked(struct fs *fs, struct fs_file *f)
{
	fs_ino_remove(&fs->files, &f->node);
	for (uint32_t i = 0; i < f->ndirty; i++)
		free(f->dirty[i].buf);
	free(f->dirty);
	free(f->grid);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void fs_file_put(struct fs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&fs->files_mu);
	if (--f->refs == 0) {
		pthread_mutex_lock(&f->mu);
		bool clean = !f->changed && f->ndirty == 0 && f->error == 0;
		pthread_mutex_unlock(&f->mu);
		if (clean)
			drop_locked(fs, f);
	}
	pthread_mutex_unlock(&fs->files_mu);
}

static struct fs_dirty *dirty_find(struct fs_file *f, uint32_t idx)
{
	for (uint32_t i = 0; i < f->ndirty; i++)
		if (f->dirty[i].idx == idx)
			return &f->dirty[i];
	return NULL;
}

/* Reads chunk slot idx of the committed-or-stored grid into buf and returns the
 * slot's valid length within the file (bytes of it past the chunk's length are
 * zeroed; the buffer past the valid length is left as it is), or -errno. */
static ssize_t read_slot(struct fs *fs, struct fs_file *f, uint32_t idx, uint8_t *buf)
{
	uint64_t in_file = f->size - (uint64_t)idx * META_CHUNK_SIZE;
	uint32_t valid = in_file > META_CHUNK_SIZE ? META_CHUNK_SIZE : (uint32_t)in_file;
	ssize_t got = 0;

	if (idx < f->ngrid && !fs_chunk_is_hole(f->grid[idx].key) && f->grid[idx].len) {
		got = fs_chunk_read(fs->cache, fs->node.cluster, f->grid[idx].key, buf, META_CHUNK_SIZE);
		if (got < 0)
			return got;
		/* a truncated slot keeps its chunk; bytes past its length read as zeros */
		if (got > (ssize_t)f->grid[idx].len)
			got = f->grid[idx].len;
	}
	if ((size_t)got < valid)
		memset(buf + got, 0, valid - (size_t)got);
	return valid;
}

/* Stores one dirty chunk and points the grid at it; the buffer is freed. */
static int store_dirty(struct fs *fs, struct fs_file *f, struct fs_dirty *d)
{
	uint8_t id[META_CHUNK_KEY];
	int rc = fs_chunk_put(fs->node.cluster, d->buf, d->len, id);

	if (rc < 0) {
		f->error = rc;
		return rc;
	}
	rc = grid_fit(f, f->size > (uint64_t)d->idx * META_CHUNK_SIZE + d->len
			     ? f->size
			     : (uint64_t)d->idx * META_CHUNK_SIZE + d->len);
	if (rc)
		return rc;
	memcpy(f->grid[d->idx].key, id, META_CHUNK_KEY);
	f->grid[d->idx].len = d->len;
	free(d->buf);
	*d = f->dirty[--f->ndirty];
	return 0;
}

static int store_all(struct fs *fs, struct fs_file *f)
{
	int rc = 0;

	while (f->ndirty && rc == 0)
		rc = store_dirty(fs, f, &f->dirty[f->ndirty - 1]);
	return rc;
}

static struct fs_dirty *dirty_get(struct fs *fs, struct fs_file *f, uint32_t idx, int *err)
{
	struct fs_dirty *d = dirty_find(f, idx);
	ssize_t valid;

	if (d)
		return d;
	if (f->ndirty >= MAX_DIRTY && (*err = store_all(fs, f)) < 0)
		return NULL;
	if (f->ndirty == f->capdirty) {
		uint32_t cap = f->capdirty ? f->capdirty * 2 : 4;
		struct fs_dirty *n = realloc(f->dirty, cap * sizeof(*n));
		if (!n) {
			*err = -ENOMEM;
			return NULL;
		}
		f->dirty = n;
		f->capdirty = cap;
	}
	d = &f->dirty[f->ndirty];
	d->idx = idx;
	d->buf = malloc(META_CHUNK_SIZE);
	if (!d->buf) {
		*err = -ENOMEM;
		return NULL;
	}
	/* Only the valid bytes are filled: a 16 KiB file touches 16 KiB of the
	 * buffer, not 1 MiB. Gaps a write skips over are zeroed by the write. */
	valid = (uint64_t)idx * META_CHUNK_SIZE < f->size ? read_slot(fs, f, idx, d->buf) : 0;
	if (valid < 0) {
		free(d->buf);
		*err = (int)valid;
		return NULL;
	}
	d->len = (uint32_t)valid;
	f->ndirty++;
	return d;
}

ssize_t fs_file_write(struct fs *fs, struct fs_file *f, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;
	size_t done = 0;
	int err = 0;

	if (off + n > META_FILE_MAX)
		return -EFBIG;
	pthread_mutex_lock(&f->mu);
	while (done < n) {
		uint32_t idx = (uint32_t)(off / META_CHUNK_SIZE);
		uint32_t in = (uint32_t)(off % META_CHUNK_SIZE);
		size_t take = n - done < META_CHUNK_SIZE - in ? n - done : META_CHUNK_SIZE - in;
		struct fs_dirty *d = dirty_get(fs, f, idx, &err);

		if (!d)
			break;
		if (in > d->len)
			memset(d->buf + d->len, 0, in - d->len);
		memcpy(d->buf + in, p + done, take);
		if (in + take > d->len)
			d->len = (uint32_t)(in + take);
		done += take;
		off += take;
		if (off > f->size)
			f->size = off;
		touch(f);
		if (d->len == META_CHUNK_SIZE && in + take == META_CHUNK_SIZE) {
			/* a full chunk is cut and stored as it fills */
			err = store_dirty(fs, f, d);
			if (err)
				break;
		}
	}
	if (err == 0)
		err = grid_fit(f, f->size);
	pthread_mutex_unlock(&f->mu);
	return done ? (ssize_t)done : err;
}

ssize_t fs_file_read(struct fs *fs, struct fs_file *f, void *buf, size_t n, uint64_t off)
{
	uint8_t *p = buf;
	size_t done = 0;
	ssize_t rc = 0;

	pthread_mutex_lock(&f->mu);
	if (off >= f->size) {
		pthread_mutex_unlock(&f->mu);
		return 0;
	}
	if (n > f->size - off)
		n = (size_t)(f->size - off);
	while (done < n) {
		uint32_t idx = (uint32_t)(off / META_CHUNK_SIZE);
		uint32_t in = (uint32_t)(off % META_CHUNK_SIZE);
		size_t take = n - done < META_CHUNK_SIZE - in ? n - done : META_CHUNK_SIZE - in;
		struct fs_dirty *d = dirty_find(f, idx);

		if (d) {
			/* past the buffer's valid bytes (but within the file) reads zeros */
			size_t have = in < d->len ? d->len - in : 0;
			if (have > take)
				have = take;
			memcpy(p + done, d->buf + in, have);
			memset(p + done + have, 0, take - have);
		} else {
			/* a hole, or bytes past the slot's length (a truncated slot
			 * keeps its chunk), read as zeros */
			size_t have = 0;
			if (idx < f->ngrid && !fs_chunk_is_hole(f->grid[idx].key) &&
			    in < f->grid[idx].len) {
				size_t want = f->grid[idx].len - in < take ? f->grid[idx].len - in : take;
				rc = fs_chunk_read_range(fs->cache, fs->node.cluster, f->grid[idx].key,
							 in, want, p + done);
				if (rc < 0)
					break;
				have = (size_t)rc;
			}
			memset(p + done + have, 0, take - have);
		}
		done += take;
		off += take;
	}
	pthread_mutex_unlock(&f->mu);
	return done ? (ssize_t)done : rc;
}

/*
 * Stores what is buffered and commits size, grid and mtime. A failure is
 * also kept in f->error; with report, a failure kept from an earlier
 * attempt (a background commit, a chunk that could not be stored at write)
 * is returned once here, as fsync reports a failed writeback.
 */
static int commit_locked(struct fs *fs, struct fs_file *f, bool report)
{
	int rc = store_all(fs, f);

	/* The chunks reach the segment file before the namespace names them: a
	 * killed daemon then leaves no record pointing at a chunk it lost. */
	if (rc == 0 && f->changed)
		rc = store_flush(fs->store);
	if (rc == 0 && f->changed) {
		rc = meta_set_content(fs->meta, f->node.ino, f->size, f->written ? &f->mtime : NULL, 0,
				      f->grid, f->ngrid, NULL);
		if (rc == 0)
			f->changed = false;
	}
	if (rc)
		f->error = rc;
	if (report && f->error) {
		rc = f->error;
		f->error = 0;
	}
	return rc;
}

int fs_file_commit(struct fs *fs, struct fs_file *f)
{
	pthread_mutex_lock(&f->mu);
	int rc = commit_locked(fs, f, true);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int fs_file_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct meta_inode *out)
{
	struct meta_inode attr = { .size = size };
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = commit_locked(fs, f, true);
	if (rc == 0)
		rc = meta_setattr(fs->meta, f->node.ino, META_SET_SIZE, &attr, out);
	if (rc == 0) {
		free(f->grid);
		f->grid = NULL;
		f->ngrid = 0;
		rc = load_state(fs, f);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int fs_file_close(struct fs *fs, struct fs_file *f)
{
	int rc = fs_file_commit(fs, f);

	fs_file_put(fs, f);
	return rc;
}

static void say_not_committed(uint64_t ino, int rc)
{
	fprintf(stderr, "caskfs: inode %llu: writes could not be committed: %s\n",
		(unsigned long long)ino, strerror(-rc));
}

bool fs_file_forget(struct fs *fs, uint64_t ino)
{
	struct fs_file *f = fs_file_find(fs, ino);
	bool gone;

	if (!f)
		return true;
	int rc = fs_file_commit(fs, f);
	if (rc && rc != -ENOENT)
		say_not_committed(ino, rc);
	pthread_mutex_lock(&fs->files_mu);
	gone = --f->refs == 0;
	if (gone)
		drop_locked(fs, f); /* the kernel let go: nobody can write it again */
	pthread_mutex_unlock(&fs->files_mu);
	return gone;
}

/* The outcome rc of a background commit of f (locked). */
static void settle(struct fs_file *f, int rc, int said, int64_t now, int *failed)
{
	if (rc == -ENOENT) {
		/* the inode is gone: nothing can read these writes */
		f->changed = false;
		f->error = 0;
		for (uint32_t j = 0; j < f->ndirty; j++)
			free(f->dirty[j].buf);
		f->ndirty = 0;
	} else if (rc) {
		/* kept for the next round, and for fsync to report */
		if (said != rc) /* each new error is logged once */
			say_not_committed(f->node.ino, rc);
		f->error = rc;
		f->write_ms = f->dirty_ms = now; /* retried a period later */
		(*failed)++;
	}
}

#define COMMIT_BATCH 64

/*
 * The files due are committed together: their chunks stored, the log
 * flushed once, and all their sizes and grids in one namespace transaction
 * (a create-heavy load, rsync or cp -r, commits hundreds of small files a
 * second). A file busy with a request is left for the next round.
 */
int fs_file_commit_idle(struct fs *fs, int64_t idle_ms, int64_t max_age_ms)
{
	struct fs_file *due[COMMIT_BATCH];
	struct meta_content items[COMMIT_BATCH];
	int owner[COMMIT_BATCH]; /* items[i] is due[owner[i]] */
	bool locked[COMMIT_BATCH];
	int said[COMMIT_BATCH]; /* each file's error before this round */
	int64_t now = fs_now_ms();
	int n, k, done, failed = 0;

again:
	n = k = done = 0;
	pthread_mutex_lock(&fs->files_mu);
	for (struct fs_file *f = fs_file_next_locked(fs, NULL); f && n < COMMIT_BATCH;
	     f = fs_file_next_locked(fs, f)) {
		/* a file locked by a request is not due now (and never waited for:
		 * a copy between two files locks them in another order) */
		if (pthread_mutex_trylock(&f->mu) != 0)
			continue;
		bool ripe = (f->changed || f->ndirty) &&
			    (idle_ms == 0 || now - f->write_ms >= idle_ms ||
			     now - f->dirty_ms >= max_age_ms);
		pthread_mutex_unlock(&f->mu);
		if (ripe) {
			f->refs++;
			due[n++] = f;
		}
	}
	pthread_mutex_unlock(&fs->files_mu);
	for (int i = 0; i < n; i++) {
		struct fs_file *f = due[i];
		locked[i] = pthread_mutex_trylock(&f->mu) == 0;
		if (!locked[i])
			continue;
		said[i] = f->error;
		int rc = store_all(fs, f);
		if (rc) {
			settle(f, rc, said[i], now, &failed);
		} else if (f->changed) {
			owner[k] = i;
			items[k++] = (struct meta_content){ .ino = f->node.ino,
							    .size = f->size,
							    .mtime = f->written ? &f->mtime : NULL,
							    .chunks = f->grid,
							    .n = f->ngrid };
		}
	}
	/* the chunks reach the segment file before the namespace names them */
	int rc = k ? store_flush(fs->store) : 0;
	if (rc == 0 && k)
		rc = meta_set_contents(fs->meta, items, (size_t)k);
	for (int i = 0; i < k; i++) {
		struct fs_file *f = due[owner[i]];
		int r = rc ? rc : items[i].rc;
		if (r == 0) {
			f->changed = false;
			done++;
		}
		settle(f, r, said[owner[i]], now, &failed);
	}
	/* every lock goes before any put: put takes files_mu, which is taken
	 * before a file's lock everywhere else */
	for (int i = 0; i < n; i++)
		if (locked[i])
			pthread_mutex_unlock(&due[i]->mu);
	for (int i = 0; i < n; i++)
		fs_file_put(fs, due[i]);
	if (n == COMMIT_BATCH && done > 0)
		goto again; /* more were due */
	return failed;
}

/* Shares whole slots from fin to fout; both locked. Returns bytes shared. */
static ssize_t share_slots(struct fs *fs, struct fs_file *fin, uint64_t off_in,
			   struct fs_file *fout, uint64_t off_out, size_t len)
{
	uint64_t done = 0;
	int rc = commit_locked(fs, fin, true);

	if (rc == 0)
		rc = store_all(fs, fout);
	if (rc)
		return rc;
	while (len - done >= META_CHUNK_SIZE && off_in + done + META_CHUNK_SIZE <= fin->size) {
		uint32_t si = (uint32_t)((off_in + done) / META_CHUNK_SIZE);
		uint32_t di = (uint32_t)((off_out + done) / META_CHUNK_SIZE);
		uint64_t end = off_out + done + META_CHUNK_SIZE;

		if (si >= fin->ngrid || fin->grid[si].len != META_CHUNK_SIZE)
			break;
		if (end > fout->size)
			fout->size = end;
		rc = grid_fit(fout, fout->size);
		if (rc)
			return done ? (ssize_t)done : rc;
		fout->grid[di] = fin->grid[si];
		touch(fout);
		done += META_CHUNK_SIZE;
	}
	return (ssize_t)done;
}

ssize_t fs_file_copy(struct fs *fs, struct fs_file *fin, uint64_t off_in, struct fs_file *fout,
		     uint64_t off_out, size_t len)
{
	uint8_t *buf;
	size_t done = 0;
	ssize_t rc = 0;

	if (off_in % META_CHUNK_SIZE == 0 && off_out % META_CHUNK_SIZE == 0 &&
	    len >= META_CHUNK_SIZE && fin != fout) {
		/* lock in address order: two copies in opposite directions cannot deadlock */
		struct fs_file *a = fin < fout ? fin : fout, *b = fin < fout ? fout : fin;
		pthread_mutex_lock(&a->mu);
		pthread_mutex_lock(&b->mu);
		rc = share_slots(fs, fin, off_in, fout, off_out, len);
		pthread_mutex_unlock(&b->mu);
		pthread_mutex_unlock(&a->mu);
		if (rc < 0)
			return rc;
		done = (size_t)rc;
	}
	buf = malloc(META_CHUNK_SIZE);
	if (!buf)
		return done ? (ssize_t)done : -ENOMEM;
	while (done < len) {
		size_t want = len - done < META_CHUNK_SIZE ? len - done : META_CHUNK_SIZE;
		ssize_t n = fs_file_read(fs, fin, buf, want, off_in + done);
		if (n <= 0) {
			rc = n;
			break;
		}
		ssize_t w = fs_file_write(fs, fout, buf, (size_t)n, off_out + done);
		if (w < 0) {
			rc = w;
			break;
		}
		done += (size_t)w;
		if ((size_t)n < want)
			break;
	}
	free(buf);
	return done ? (ssize_t)done : rc;
}

int64_t fs_file_seek(struct fs_file *f, uint64_t off, int whence)
{
	int64_t res = -ENXIO;

	pthread_mutex_lock(&f->mu);
	if (off < f->size) {
		for (uint64_t pos = off; pos < f->size;
		     pos = (pos / META_CHUNK_SIZE + 1) * META_CHUNK_SIZE) {
			uint32_t idx = (uint32_t)(pos / META_CHUNK_SIZE);
			bool data = dirty_find(f, idx) ||
				    (idx < f->ngrid && !fs_chunk_is_hole(f->grid[idx].key));
			if (data == (whence == SEEK_DATA)) {
				res = (int64_t)pos;
				break;
			}
		}
		if (res < 0 && whence == SEEK_HOLE)
			res = (int64_t)f->size; /* the end of the file is a hole */
	}
	pthread_mutex_unlock(&f->mu);
	return res;
}
