/*
 * file_sync - fsync of a file state. The one idea: what a commit would
 * write (size, mtime, chunk map) and the bytes written into each buffered
 * slot since the file's last record go into one fsync journal record, and
 * one flush of the journal makes them durable; the chunks and the
 * namespace are written later by the committer, as for writes never
 * fsynced. When the journal cannot serve (no journal, peers to replicate
 * to, a namespace change not yet durable, a record too large, the journal
 * full) the file is committed and the log and the namespace are synced, as
 * before. Design: docs/DESIGN-NOTES.md; the record: docs/FORMAT.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "file_i.h"
#include "journal_i.h"
#include "store/endian.h"

int fs_sync_all(struct fs *fs)
{
	/* log first: metadata never names a chunk not on disk */
	uint64_t txn = meta_last_txn(fs->meta);
	int rc = store_sync(fs->store);

	if (rc == 0 && txn != atomic_load(&fs->meta_synced)) {
		rc = meta_sync(fs->meta);
		uint64_t was = atomic_load(&fs->meta_synced);
		while (rc == 0 && txn > was &&
		       !atomic_compare_exchange_weak(&fs->meta_synced, &was, txn))
			;
	}
	return rc;
}

/* The bytes of d the next record carries. */
static uint32_t new_bytes(const struct fs_dirty *d)
{
	return d->jhi > d->jlo ? d->jhi - d->jlo : 0;
}

/* The record's length for f, or 0 when f's record would be too large. */
static size_t record_len(const struct fs_file *f)
{
	size_t len = FS_JOURNAL_HEAD + (size_t)f->map.n * FS_JOURNAL_SLOT + 8, bytes = 0;

	if (f->map.n > 4096 || f->ndirty > 16)
		return 0;
	for (uint32_t i = 0; i < f->ndirty; i++) {
		bytes += new_bytes(&f->dirty[i]);
		len += FS_JOURNAL_DIRTY + (new_bytes(&f->dirty[i]) + 7u) / 8 * 8;
	}
	return bytes > FS_JOURNAL_BYTES_MAX ? 0 : len;
}

static void encode(const struct fs_file *f, uint8_t *buf, size_t len)
{
	uint8_t *p = buf + FS_JOURNAL_HEAD;

	fs_journal_encode_head(buf, len, f->node.ino, f->size, f->written ? &f->mtime : NULL,
			       f->map.n, f->ndirty);
	for (uint32_t i = 0; i < f->map.n; i++, p += FS_JOURNAL_SLOT) {
		put_le32(p, f->map.v[i].idx);
		put_le32(p + 4, f->map.v[i].len);
		memcpy(p + 8, f->map.v[i].key, META_CHUNK_KEY);
	}
	for (uint32_t i = 0; i < f->ndirty; i++) {
		const struct fs_dirty *d = &f->dirty[i];
		uint32_t n = new_bytes(d), off = n ? d->jlo : 0;
		put_le32(p, d->idx);
		put_le32(p + 4, d->len);
		put_le64(p + 8, d->jchain);
		put_le32(p + 16, off);
		put_le32(p + 20, n);
		memcpy(p + FS_JOURNAL_DIRTY, d->buf + off, n);
		memset(p + FS_JOURNAL_DIRTY + n, 0, (n + 7u) / 8 * 8 - n);
		p += FS_JOURNAL_DIRTY + (n + 7u) / 8 * 8;
	}
}

/*
 * Writes f's record (f locked): 0 with *seq, 1 when the journal cannot
 * take it (the caller commits instead), or -errno of making the chunks its
 * map names durable.
 */
static int journal_record(struct fs *fs, struct fs_file *f, uint64_t *seq)
{
	size_t len;
	uint8_t *buf;
	int rc;

	/* peers are owed the bytes (a commit replicates them), and a
	 * namespace change not yet durable (a create, a chmod) must be synced */
	if (!fs->journal || cluster_nodes(fs->node.cluster) != 1 ||
	    meta_last_txn(fs->meta) != atomic_load(&fs->meta_synced) || !(len = record_len(f)))
		return 1;
	/* the chunks the record names are durable before it is */
	rc = store_sync_through(fs->store, f->log_through);
	if (rc)
		return rc;
	buf = malloc(len);
	if (!buf)
		return 1;
	encode(f, buf, len);
	rc = fs_journal_append(fs->journal, buf, len, seq);
	free(buf);
	if (rc)
		return 1; /* full (the committer empties the older file), or said */
	if (f->jseq <= f->jfolded)
		f->jlive_first = *seq;
	f->jseq = *seq;
	f->jclean = true;
	for (uint32_t i = 0; i < f->ndirty; i++) {
		struct fs_dirty *d = &f->dirty[i];
		if (!d->jchain)
			d->jchain = *seq;
		d->jlo = d->jhi = 0;
	}
	return 0;
}

/* The commit and the syncs that make f durable without the journal. */
static int commit_and_sync(struct fs *fs, struct fs_file *f)
{
	int rc = fs_file_commit_locked(fs, f, true);

	pthread_mutex_unlock(&f->mu);
	return rc ? rc : fs_sync_all(fs);
}

int fs_file_fsync(struct fs *fs, struct fs_file *f)
{
	uint64_t seq;
	int rc;

	pthread_mutex_lock(&f->mu);
	if (f->error) {
		rc = f->error;
		f->error = 0;
		pthread_mutex_unlock(&f->mu);
		return rc;
	}
	if (!f->changed && !f->ndirty) {
		pthread_mutex_unlock(&f->mu);
		return fs_sync_all(fs); /* committed already: maybe not durable yet */
	}
	if (f->jclean && f->jseq > f->jfolded &&
	    meta_last_txn(fs->meta) == atomic_load(&fs->meta_synced)) {
		seq = f->jseq; /* nothing written since its last record (nor a chmod) */
	} else if ((rc = journal_record(fs, f, &seq)) != 0) {
		if (rc < 0) {
			pthread_mutex_unlock(&f->mu);
			return rc;
		}
		return commit_and_sync(fs, f);
	}
	pthread_mutex_unlock(&f->mu);
	rc = fs_journal_sync(fs->journal, seq);
	if (rc) {
		/* the journal failed its flush: the other way, then */
		pthread_mutex_lock(&f->mu);
		f->jclean = false;
		rc = commit_and_sync(fs, f);
	}
	return rc;
}

int fs_file_unjournal(struct fs *fs, struct fs_file *f)
{
	int rc = 0;

	pthread_mutex_lock(&f->mu);
	if (f->jseq > f->jfolded)
		rc = fs_file_commit_locked(fs, f, false);
	pthread_mutex_unlock(&f->mu);
	return rc;
}
