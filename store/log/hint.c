/*
 * hint - the NNNNNN.hint file of a sealed segment: for every record, the
 * key, its place, stamp and value hash, so the keydir is rebuilt at open
 * without reading values. The one idea: a hint is all or nothing. It is
 * written whole (temp file, fsync, rename) and checked whole (magic, version,
 * segment id, every entry fits the segment, checksum) before any entry is
 * used; when it is missing or fails, open scans the segment instead.
 * Version 2 entries carry the record's expiry time; version 1 files (written
 * before) are still read, with no expiry. Format: docs/FORMAT.md ("Hint files").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash_i.h"
#include "store_i.h"
#include "../endian.h"
#include "../xxh_i.h"

#define HINT_MAGIC "CASKHNT\0"
#define HINT_VERSION 2
#define HINT_HDR 16
#define HINT_ENTRY_FIXED_V1 30
#define HINT_ENTRY_FIXED 34
#define HINT_TRAILER 16

void store_hint_reset(struct store_hintbuf *hb)
{
	hb->len = 0;
	hb->count = 0;
	hb->broken = false;
}

void store_hint_add(struct store_hintbuf *hb, const struct store_rec_hdr *h, const void *key,
		    uint32_t off, uint32_t len)
{
	size_t need = HINT_ENTRY_FIXED + h->key_len;
	uint8_t *p;

	if (hb->len + need > hb->cap) {
		size_t cap = hb->cap ? hb->cap * 2 : 64 * 1024;
		while (cap < hb->len + need)
			cap *= 2;
		uint8_t *nb = realloc(hb->buf, cap);
		if (!nb) {
			hb->broken = true;
			return;
		}
		hb->buf = nb;
		hb->cap = cap;
	}
	p = hb->buf + hb->len;
	put_le64(p, h->stamp);
	put_le64(p + 8, h->value_hash);
	put_le32(p + 16, h->node);
	put_le32(p + 20, off);
	put_le32(p + 24, len);
	p[28] = h->flags;
	p[29] = (uint8_t)h->key_len;
	put_le32(p + 30, h->expires);
	memcpy(p + HINT_ENTRY_FIXED, key, h->key_len);
	hb->len += need;
	hb->count++;
}

int store_hint_write(struct store *s, uint32_t id, const struct store_hintbuf *hb)
{
	char path[4096], tmp[4200];
	uint8_t head[HINT_HDR], tail[HINT_TRAILER];
	XXH3_state_t st;
	int fd, rc = 0;

	store_seg_path(s, id, "hint", path, sizeof(path));
	if (hb->broken) {
		/* A hint missing entries would lose keys at the next open; without one,
		 * open scans the segment instead. */
		store_logf(s, STORE_LOG_WARN, "no hint written for %s (out of memory)", path);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	memcpy(head, HINT_MAGIC, 8);
	put_le32(head + 8, HINT_VERSION);
	put_le32(head + 12, id);
	put_le64(tail, hb->count);
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, head, sizeof(head));
	if (hb->len)
		XXH3_64bits_update(&st, hb->buf, hb->len);
	XXH3_64bits_update(&st, tail, 8);
	put_le64(tail + 8, XXH3_64bits_digest(&st));

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = store_write_full(fd, head, sizeof(head), 0);
	if (rc == 0 && hb->len)
		rc = store_write_full(fd, hb->buf, hb->len, HINT_HDR);
	if (rc == 0)
		rc = store_write_full(fd, tail, sizeof(tail), (off_t)(HINT_HDR + hb->len));
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc == 0 && fsync(s->logdir_fd) < 0)
		rc = -errno;
	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot write hint %s: %s", path, strerror(-rc));
		unlink(tmp);
	}
	return rc;
}

int store_hint_load(struct store *s, struct store_segment *seg,
		    int (*fn)(void *arg, const struct store_hint_entry *e), void *arg)
{
	char path[4096];
	struct stat st;
	uint8_t *buf = NULL;
	uint64_t seg_size = atomic_load(&seg->size), count, n = 0;
	size_t len, pos, fixed;
	ssize_t got;
	uint32_t version;
	int fd, rc = 0;

	store_seg_path(s, seg->id, "hint", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (st.st_size < HINT_HDR + HINT_TRAILER || st.st_size > (off_t)1 << 34) {
		rc = -EBADMSG;
		goto out;
	}
	len = (size_t)st.st_size;
	buf = malloc(len);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	got = store_read_full(fd, buf, len, 0);
	if (got < 0 || (size_t)got != len) {
		rc = got < 0 ? (int)got : -EBADMSG;
		goto out;
	}
	version = get_le32(buf + 8);
	fixed = version == 1 ? HINT_ENTRY_FIXED_V1 : HINT_ENTRY_FIXED;
	if (memcmp(buf, HINT_MAGIC, 8) != 0 || version < 1 || version > HINT_VERSION ||
	    get_le32(buf + 12) != seg->id ||
	    store_hash_bulk(buf, len - 8) != get_le64(buf + len - 8)) {
		rc = -EBADMSG;
		goto out;
	}
	count = get_le64(buf + len - HINT_TRAILER);
	/* First pass: check every entry fits the file and the segment. */
	for (pos = HINT_HDR; pos < len - HINT_TRAILER; n++) {
		const uint8_t *p = buf + pos;
		uint32_t off, rlen;
		uint8_t klen;

		if (len - HINT_TRAILER - pos < fixed) {
			rc = -EBADMSG;
			goto out;
		}
		off = get_le32(p + 20);
		rlen = get_le32(p + 24);
		klen = p[29];
		if (klen == 0 || len - HINT_TRAILER - pos - fixed < klen || off < STORE_SEG_HDR ||
		    (uint64_t)off + rlen > seg_size || rlen < STORE_REC_HDR_V1 + (uint32_t)klen ||
		    (version > 1 && (p[28] & STORE_REC_TOMBSTONE) && get_le32(p + 30))) {
			rc = -EBADMSG;
			goto out;
		}
		pos += fixed + klen;
	}
	if (n != count) {
		rc = -EBADMSG;
		goto out;
	}
	for (pos = HINT_HDR; pos < len - HINT_TRAILER;) {
		const uint8_t *p = buf + pos;
		struct store_hint_entry e = { 0 };

		e.hdr.stamp = get_le64(p);
		e.hdr.value_hash = get_le64(p + 8);
		e.hdr.node = get_le32(p + 16);
		e.off = get_le32(p + 20);
		e.len = get_le32(p + 24);
		e.hdr.flags = p[28];
		e.hdr.key_len = p[29];
		e.hdr.expires = version > 1 ? get_le32(p + 30) : 0;
		e.key = p + fixed;
		rc = fn(arg, &e);
		if (rc)
			goto out;
		pos += fixed + e.hdr.key_len;
	}
out:
	free(buf);
	close(fd);
	return rc;
}
