/*
 * hashx - the read-only extended attributes user.caskfs.* of a file: its
 * content hash (meta_content_hash_read: over the chunk map, reading only a
 * slot that was clipped or extended), the
 * chunks it is stored as, and which nodes hold each of them. They are
 * answered when asked for by name and never listed, so rsync -X and cp -a
 * do not copy them; setting or removing one is EPERM. A file with writes
 * not committed yet is committed first, so the answer is what a reader
 * sees. docs/USAGE.md ("What a file is made of"), docs/FORMAT.md ("Content
 * hash").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon_i.h"

/* The largest value the kernel takes for an xattr (XATTR_SIZE_MAX). */
#define VALUE_MAX 65536

struct text {
	char buf[VALUE_MAX + 1];
	size_t len;
	bool over;
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->over)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(t->buf) - t->len)
		t->over = true;
	else
		t->len += (size_t)n;
}

bool fs_hashx_name(const char *name)
{
	return strncmp(name, FS_HASHX_PREFIX, sizeof(FS_HASHX_PREFIX) - 1) == 0;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

struct where {
	struct text *t;
	const char *sep;
};

static void replica_word(void *arg, const char *addr, bool self, int state)
{
	struct where *w = arg;

	add(w->t, "%s%s%s%s", w->sep, addr, self ? "(this)" : "",
	    state > 0 ? "" : state == 0 ? "=missing" : "=down");
	w->sep = " ";
}

/* One line per slot that holds bytes: "IDX LEN ID" (chunks), or "ID ADDR
 * ADDR ..." naming the replicas, =missing or =down after those that do not
 * hold it or cannot say (replicas). */
static void list_chunks(struct fs *fs, const struct meta_inode *in, bool where, struct text *t)
{
	for (uint32_t i = 0; i < in->nchunks && !t->over; i++) {
		uint32_t idx, len;
		const uint8_t *id;
		char key[FS_CHUNK_KEY_LEN + 1];

		if (!meta_slot_get(in, i, &idx, &len, &id))
			continue;
		fs_chunk_key(id, key);
		if (!where) {
			add(t, "%u %u %s\n", idx, len, key + 2);
			continue;
		}
		struct where w = { t, "" };
		add(t, "%s ", key + 2);
		cluster_locate(fs->node.cluster, key, FS_CHUNK_KEY_LEN, replica_word, &w);
		add(t, "\n");
	}
}

struct slot_reader {
	struct fs *fs;
	uint8_t *buf; /* META_CHUNK_SIZE bytes, allocated at the first slot read */
};

/* meta_content_hash_read's callback: the id of the bytes slot c reads, its
 * chunk cut or padded with zeros to extent, as a file written afresh with
 * those bytes stores it. A slot that reads exactly its stored length is
 * its key unless its chunk is longer (a truncate clipped it): one stat, of
 * the local keydir on a node that holds the chunk. Only a slot clipped or
 * extended is read (at most 1 MiB). */
static int slot_bytes(void *arg, const struct meta_chunk *c, uint32_t extent,
		      uint8_t id[META_CHUNK_KEY])
{
	struct slot_reader *r = arg;
	char key[FS_CHUNK_KEY_LEN + 1];
	struct store_meta sm;
	ssize_t n;

	if (c->len == extent) {
		fs_chunk_key(c->key, key);
		/* a chunk that cannot be asked about is taken for what the map says */
		if (cluster_stat(r->fs->node.cluster, key, FS_CHUNK_KEY_LEN, &sm) != 0 ||
		    sm.size == c->len) {
			memcpy(id, c->key, META_CHUNK_KEY);
			return 0;
		}
	}
	if (!r->buf && !(r->buf = malloc(META_CHUNK_SIZE)))
		return -ENOMEM;
	n = fs_chunk_read(r->fs->cache, r->fs->node.cluster, c->key, r->buf, META_CHUNK_SIZE);
	if (n < 0)
		return n == -ENOENT ? -EIO : (int)n;
	size_t keep = (size_t)n < c->len ? (size_t)n : c->len;
	if (keep > extent)
		keep = extent;
	memset(r->buf + keep, 0, extent - keep);
	fs_chunk_id(r->buf, extent, id);
	return 0;
}

ssize_t fs_hashx_get(struct fs *fs, uint64_t ino, const char *name, char *buf, size_t cap)
{
	const char *what = name + sizeof(FS_HASHX_PREFIX) - 1;
	bool hash = strcmp(what, "hash") == 0, chunks = strcmp(what, "chunks") == 0,
	     replicas = strcmp(what, "replicas") == 0;
	struct meta_inode in = { 0 };
	struct fs_file *f;
	struct text *t;
	int rc;

	if (!hash && !chunks && !replicas)
		return -ENODATA;
	if ((f = fs_file_find(fs, ino))) { /* what a reader sees: buffered writes too */
		rc = fs_file_commit(fs, f);
		fs_file_put(fs, f);
		if (rc)
			return rc;
	}
	rc = meta_getattr(fs->meta, ino, true, &in);
	if (rc == 0 && !S_ISREG(in.mode))
		rc = -ENODATA;
	if (rc) {
		meta_inode_release(&in);
		return rc;
	}
	if (!(t = malloc(sizeof(*t)))) {
		meta_inode_release(&in);
		return -ENOMEM;
	}
	t->len = 0;
	t->over = false;
	if (hash) {
		uint8_t h[META_CONTENT_HASH];
		struct slot_reader r = { fs, NULL };
		rc = meta_content_hash_read(&in, slot_bytes, &r, h);
		free(r.buf);
		if (rc < 0) {
			meta_inode_release(&in);
			free(t);
			return rc;
		}
		hex(h, sizeof(h), t->buf);
		t->len = 2 * sizeof(h);
	} else {
		list_chunks(fs, &in, replicas, t);
	}
	meta_inode_release(&in);
	ssize_t n = t->over || t->len > VALUE_MAX ? -E2BIG : (ssize_t)t->len;
	if (n >= 0 && cap && (size_t)n > cap)
		n = -ERANGE;
	else if (n >= 0 && cap)
		memcpy(buf, t->buf, (size_t)n);
	free(t);
	return n;
}
