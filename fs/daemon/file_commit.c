/*
 * file_commit - a file state's writes made durable in the namespace: the
 * chunks still buffered are stored, the log is flushed so it holds them, and
 * then size, chunk map and mtime are written in one namespace transaction:
 * metadata never names a chunk that is not in the log, and a reader sees the
 * old content or the new, never a mix. A failure is kept in the state and
 * reported once by the next fsync, as a failed writeback is. The committer
 * commits idle files in batches: one flush and one transaction for them all.
 * Ordering: DESIGN.md ("fs: files as chunks").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file_i.h"

/* Stores one dirty chunk and points the map at it; the buffer is freed. */
int fs_file_store_dirty(struct fs *fs, struct fs_file *f, struct fs_dirty *d)
{
	struct meta_chunk c = { .idx = d->idx, .len = d->len };
	int rc = fs_chunk_put(fs->node.cluster, d->buf, d->len, c.key);

	if (rc == 0)
		rc = meta_map_set(&f->map, &c);
	f->log_through = store_appended(fs->store);
	if (rc < 0) {
		f->error = rc;
		return rc;
	}
	fs_file_dirty_free(fs, f, d);
	return 0;
}

int fs_file_store_all(struct fs *fs, struct fs_file *f)
{
	int rc = 0;

	while (f->ndirty && rc == 0)
		rc = fs_file_store_dirty(fs, f, &f->dirty[f->ndirty - 1]);
	return rc;
}

/*
 * Stores what is buffered and commits size, map and mtime. A failure is
 * also kept in f->error; with report, a failure kept from an earlier
 * attempt (a background commit, a chunk that could not be stored at write)
 * is returned once here, as fsync reports a failed writeback.
 */
int fs_file_commit_locked(struct fs *fs, struct fs_file *f, bool report)
{
	int rc = fs_file_store_all(fs, f);

	/* The chunks reach the segment file before the namespace names them: a
	 * killed daemon then leaves no record pointing at a chunk it lost. */
	if (rc == 0 && f->changed)
		rc = store_flush(fs->store);
	if (rc == 0 && f->changed) {
		struct meta_content c = { .ino = f->node.ino,
					  .size = f->size,
					  .mtime = f->written ? &f->mtime : NULL,
					  .chunks = f->map.v,
					  .n = f->map.n,
					  .jseq = f->jseq > f->jfolded ? f->jseq : 0 };
		rc = meta_set_contents(fs->meta, &c, 1);
		if (rc == 0)
			rc = c.rc;
		if (rc == 0) {
			f->changed = false;
			f->jfolded = f->jseq;
		}
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
	int rc = fs_file_commit_locked(fs, f, true);
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int fs_file_truncate(struct fs *fs, struct fs_file *f, uint64_t size, struct meta_inode *out)
{
	struct meta_inode attr = { .size = size };
	int rc;

	pthread_mutex_lock(&f->mu);
	rc = fs_file_commit_locked(fs, f, true);
	if (rc == 0)
		rc = meta_setattr(fs->meta, f->node.ino, META_SET_SIZE, &attr, out);
	if (rc == 0) {
		meta_map_release(&f->map);
		rc = fs_file_load(fs, f);
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

	if (!f)
		return true;
	int rc = fs_file_commit(fs, f);
	if (rc && rc != -ENOENT)
		say_not_committed(ino, rc);
	/*
	 * The state goes only as any state goes: with its last reference and
	 * nothing left to commit. The kernel may have looked the inode up again
	 * (an open after its eviction) and written it between that commit and
	 * now; those writes belong to the new instance, and dropping them here
	 * lost them. A state kept is committed by the committer.
	 */
	return fs_file_put(fs, f);
}

/* The outcome rc of a background commit of f (locked). */
static void settle(struct fs *fs, struct fs_file *f, int rc, int said, int64_t now, int *failed)
{
	if (rc == -ENOENT) {
		/* the inode is gone: nothing can read these writes */
		f->changed = false;
		f->error = 0;
		f->jfolded = f->jseq;
		while (f->ndirty)
			fs_file_dirty_free(fs, f, &f->dirty[f->ndirty - 1]);
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
 * flushed once, and all their sizes and maps in one namespace transaction
 * (a create-heavy load, rsync or cp -r, commits hundreds of small files a
 * second). A file busy with a request is left for the next round.
 */
/* Whether f (locked) holds journal records below seq that no commit holds. */
static bool journaled_below(const struct fs_file *f, uint64_t seq)
{
	return f->jseq > f->jfolded && f->jlive_first < seq;
}

/* The states due (fs_file_commit_idle; with jbelow, also those holding
 * journal records below it) committed together. */
static int commit_due(struct fs *fs, int64_t idle_ms, int64_t max_age_ms, uint64_t jbelow)
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
		bool ripe =
		    ((f->changed || f->ndirty) && (idle_ms == 0 || now - f->write_ms >= idle_ms ||
						   now - f->dirty_ms >= max_age_ms)) ||
		    journaled_below(f, jbelow);
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
		int rc = fs_file_store_all(fs, f);
		if (rc) {
			settle(fs, f, rc, said[i], now, &failed);
		} else if (f->changed) {
			owner[k] = i;
			items[k++] =
			    (struct meta_content){ .ino = f->node.ino,
						   .size = f->size,
						   .mtime = f->written ? &f->mtime : NULL,
						   .chunks = f->map.v,
						   .n = f->map.n,
						   .jseq = f->jseq > f->jfolded ? f->jseq : 0 };
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
			f->jfolded = f->jseq;
			done++;
		}
		settle(fs, f, r, said[owner[i]], now, &failed);
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

int fs_file_commit_idle(struct fs *fs, int64_t idle_ms, int64_t max_age_ms)
{
	return commit_due(fs, idle_ms, max_age_ms, 0);
}

int fs_file_commit_journaled(struct fs *fs, uint64_t seq)
{
	return commit_due(fs, INT64_MAX, INT64_MAX, seq);
}

bool fs_file_journaled_below(struct fs *fs, uint64_t seq)
{
	bool found = false;

	pthread_mutex_lock(&fs->files_mu);
	for (struct fs_file *f = fs_file_next_locked(fs, NULL); f && !found;
	     f = fs_file_next_locked(fs, f)) {
		pthread_mutex_lock(&f->mu);
		found = journaled_below(f, seq);
		pthread_mutex_unlock(&f->mu);
	}
	pthread_mutex_unlock(&fs->files_mu);
	return found;
}
