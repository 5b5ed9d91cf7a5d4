/*
 * recover - rebuilding the keydir at open. Segments are loaded in id order,
 * each from its hint file when that checks out, else by a verifying scan
 * (which writes a new hint for a sealed segment). The one idea: only the
 * tail of the active segment may be torn, and only a torn write is cut; whole
 * records that fail their checksums there stop the open instead of being cut,
 * because cutting them could destroy data. A last segment of an older format
 * version is sealed once read, so new records (version 2) never go into a
 * file whose header promises only version 1 ones. Formats: docs/FORMAT.md.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_i.h"

struct load_ctx {
	struct store *s;
	uint32_t seg;
	struct store_hintbuf *hint; /* rebuilt while scanning */
};

static int load_one(struct load_ctx *c, const struct store_rec_hdr *h, const void *key,
		    uint32_t off, uint32_t len)
{
	int rc = store_index_record(c->s, store_key_hash(key, h->key_len), key, h, c->seg, off, len,
				    true);

	store_clock_observe(&c->s->clock, h->stamp);
	return rc < 0 ? rc : 0;
}

static int load_hint_entry(void *arg, const struct store_hint_entry *e)
{
	return load_one(arg, &e->hdr, e->key, e->off, e->len);
}

static int load_scan_rec(void *arg, const struct store_scan_rec *r)
{
	struct load_ctx *c = arg;

	store_hint_add(c->hint, &r->hdr, r->key, r->off, r->len);
	return load_one(c, &r->hdr, r->key, r->off, r->len);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Lists segment ids in ascending order; removes leftover temp files. */
static int list_segments(struct store *s, uint32_t **ids, size_t *n, uint64_t *hint_bytes)
{
	DIR *d = opendir(s->logdir);
	struct dirent *de;
	uint32_t *v = NULL;
	size_t cnt = 0, cap = 0;

	*hint_bytes = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long id = strtoul(de->d_name, &end, 10);
		size_t nl = strlen(de->d_name);

		if (nl > 4 && strcmp(de->d_name + nl - 4, ".tmp") == 0) {
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (end == de->d_name || id == 0 || id >= UINT32_MAX - 1)
			continue;
		if (strcmp(end, ".hint") == 0) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, 0) == 0)
				*hint_bytes += (uint64_t)st.st_size;
			continue;
		}
		if (strcmp(end, ".cask") != 0)
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			uint32_t *nv = realloc(v, cap * sizeof(*nv));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = (uint32_t)id;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_u32);
	*ids = v;
	*n = cnt;
	return 0;
}

/* Scans a segment without a usable hint. The active one loses a torn tail;
 * a sealed one is left as it is and gets a new hint. */
static int load_by_scan(struct store *s, struct store_segment *seg, bool active)
{
	struct store_hintbuf tmp = { 0 };
	struct load_ctx c = { .s = s, .seg = seg->id, .hint = active ? &s->hint : &tmp };
	uint64_t size = atomic_load(&seg->size), end;
	int rc = store_segment_scan(s, seg, load_scan_rec, &c, &end);

	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot scan segment %06u: %s", seg->id,
			   strerror(-rc));
		free(tmp.buf);
		return rc;
	}
	if (end < size && active && store_segment_wellformed_after(s, seg, end) >= 2) {
		/* Whole records that fail their checksums are not a torn write:
		 * cutting them could destroy data (a wrong file, a checksum bug). */
		store_logf(s, STORE_LOG_ERROR,
			   "segment %06u: %llu bytes from offset %llu are whole records that fail "
			   "their checksums, not a torn write; refusing to cut them (move the "
			   "segment aside or run fsck)",
			   seg->id, (unsigned long long)(size - end), (unsigned long long)end);
		free(tmp.buf);
		return -EBADMSG;
	}
	if (end < size && active) {
		store_logf(s, STORE_LOG_WARN,
			   "segment %06u: cut %llu bytes of torn or failing records at offset %llu",
			   seg->id, (unsigned long long)(size - end), (unsigned long long)end);
		if (ftruncate(seg->fd, (off_t)end) < 0 || fdatasync(seg->fd) < 0) {
			rc = -errno;
			store_logf(s, STORE_LOG_ERROR, "cannot cut segment %06u: %s", seg->id,
				   strerror(-rc));
			return rc;
		}
		atomic_fetch_add(&s->cut_bytes, size - end);
		atomic_store(&seg->size, end);
		atomic_store(&seg->flushed, end);
	} else if (end < size) {
		store_logf(
		    s, STORE_LOG_ERROR,
		    "segment %06u: %llu bytes from offset %llu are unreadable; kept for fsck",
		    seg->id, (unsigned long long)(size - end), (unsigned long long)end);
	}
	if (!active) {
		store_hint_write(s, seg->id, &tmp);
		seg->sealed = true;
	}
	free(tmp.buf);
	return 0;
}

/* Seals the last segment, read as the active one, because its header is of
 * an older version: a new segment is started after it. */
static int seal_old(struct store *s, struct store_segment *seg)
{
	int rc = 0;

	if (fdatasync(seg->fd) < 0)
		rc = -errno;
	if (rc == 0)
		rc = store_hint_write(s, seg->id, &s->hint);
	store_hint_reset(&s->hint);
	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot seal segment %06u (format version %u): %s",
			   seg->id, seg->version, strerror(-rc));
		return rc;
	}
	seg->sealed = true;
	store_logf(s, STORE_LOG_INFO,
		   "segment %06u is in format version %u: sealed, new records go to a new segment",
		   seg->id, seg->version);
	return 0;
}

int store_recover(struct store *s)
{
	uint32_t *ids = NULL, next_id = 1;
	size_t n = 0;
	uint64_t hint_bytes;
	int rc = list_segments(s, &ids, &n, &hint_bytes);

	if (rc < 0) {
		store_logf(s, STORE_LOG_ERROR, "cannot list %s: %s", s->logdir, strerror(-rc));
		return rc;
	}
	rc = store_kd_create((size_t)(hint_bytes / 40), &s->kd);
	if (rc == 0)
		rc = store_htree_create(&s->tree);
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool last = i + 1 == n;
		struct store_segment *seg;
		struct load_ctx c = { .s = s, .seg = ids[i] };

		next_id = ids[i] + 1;
		rc = store_segment_open(s, ids[i], last, &seg);
		if (rc == -EBADMSG && !last) {
			rc = 0; /* logged; the file stays for fsck */
			continue;
		}
		if (rc < 0)
			break;
		rc = store_table_set(s, seg->id, seg);
		if (rc < 0) {
			store_segment_unref(seg);
			break;
		}
		rc = store_hint_load(s, seg, load_hint_entry, &c);
		if (rc == 0) {
			seg->sealed = true;
			continue;
		}
		if (rc != -ENOENT)
			store_logf(s, STORE_LOG_WARN,
				   "hint of segment %06u is unusable (%s); scanning", seg->id,
				   strerror(-rc));
		rc = load_by_scan(s, seg, last);
		if (rc == 0 && last && seg->version < STORE_SEG_VERSION)
			rc = seal_old(s, seg);
		else if (rc == 0 && last)
			s->active = seg;
	}
	free(ids);
	if (rc == 0 && !s->active) {
		struct store_segment *seg;
		rc = store_segment_create(s, next_id, &seg);
		if (rc == 0) {
			rc = store_table_set(s, seg->id, seg);
			if (rc < 0)
				store_segment_unref(seg);
			else
				s->active = seg;
		}
	}
	return rc;
}
