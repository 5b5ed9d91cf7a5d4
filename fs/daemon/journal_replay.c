/*
 * journal_replay - the fsync journal applied at mount, before anything is
 * served. The one idea: a record is what a commit of its file would have
 * written, so replaying is rebuilding the file state the record describes
 * and committing it. Records are taken in seq order, those the namespace
 * already holds (seq at most meta_folded's) skipped; each one's map, size
 * and mtime replace the state's, and each buffered slot gets its bytes
 * applied over the slot as its run of records began it (the chunk the map
 * names, or the buffer the run's earlier records built). Then every file
 * is committed, the log and the namespace synced, and the journal emptied.
 * Format: docs/FORMAT.md ("Fsync journal").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file_i.h"
#include "journal_i.h"
#include "store/endian.h"

struct replay {
	struct fs *fs;
	struct fs_file **files; /* the states replayed into, one reference each */
	size_t n, cap;
	uint64_t applied;
};

static int say(uint64_t ino, uint64_t seq, const char *what, int rc)
{
	fprintf(stderr, "caskfs: fsync journal: inode %llu, record %llu: %s%s%s\n",
		(unsigned long long)ino, (unsigned long long)seq, what, rc ? ": " : "",
		rc ? strerror(-rc) : "");
	return rc ? rc : -EBADMSG;
}

/* The state of ino taken for the replay (once), or NULL with *rc (0: the
 * inode is gone, its records are moot). */
static struct fs_file *state_of(struct replay *r, uint64_t ino, int *rc)
{
	struct fs_file *f;

	for (size_t i = 0; i < r->n; i++)
		if (r->files[i]->node.ino == ino)
			return r->files[i];
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct fs_file **n = realloc(r->files, cap * sizeof(*n));
		if (!n) {
			*rc = -ENOMEM;
			return NULL;
		}
		r->files = n;
		r->cap = cap;
	}
	*rc = fs_file_get(r->fs, ino, &f);
	if (*rc == -ENOENT || *rc == -EISDIR)
		*rc = 0;
	if (*rc)
		return NULL;
	r->files[r->n++] = f;
	return f;
}

/* The record's map into f->map. */
static int take_map(struct fs_file *f, const struct fs_journal_rec *rec)
{
	meta_map_release(&f->map);
	for (uint32_t i = 0; i < rec->nmap; i++) {
		const uint8_t *p = rec->map + (size_t)i * FS_JOURNAL_SLOT;
		struct meta_chunk c = { .idx = get_le32(p), .len = get_le32(p + 4) };
		memcpy(c.key, p + 8, META_CHUNK_KEY);
		int rc = meta_map_set(&f->map, &c);
		if (rc)
			return rc;
	}
	return 0;
}

static struct fs_dirty *buffer_of(struct fs_file *f, uint32_t idx)
{
	for (uint32_t i = 0; i < f->ndirty; i++)
		if (f->dirty[i].idx == idx)
			return &f->dirty[i];
	return NULL;
}

/* One record into f (locked). A buffer's jhi marks it as one of the
 * record's (its new bytes matter only between records of a running mount). */
static int apply_to(struct replay *r, struct fs_file *f, const struct fs_journal_rec *rec)
{
	size_t pos = 0;
	int rc = take_map(f, rec);

	if (rc)
		return say(rec->ino, rec->seq, "cannot take its chunk map", rc);
	f->size = rec->size;
	if (rec->has_mtime)
		f->mtime = rec->mtime;
	f->written = rec->has_mtime;
	for (uint32_t i = 0; i < f->ndirty; i++)
		f->dirty[i].jhi = 0;
	for (uint32_t k = 0; k < rec->ndirty; k++) {
		struct fs_journal_dirty ds;
		fs_journal_dirty_next(rec, &pos, &ds);
		uint64_t chain = ds.chain ? ds.chain : rec->seq;
		struct fs_dirty *d = buffer_of(f, ds.idx);
		if (d && d->jchain != chain) {
			fs_file_dirty_free(r->fs, f, d);
			d = NULL;
		}
		if (!d && ds.chain)
			return say(rec->ino, rec->seq, "the first record of its run is missing", 0);
		if (!d) {
			d = fs_file_dirty_load(r->fs, f, ds.idx, &rc);
			if (!d)
				return say(rec->ino, rec->seq,
					   "cannot read the slot it writes over", rc);
			d->jchain = chain;
		}
		memcpy(d->buf + ds.off, ds.bytes, ds.n);
		d->len = ds.len;
		d->jlo = 0;
		d->jhi = 1;
	}
	/* a slot buffered before and not in this record was stored since: the
	 * map says what it holds */
	for (uint32_t i = f->ndirty; i-- > 0;)
		if (!f->dirty[i].jhi)
			fs_file_dirty_free(r->fs, f, &f->dirty[i]);
	f->changed = true;
	f->jseq = rec->seq;
	r->applied++;
	return 0;
}

static int apply(void *arg, const struct fs_journal_rec *rec)
{
	struct replay *r = arg;
	struct fs_file *f;
	uint64_t folded;
	int rc = meta_folded_get(r->fs->meta, rec->ino, &folded);

	if (rc && rc != -ENOENT)
		return say(rec->ino, rec->seq, "cannot read what the namespace holds", rc);
	if (rec->seq <= folded || rec->ndirty > 16)
		return rec->ndirty > 16 ? say(rec->ino, rec->seq, "too many slots", 0) : 0;
	f = state_of(r, rec->ino, &rc);
	if (!f)
		return rc;
	pthread_mutex_lock(&f->mu);
	rc = apply_to(r, f, rec);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int fs_journal_replay(struct fs *fs)
{
	struct replay r = { .fs = fs };
	uint64_t floor = 0;
	int rc = fs_journal_open(fs->data_dir, &fs->journal);

	if (rc)
		return rc;
	rc = fs_journal_scan(fs->journal, apply, &r);
	for (size_t i = 0; i < r.n; i++) {
		struct fs_file *f = r.files[i];
		int c = 0;
		pthread_mutex_lock(&f->mu);
		if (rc == 0 && (c = fs_file_commit_locked(fs, f, true)) != 0)
			say(f->node.ino, f->jseq, "cannot commit it", c);
		if (rc) { /* nothing of a failed replay is kept in memory */
			while (f->ndirty)
				fs_file_dirty_free(fs, f, &f->dirty[f->ndirty - 1]);
			f->changed = false;
		}
		pthread_mutex_unlock(&f->mu);
		if (rc == 0)
			rc = c;
		fs_file_put(fs, f);
	}
	free(r.files);
	/* the records' content durable, then the journal emptied, and only then
	 * the namespace's notes of them dropped */
	if (rc == 0)
		rc = fs_sync_all(fs);
	if (rc == 0)
		rc = meta_folded_max(fs->meta, &floor);
	if (rc == 0)
		rc = fs_journal_reset(fs->journal, floor > fs_journal_max_seq(fs->journal)
						       ? floor
						       : fs_journal_max_seq(fs->journal));
	if (rc == 0)
		rc = meta_folded_prune(fs->meta, UINT64_MAX);
	if (rc == 0 && r.applied)
		fprintf(stderr, "caskfs: fsync journal: %llu records replayed into %zu files\n",
			(unsigned long long)r.applied, r.n);
	if (rc) {
		fprintf(stderr,
			"caskfs: the fsync journal (%s/journal.0, journal.1) could not be "
			"replayed; it is left as it is\n",
			fs->data_dir);
		fs_journal_close(fs->journal);
		fs->journal = NULL;
	}
	return rc;
}

struct pending {
	struct meta *meta;
	uint64_t n;
};

static int count_pending(void *arg, const struct fs_journal_rec *rec)
{
	struct pending *p = arg;
	uint64_t folded = 0;
	int rc = meta_folded_get(p->meta, rec->ino, &folded);

	if (rc && rc != -ENOENT)
		return rc;
	if (rec->seq > (rc ? 0 : folded))
		p->n++;
	return 0;
}

int fs_journal_pending(const char *data_dir, struct meta *m, uint64_t *records)
{
	struct pending p = { m, 0 };
	struct fs_journal *j;
	char path[4096];
	int rc;

	*records = 0;
	snprintf(path, sizeof(path), "%s/journal.0", data_dir);
	if (access(path, F_OK) != 0) {
		snprintf(path, sizeof(path), "%s/journal.1", data_dir);
		if (access(path, F_OK) != 0)
			return 0; /* a DATA_DIR no mount has used since the journal came */
	}
	if ((rc = fs_journal_open(data_dir, &j)) < 0)
		return rc;
	rc = fs_journal_scan(j, count_pending, &p);
	fs_journal_close(j);
	*records = p.n;
	return rc;
}
