/*
 * segment - the segment files of the log: NNNNNN.cask, a 16-byte header,
 * then records back to back. The one idea: a segment is only ever appended
 * to while it is active; once sealed it never changes, so it can be mapped
 * and read without locks, and a scan that verifies every record in order is
 * how the engine learns what a segment holds when no hint file says so.
 * Format: docs/FORMAT.md ("Segments").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash_i.h"
#include "store_i.h"

#define SCAN_BUF (4u << 20)

void store_seg_path(const struct store *s, uint32_t id, const char *ext, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%06u.%s", s->logdir, id, ext);
}

size_t store_segment_map_room(const struct store *s, uint64_t file_size)
{
	uint64_t room = s->opt.segment_size + STORE_VALUE_MAX + STORE_REC_HDR + STORE_KEY_MAX;

	return (size_t)(file_size > room ? file_size : room);
}

/* Maps seg for reads; without a mapping reads fall back to pread. */
static void map_segment(struct store *s, struct store_segment *seg, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, seg->fd, 0);

	if (p == MAP_FAILED) {
		store_logf(s, STORE_LOG_WARN, "cannot map segment %06u (%s); reading with pread",
			   seg->id, strerror(errno));
		return;
	}
	seg->map = p;
	seg->map_len = len;
}

int store_segment_create(struct store *s, uint32_t id, struct store_segment **out)
{
	char path[4096];
	uint8_t hdr[STORE_SEG_HDR];
	struct store_segment *seg;
	int fd, rc;

	store_seg_path(s, id, "cask", path, sizeof(path));
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "cannot create segment %s: %s", path, strerror(-rc));
		return rc;
	}
	store_seg_encode(id, hdr);
	rc = store_write_full(fd, hdr, sizeof(hdr), 0);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (rc == 0 && fsync(s->logdir_fd) < 0)
		rc = -errno;
	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot write segment %s: %s", path, strerror(-rc));
		close(fd);
		unlink(path);
		return rc;
	}
	seg = calloc(1, sizeof(*seg));
	if (!seg) {
		close(fd);
		unlink(path);
		return -ENOMEM;
	}
	seg->id = id;
	seg->fd = fd;
	seg->version = STORE_SEG_VERSION;
	atomic_init(&seg->size, STORE_SEG_HDR);
	atomic_init(&seg->flushed, STORE_SEG_HDR);
	atomic_init(&seg->refs, 1);
	map_segment(s, seg, store_segment_map_room(s, STORE_SEG_HDR));
	*out = seg;
	return 0;
}

int store_segment_open(struct store *s, uint32_t id, bool active, struct store_segment **out)
{
	char path[4096];
	uint8_t hdr[STORE_SEG_HDR];
	struct store_segment *seg;
	struct stat st;
	ssize_t n;
	int fd, rc, version = STORE_SEG_VERSION;

	store_seg_path(s, id, "cask", path, sizeof(path));
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "cannot open segment %s: %s", path, strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	n = store_read_full(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot read segment %s: %s", path,
			   strerror((int)-n));
		close(fd);
		return (int)n;
	}
	if (n < STORE_SEG_HDR && active) {
		/* Torn at creation: nothing but a partial header was ever written. */
		store_logf(s, STORE_LOG_WARN, "segment %s: header torn (%zd bytes), rewritten",
			   path, n);
		store_seg_encode(id, hdr);
		rc = store_write_full(fd, hdr, sizeof(hdr), 0);
		if (rc == 0 && ftruncate(fd, STORE_SEG_HDR) < 0)
			rc = -errno;
		if (rc < 0) {
			close(fd);
			return rc;
		}
		st.st_size = STORE_SEG_HDR;
	} else if (n < STORE_SEG_HDR || (version = store_seg_decode(hdr, id)) < 0) {
		store_logf(s, STORE_LOG_ERROR, "segment %s: bad header (not a caskfs segment %u)",
			   path, id);
		close(fd);
		return -EBADMSG;
	}
	if ((uint64_t)st.st_size > UINT32_MAX) {
		store_logf(s, STORE_LOG_ERROR, "segment %s: larger than 4 GiB", path);
		close(fd);
		return -EFBIG;
	}
	seg = calloc(1, sizeof(*seg));
	if (!seg) {
		close(fd);
		return -ENOMEM;
	}
	seg->id = id;
	seg->fd = fd;
	seg->version = (uint8_t)version;
	atomic_init(&seg->size, (uint64_t)st.st_size);
	atomic_init(&seg->flushed, (uint64_t)st.st_size);
	atomic_init(&seg->refs, 1);
	map_segment(s, seg,
		    active ? store_segment_map_room(s, (uint64_t)st.st_size) : (size_t)st.st_size);
	*out = seg;
	return 0;
}

void store_segment_ref(struct store_segment *seg)
{
	atomic_fetch_add(&seg->refs, 1);
}

void store_segment_unref(struct store_segment *seg)
{
	if (seg && atomic_fetch_sub(&seg->refs, 1) == 1) {
		if (seg->map)
			munmap((void *)seg->map, seg->map_len);
		free(seg->wbuf);
		close(seg->fd);
		free(seg);
	}
}

/* A sequential reader over a segment: keeps [base, base+len) of the file. */
struct seg_reader {
	int fd;
	uint64_t file_size;
	uint8_t *buf;
	size_t cap;
	uint64_t base;
	size_t len;
};

/* Makes [off, off+n) available; returns a pointer into the buffer, or NULL with
 * *err set (0 when the file is simply shorter). */
static const uint8_t *reader_get(struct seg_reader *r, uint64_t off, size_t n, int *err)
{
	ssize_t got;

	*err = 0;
	if (off + n > r->file_size)
		return NULL;
	if (off >= r->base && off + n <= r->base + r->len)
		return r->buf + (off - r->base);
	if (n > r->cap) {
		uint8_t *nb = realloc(r->buf, n);
		if (!nb) {
			*err = -ENOMEM;
			return NULL;
		}
		r->buf = nb;
		r->cap = n;
	}
	size_t want = r->cap;
	if (want > r->file_size - off)
		want = (size_t)(r->file_size - off);
	got = store_read_full(r->fd, r->buf, want, (off_t)off);
	if (got < 0) {
		*err = (int)got;
		return NULL;
	}
	r->base = off;
	r->len = (size_t)got;
	if ((size_t)got < n)
		return NULL;
	return r->buf;
}

/* Checks the record at off; returns 1 and fills rec when it is whole and verified,
 * 0 when it is not (*torn set when it does not even fit), or -errno. */
static int check_record(struct seg_reader *r, uint64_t off, struct store_scan_rec *rec,
			bool *bad_header)
{
	const uint8_t *p;
	int err;
	uint64_t len;

	*bad_header = false;
	p = reader_get(r, off, STORE_REC_HDR_V1, &err);
	/* the version byte, in both versions' place, says how long the header is */
	size_t hl = p ? store_rec_hdr_len(p[39]) : STORE_REC_HDR_V1;
	if (p && hl > STORE_REC_HDR_V1)
		p = reader_get(r, off, hl, &err);
	if (!p || store_rec_decode(p, hl, &rec->hdr) < 0) {
		*bad_header = true;
		return err;
	}
	len = store_rec_size(&rec->hdr);
	p = reader_get(r, off, (size_t)len, &err);
	if (!p)
		return err;
	rec->raw = p;
	rec->key = p + hl;
	rec->off = (uint32_t)off;
	rec->len = (uint32_t)len;
	if (store_rec_checksum(p, rec->key, rec->hdr.key_len,
			       store_hash_bulk(rec->key + rec->hdr.key_len, rec->hdr.stored_len)) !=
	    rec->hdr.checksum)
		return 0;
	return 1;
}

int store_segment_scan(struct store *s, struct store_segment *seg, store_seg_scan_fn fn, void *arg,
		       uint64_t *end)
{
	struct seg_reader r = { .fd = seg->fd, .file_size = atomic_load(&seg->size) };
	uint64_t off = STORE_SEG_HDR;
	int rc = 0;

	r.cap = SCAN_BUF;
	r.buf = malloc(r.cap);
	if (!r.buf)
		return -ENOMEM;
	while (off < r.file_size) {
		struct store_scan_rec rec;
		bool bad_header;
		int ok = check_record(&r, off, &rec, &bad_header);

		if (ok < 0) {
			rc = ok;
			break;
		}
		rec.corrupt = false;
		if (ok == 0) {
			/* A failing record followed by a good one is damage inside the
			 * segment, not a torn tail: keep it so its key reads as damaged. */
			struct store_scan_rec next;
			bool nb;
			uint64_t len = bad_header ? 0 : store_rec_size(&rec.hdr);

			if (!len || off + len >= r.file_size ||
			    check_record(&r, off + len, &next, &nb) != 1)
				break;
			/* check_record may have moved the buffer: read this one again */
			if (check_record(&r, off, &rec, &bad_header) < 0)
				break;
			rec.corrupt = true;
			atomic_fetch_add(&s->corrupt_records, 1);
			store_logf(s, STORE_LOG_ERROR,
				   "segment %06u: record at offset %llu fails its checksum; kept, "
				   "reads of its key will fail",
				   seg->id, (unsigned long long)off);
		}
		if (fn) {
			rc = fn(arg, &rec);
			if (rc)
				break;
		}
		off += rec.len;
	}
	free(r.buf);
	*end = off;
	return rc;
}

int store_segment_wellformed_after(struct store *s, struct store_segment *seg, uint64_t off)
{
	uint64_t size = atomic_load(&seg->size);
	uint8_t hdr[STORE_REC_HDR];
	int n = 0;

	(void)s;
	while (off + STORE_REC_HDR_V1 <= size && n < 2) {
		struct store_rec_hdr h;
		ssize_t got = store_read_full(seg->fd, hdr, sizeof(hdr), (off_t)off);

		if (got < 0 || store_rec_decode(hdr, (size_t)got, &h) < 0 ||
		    off + store_rec_size(&h) > size)
			break;
		n++;
		off += store_rec_size(&h);
	}
	return n;
}
