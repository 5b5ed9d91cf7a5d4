/*
 * file_io - reads and writes through a file state. Writes land in 1 MiB
 * chunk buffers (at most MAX_DIRTY of them per file), filled from the stored
 * chunk only as far as the file reaches; a buffer that fills is stored as a
 * chunk at once. Reads see the buffers first, then the grid's chunks through
 * the cache, holes and bytes past a chunk's length as zeros: reads on this
 * mount see writes not committed yet. A copy of whole aligned chunks shares
 * them instead of moving bytes. Chunks: chunk_i.h.
 */
#include <errno.h>
#include <stdio.h> /* SEEK_DATA, SEEK_HOLE */
#include <stdlib.h>
#include <string.h>

#include "file_i.h"

/* Past this many dirty chunks, they are stored before taking more. */
#define MAX_DIRTY 16

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
		got = fs_chunk_read(fs->cache, fs->node.cluster, f->grid[idx].key, buf,
				    META_CHUNK_SIZE);
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

static struct fs_dirty *dirty_get(struct fs *fs, struct fs_file *f, uint32_t idx, int *err)
{
	struct fs_dirty *d = dirty_find(f, idx);
	ssize_t valid;

	if (d)
		return d;
	if (f->ndirty >= MAX_DIRTY && (*err = fs_file_store_all(fs, f)) < 0)
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

/* A whole aligned chunk written at once, with no buffer for its slot: stored
 * from the caller's bytes, which need not be copied into a buffer first. */
static int store_whole(struct fs *fs, struct fs_file *f, uint32_t idx, const uint8_t *data)
{
	uint64_t end = (uint64_t)(idx + 1) * META_CHUNK_SIZE;
	uint8_t id[META_CHUNK_KEY];
	int rc = fs_chunk_put(fs->node.cluster, data, META_CHUNK_SIZE, id);

	if (rc < 0) {
		f->error = rc;
		return rc;
	}
	if ((rc = fs_file_grid_fit(f, f->size > end ? f->size : end)) < 0)
		return rc;
	memcpy(f->grid[idx].key, id, META_CHUNK_KEY);
	f->grid[idx].len = META_CHUNK_SIZE;
	return 0;
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
		struct fs_dirty *d;

		if (take == META_CHUNK_SIZE && !dirty_find(f, idx)) {
			if ((err = store_whole(fs, f, idx, p + done)) < 0)
				break;
			done += take;
			off += take;
			if (off > f->size)
				f->size = off;
			fs_file_touch(f);
			continue;
		}
		if (!(d = dirty_get(fs, f, idx, &err)))
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
		fs_file_touch(f);
		if (d->len == META_CHUNK_SIZE && in + take == META_CHUNK_SIZE) {
			/* a full chunk is cut and stored as it fills */
			err = fs_file_store_dirty(fs, f, d);
			if (err)
				break;
		}
	}
	if (err == 0)
		err = fs_file_grid_fit(f, f->size);
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
				size_t want =
				    f->grid[idx].len - in < take ? f->grid[idx].len - in : take;
				rc = fs_chunk_read_range(fs->cache, fs->node.cluster,
							 f->grid[idx].key, in, want, p + done);
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

/* Shares whole slots from fin to fout; both locked. Returns bytes shared. */
static ssize_t share_slots(struct fs *fs, struct fs_file *fin, uint64_t off_in,
			   struct fs_file *fout, uint64_t off_out, size_t len)
{
	uint64_t done = 0;
	int rc = fs_file_commit_locked(fs, fin, true);

	if (rc == 0)
		rc = fs_file_store_all(fs, fout);
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
		rc = fs_file_grid_fit(fout, fout->size);
		if (rc)
			return done ? (ssize_t)done : rc;
		fout->grid[di] = fin->grid[si];
		fs_file_touch(fout);
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
