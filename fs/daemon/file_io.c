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
#include <fcntl.h> /* FALLOC_FL_* */
#include <linux/falloc.h>
#include <stdio.h> /* SEEK_DATA, SEEK_HOLE */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "file_i.h"

/* Past this many dirty chunks in one file, they are stored before taking more. */
#define MAX_DIRTY 16

/* The slot of idx in f's map when it holds a chunk (not a hole, not only
 * reserved), else NULL. */
static const struct meta_chunk *stored(const struct fs_file *f, uint32_t idx)
{
	const struct meta_chunk *c = meta_map_find(f->map.v, f->map.n, idx);

	return c && c->len && !meta_chunk_reserved(c) ? c : NULL;
}

static struct fs_dirty *dirty_find(struct fs_file *f, uint32_t idx)
{
	for (uint32_t i = 0; i < f->ndirty; i++)
		if (f->dirty[i].idx == idx)
			return &f->dirty[i];
	return NULL;
}

/* Reads chunk slot idx of the map into buf (a new buffer: all zeros) and
 * returns the slot's valid length within the file (its bytes past the
 * chunk's length stay zeros), or -errno. */
static ssize_t read_slot(struct fs *fs, struct fs_file *f, uint32_t idx, uint8_t *buf)
{
	uint64_t in_file = f->size - (uint64_t)idx * META_CHUNK_SIZE;
	uint32_t valid = in_file > META_CHUNK_SIZE ? META_CHUNK_SIZE : (uint32_t)in_file;
	const struct meta_chunk *c = stored(f, idx);
	ssize_t got = 0;

	if (c) {
		got = fs_chunk_read(fs->cache, fs->node.cluster, c->key, buf, META_CHUNK_SIZE);
		if (got < 0)
			return got;
		/* a truncated slot keeps its chunk; bytes past its length read as zeros */
		if (got > (ssize_t)c->len) {
			got = c->len;
			memset(buf + got, 0, META_CHUNK_SIZE - (size_t)got);
		}
	}
	return valid;
}

static struct fs_dirty *dirty_get(struct fs *fs, struct fs_file *f, uint32_t idx, int *err)
{
	struct fs_dirty *d = dirty_find(f, idx);

	if (d)
		return d;
	/* a file keeps at most MAX_DIRTY buffers, and all files together
	 * FS_DIRTY_MAX: past either, this writer stores its own first */
	if ((f->ndirty >= MAX_DIRTY || (f->ndirty && atomic_load(&fs->dirty_chunks) >= FS_DIRTY_MAX)) &&
	    (*err = fs_file_store_all(fs, f)) < 0)
		return NULL;
	return fs_file_dirty_load(fs, f, idx, err);
}

struct fs_dirty *fs_file_dirty_load(struct fs *fs, struct fs_file *f, uint32_t idx, int *err)
{
	struct fs_dirty *d;
	ssize_t valid;

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
	*d = (struct fs_dirty){ .idx = idx };
	/* Mapped, not malloc'd: the pages come zeroed and only those touched
	 * take memory, and they go back to the system when the chunk is
	 * stored (a malloc arena per request thread would keep its peak). */
	d->buf = mmap(NULL, META_CHUNK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		      -1, 0);
	if (d->buf == MAP_FAILED) {
		d->buf = NULL;
		*err = -ENOMEM;
		return NULL;
	}
	/* Only the valid bytes are filled: a 16 KiB file touches 16 KiB of the
	 * buffer, not 1 MiB. Past d->len a buffer is always zeros. */
	valid = (uint64_t)idx * META_CHUNK_SIZE < f->size ? read_slot(fs, f, idx, d->buf) : 0;
	if (valid < 0) {
		munmap(d->buf, META_CHUNK_SIZE);
		*err = (int)valid;
		return NULL;
	}
	d->len = (uint32_t)valid;
	f->ndirty++;
	atomic_fetch_add(&fs->dirty_chunks, 1);
	return d;
}

/* A whole aligned chunk written at once, with no buffer for its slot: stored
 * from the caller's bytes, which need not be copied into a buffer first. */
static int store_whole(struct fs *fs, struct fs_file *f, uint32_t idx, const uint8_t *data)
{
	struct meta_chunk c = { .idx = idx, .len = META_CHUNK_SIZE };
	int rc = fs_chunk_put(fs->node.cluster, data, META_CHUNK_SIZE, c.key);

	if (rc == 0)
		rc = meta_map_set(&f->map, &c);
	if (rc < 0)
		f->error = rc;
	f->log_through = store_appended(fs->store);
	return rc;
}

ssize_t fs_file_write(struct fs *fs, struct fs_file *f, const void *buf, size_t n, uint64_t off)
{
	const uint8_t *p = buf;
	size_t done = 0;
	int err = 0;

	if (off > META_FILE_MAX || n > META_FILE_MAX - off)
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
		/* a gap between d->len and in is zeros already */
		memcpy(d->buf + in, p + done, take);
		fs_dirty_mark(d, in, (uint32_t)(in + take));
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
			const struct meta_chunk *c = stored(f, idx);
			size_t have = 0;
			rc = -ERANGE;
			/* a READ of a whole chunk (the kernel's readahead sends
			 * them): copied from the log into the answer and verified
			 * there, nothing kept; -ERANGE: the chunk is longer than the
			 * room (a truncated slot), read by range */
			if (c && in == 0 && take >= c->len)
				rc = fs_chunk_read(fs->cache, fs->node.cluster, c->key, p + done,
						   n - done);
			if (rc == -ERANGE && c && in < c->len) {
				size_t want = c->len - in < take ? c->len - in : take;
				rc = fs_chunk_read_range(fs->cache, fs->node.cluster, c->key, in,
							 want, p + done);
			}
			if (rc >= 0)
				have = (size_t)rc < c->len - in ? (size_t)rc : c->len - in;
			else if (rc != -ERANGE)
				break;
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
		const struct meta_chunk *c = stored(fin, si);
		struct meta_chunk slot;

		if (!c || c->len != META_CHUNK_SIZE)
			break;
		slot = *c;
		slot.idx = di;
		rc = meta_map_set(&fout->map, &slot);
		if (rc)
			return done ? (ssize_t)done : rc;
		fout->log_through = store_appended(fs->store); /* fin's chunks */
		if (end > fout->size)
			fout->size = end;
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

	if (off_out > META_FILE_MAX || len > META_FILE_MAX - off_out)
		return -EFBIG;
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

/* Whether slot idx of f holds data (a buffer or a stored chunk; a reserved
 * slot reads as zeros and counts as a hole, as unwritten extents do). */
static bool slot_has_data(struct fs_file *f, uint32_t idx)
{
	return dirty_find(f, idx) || stored(f, idx);
}

/* The first slot at or after idx that holds data, or UINT32_MAX: the map's
 * next stored entry or a buffer, whichever comes first (no walk over holes). */
static uint32_t next_data(struct fs_file *f, uint32_t idx)
{
	uint32_t best = UINT32_MAX;

	for (uint32_t i = meta_map_lower(f->map.v, f->map.n, idx); i < f->map.n; i++)
		if (stored(f, f->map.v[i].idx)) {
			best = f->map.v[i].idx;
			break;
		}
	for (uint32_t i = 0; i < f->ndirty; i++)
		if (f->dirty[i].idx >= idx && f->dirty[i].idx < best)
			best = f->dirty[i].idx;
	return best;
}

int64_t fs_file_seek(struct fs_file *f, uint64_t off, int whence)
{
	int64_t res = -ENXIO;

	pthread_mutex_lock(&f->mu);
	if (off < f->size) {
		uint32_t idx = (uint32_t)(off / META_CHUNK_SIZE);
		if (whence == SEEK_DATA) {
			uint32_t d = next_data(f, idx);
			uint64_t pos = d == idx ? off : (uint64_t)d * META_CHUNK_SIZE;
			if (d != UINT32_MAX && pos < f->size)
				res = (int64_t)pos;
		} else {
			/* data runs slot by slot; the end of the file is a hole */
			while ((uint64_t)idx * META_CHUNK_SIZE < f->size && slot_has_data(f, idx))
				idx++;
			uint64_t pos = (uint64_t)idx * META_CHUNK_SIZE;
			res = (int64_t)(pos < off ? off : pos < f->size ? pos : f->size);
		}
	}
	pthread_mutex_unlock(&f->mu);
	return res;
}

/*
 * Zeroes [a, b) of f (b at most the size): the slots the range covers whole
 * (up to the end of the file) become holes, buffers and all; in a slot it
 * covers in part, the bytes are zeroed in its buffer (loaded from its chunk
 * when it has one). Only the two edge slots and the map's own entries are
 * visited, never every slot of the range.
 */
static int zero_range(struct fs *fs, struct fs_file *f, uint64_t a, uint64_t b)
{
	uint64_t first = (a + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
	uint64_t end = b == f->size ? (b + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE : b / META_CHUNK_SIZE;
	int err = 0;

	if (first < end) {
		meta_map_punch(&f->map, (uint32_t)first, (uint32_t)end);
		for (uint32_t i = f->ndirty; i-- > 0;)
			if (f->dirty[i].idx >= first && f->dirty[i].idx < end)
				fs_file_dirty_free(fs, f, &f->dirty[i]);
	}
	/* the edge slots: before first, and from end on */
	for (int edge = 0; edge < 2; edge++) {
		uint64_t idx = edge == 0 ? a / META_CHUNK_SIZE : end;
		uint64_t from = idx * META_CHUNK_SIZE;
		uint64_t lo = a > from ? a - from : 0;
		uint64_t hi = b - from < META_CHUNK_SIZE ? b - from : META_CHUNK_SIZE;

		if (from >= b || (idx >= first && idx < end) || (edge == 1 && idx == a / META_CHUNK_SIZE))
			continue;
		if (!slot_has_data(f, (uint32_t)idx))
			continue; /* a hole, or reserved: reads as zeros already */
		struct fs_dirty *d = dirty_get(fs, f, (uint32_t)idx, &err);
		if (!d)
			return err;
		if (lo < d->len) {
			memset(d->buf + lo, 0, (hi < d->len ? hi : d->len) - lo);
			fs_dirty_mark(d, (uint32_t)lo, (uint32_t)(hi < d->len ? hi : d->len));
		}
	}
	return 0;
}

/* Reserves the holes of [a, b): reserved slots are allocated and read as
 * zeros. -ENOSPC when the disk has not the room for them. */
static int reserve_range(struct fs *fs, struct fs_file *f, uint64_t a, uint64_t b)
{
	uint64_t first = a / META_CHUNK_SIZE, end = (b + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
	uint64_t need = 0, avail;
	int rc = fs_space_avail(fs, &avail);

	if (rc)
		return rc;
	/* counted only until it is past the room there is */
	for (uint64_t idx = first; idx < end && need <= avail; idx++)
		if (!meta_map_find(f->map.v, f->map.n, (uint32_t)idx) && !dirty_find(f, (uint32_t)idx))
			need += b - idx * META_CHUNK_SIZE < META_CHUNK_SIZE ? b - idx * META_CHUNK_SIZE
									   : META_CHUNK_SIZE;
	if (need > avail)
		return -ENOSPC;
	for (uint64_t idx = first; idx < end; idx++) {
		struct meta_chunk c = { .idx = (uint32_t)idx };
		uint64_t from = idx * META_CHUNK_SIZE;

		if (meta_map_find(f->map.v, f->map.n, c.idx) || dirty_find(f, c.idx))
			continue;
		c.len = (uint32_t)(b - from < META_CHUNK_SIZE ? b - from : META_CHUNK_SIZE);
		rc = meta_map_set(&f->map, &c);
		if (rc)
			return rc;
	}
	return 0;
}

int fs_file_fallocate(struct fs *fs, struct fs_file *f, int mode, uint64_t off, uint64_t len)
{
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	uint64_t end;
	int rc;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		return -EOPNOTSUPP; /* collapse, insert, unshare */
	if ((mode & FALLOC_FL_PUNCH_HOLE) && (!keep || (mode & FALLOC_FL_ZERO_RANGE)))
		return -EOPNOTSUPP;
	if (len == 0)
		return -EINVAL;
	if (off > META_FILE_MAX || len > META_FILE_MAX - off)
		return -EFBIG;
	end = off + len;
	pthread_mutex_lock(&f->mu);
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		rc = off < f->size ? zero_range(fs, f, off, end < f->size ? end : f->size) : 0;
	else if (!keep)
		rc = reserve_range(fs, f, off, end);
	else /* a map holds no slot past the end: what lies beyond is not kept */
		rc = off < f->size ? reserve_range(fs, f, off, end < f->size ? end : f->size) : 0;
	if (rc == 0) {
		if (!keep && end > f->size)
			f->size = end;
		fs_file_touch(f);
		/* made durable at once, as a truncate is: the kernel has already
		 * dropped the pages of the range */
		rc = fs_file_commit_locked(fs, f, true);
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}
