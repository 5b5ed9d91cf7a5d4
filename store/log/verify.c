/*
 * verify - what fsck asks of the log: every record of every segment read
 * back and checked against its checksum, and every sealed segment's hint
 * file checked against the records it names (none left out, none invented,
 * each describing its record exactly). The one idea: verification reads
 * through a reference on each segment in turn, so reads and writes go on.
 * Formats: docs/FORMAT.md ("Segments", "Hint files").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store_i.h"

/* One hint entry, kept to compare with the record it names. */
struct hint_rec {
	uint32_t off, len;
	uint64_t stamp, value_hash;
	uint32_t node, expires;
	uint8_t flags, klen;
	uint8_t key[STORE_KEY_MAX];
	bool matched;
};

struct verify_ctx {
	uint64_t records, bad;
	uint32_t seg;
	store_verify_fn fn;
	void *arg;
	struct hint_rec *hints; /* of the segment being verified, sorted by offset */
	size_t nhints, caphints;
};

static void problem(struct verify_ctx *c, uint64_t off, const char *what)
{
	c->bad++;
	if (c->fn)
		c->fn(c->arg, c->seg, off, what);
}

static int collect_hint(void *arg, const struct store_hint_entry *e)
{
	struct verify_ctx *c = arg;

	if (c->nhints == c->caphints) {
		size_t cap = c->caphints ? c->caphints * 2 : 256;
		struct hint_rec *n = realloc(c->hints, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		c->hints = n;
		c->caphints = cap;
	}
	struct hint_rec *h = &c->hints[c->nhints++];
	h->off = e->off;
	h->len = e->len;
	h->stamp = e->hdr.stamp;
	h->value_hash = e->hdr.value_hash;
	h->node = e->hdr.node;
	h->flags = e->hdr.flags;
	h->expires = e->hdr.expires;
	h->klen = (uint8_t)e->hdr.key_len;
	memcpy(h->key, e->key, e->hdr.key_len);
	h->matched = false;
	return 0;
}

static int verify_rec(void *arg, const struct store_scan_rec *r)
{
	struct verify_ctx *c = arg;

	c->records++;
	if (r->corrupt)
		problem(c, r->off, "record fails its checksum");
	if (!c->hints || r->corrupt)
		return 0;
	/* the hint must describe this very record (hints are in offset order) */
	size_t lo = 0, hi = c->nhints;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->hints[mid].off < r->off)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct hint_rec *h = lo < c->nhints && c->hints[lo].off == r->off ? &c->hints[lo] : NULL;
	if (!h) {
		problem(c, r->off, "the hint file leaves out this record");
		return 0;
	}
	h->matched = true;
	if (h->len != r->len || h->stamp != r->hdr.stamp || h->node != r->hdr.node ||
	    h->value_hash != r->hdr.value_hash || h->flags != r->hdr.flags ||
	    h->expires != r->hdr.expires || h->klen != r->hdr.key_len ||
	    memcmp(h->key, r->key, h->klen) != 0)
		problem(c, r->off, "the hint file disagrees with this record");
	return 0;
}

static int cmp_hint(const void *a, const void *b)
{
	uint32_t x = ((const struct hint_rec *)a)->off, y = ((const struct hint_rec *)b)->off;
	return x < y ? -1 : x > y;
}

int store_verify(struct store *s, store_verify_fn fn, void *arg, uint64_t *records, uint64_t *bad)
{
	struct verify_ctx c = { .fn = fn, .arg = arg };
	int rc = store_sync(s); /* the append buffer into the file first */

	for (uint32_t id = 0; rc == 0; id++) {
		struct store_segment *seg = NULL;
		uint64_t end, size;

		pthread_rwlock_rdlock(&s->lock);
		if (id >= s->segs_cap) {
			pthread_rwlock_unlock(&s->lock);
			break;
		}
		seg = s->segs[id];
		if (seg)
			store_segment_ref(seg);
		pthread_rwlock_unlock(&s->lock);
		if (!seg)
			continue;
		c.seg = id;
		c.nhints = 0;
		bool hinted = false;
		if (seg->sealed) {
			int hr = store_hint_load(s, seg, collect_hint, &c);
			if (hr == -EBADMSG)
				problem(&c, 0,
					"the hint file is damaged or does not fit the segment");
			else if (hr == -ENOENT)
				problem(&c, 0, "the sealed segment has no hint file");
			else if (hr == 0)
				hinted = true;
			else if (hr < 0)
				rc = hr;
			if (hinted)
				qsort(c.hints, c.nhints, sizeof(*c.hints), cmp_hint);
		}
		struct hint_rec *keep = c.hints;
		if (!hinted)
			c.hints = NULL;
		size = atomic_load(&seg->flushed);
		if (rc == 0)
			rc = store_segment_scan(s, seg, verify_rec, &c, &end);
		if (rc == 0 && end < size)
			problem(&c, end, "unreadable from here to the end of the segment");
		for (size_t i = 0; hinted && i < c.nhints; i++)
			if (!c.hints[i].matched)
				problem(&c, c.hints[i].off,
					"the hint file names a record that is not there");
		c.hints = keep;
		store_segment_unref(seg);
	}
	free(c.hints);
	*records = c.records;
	*bad = c.bad;
	return rc;
}
