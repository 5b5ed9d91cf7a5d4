/*
 * journal - the fsync journal's two files (journal_i.h). The one idea: a
 * file is preallocated with zeros and written over, never grown, so the
 * fdatasync of an fsync writes its record's pages and flushes the device,
 * with no filesystem metadata to commit. Records of one activation of a
 * file carry its id and consecutive seqs from its header's first seq: a
 * reader stops at the first record that does not check out (torn, or left
 * from an earlier activation). Appends go to the active file; the committer
 * switches files when it is half full and empties the other once its
 * records are obsolete. Format: docs/FORMAT.md ("Fsync journal").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "journal_i.h"
#include "store/endian.h"

#define MAGIC "CASKJRNL"
#define VERSION 1
#define HEADER_SIZE 40
#define IN_USE 1u
#define REC_VERSION 1
#define REC_HAS_MTIME 1u

struct jfile {
	int fd;
	char path[4096];
	bool in_use;	    /* its header says it holds records of activation id */
	uint64_t id;	    /* protected by journal mu (as all below) */
	uint64_t first_seq; /* in use: the seq of its first record */
	uint64_t last_seq;  /* the seq of its last record (first_seq - 1: none) */
	size_t off;	    /* where the next record goes */
	bool pending;	    /* written since its last fdatasync */
	bool short_file;    /* not preallocated (the disk was full): never appended to */
	bool grown;	    /* made or extended at open */
	uint8_t *bytes;	    /* as read at open, until fs_journal_reset */
	size_t nbytes;
};

struct fs_journal {
	pthread_mutex_t mu; /* protects the files' fields, active, next_seq, appended */
	struct jfile f[2];
	int active;
	uint64_t next_seq;
	uint64_t appended; /* the seq of the last record written */
	uint64_t max_seen; /* the highest seq met at open */

	pthread_mutex_t sync_mu; /* protects synced, syncing */
	pthread_cond_t sync_cv;
	uint64_t synced;
	bool syncing;
};

static void encode_header(uint8_t *h, bool in_use, uint64_t id, uint64_t first_seq)
{
	memset(h, 0, HEADER_SIZE);
	memcpy(h, MAGIC, 8);
	put_le32(h + 8, VERSION);
	put_le32(h + 12, in_use ? IN_USE : 0);
	put_le64(h + 16, id);
	put_le64(h + 24, first_seq);
	put_le64(h + 32, XXH3_64bits(h, 32));
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int write_header(struct jfile *f)
{
	uint8_t h[HEADER_SIZE];

	encode_header(h, f->in_use, f->id, f->first_seq);
	return write_all(f->fd, h, sizeof(h), 0);
}

static int say(const struct jfile *f, const char *what, int rc)
{
	fprintf(stderr, "caskfs: fsync journal %s: %s: %s\n", f->path, what, strerror(-rc));
	return rc;
}

/* The length of the valid record at p (avail bytes), expecting id and seq,
 * or 0. */
static size_t check_record(const uint8_t *p, size_t avail, uint64_t id, uint64_t seq)
{
	uint32_t len;

	if (avail < FS_JOURNAL_HEAD + 8)
		return 0;
	len = get_le32(p);
	if (len < FS_JOURNAL_HEAD + 8 || len > avail || len % 8 || len > FS_JOURNAL_RECORD_MAX ||
	    get_le32(p + 4) != REC_VERSION || get_le64(p + 8) != id || get_le64(p + 16) != seq)
		return 0;
	if (get_le64(p + len - 8) != XXH3_64bits(p, len - 8))
		return 0;
	return len;
}

/* Reads f's header and finds the end of its valid records. */
static void load(struct jfile *f)
{
	const uint8_t *h = f->bytes;

	f->in_use = false;
	f->off = FS_JOURNAL_DATA;
	f->first_seq = f->last_seq = 0;
	if (f->nbytes < HEADER_SIZE || memcmp(h, MAGIC, 8) != 0 || get_le32(h + 8) != VERSION ||
	    get_le64(h + 32) != XXH3_64bits(h, 32))
		return;
	f->id = get_le64(h + 16);
	f->first_seq = get_le64(h + 24);
	f->last_seq = f->first_seq ? f->first_seq - 1 : 0;
	if (!(get_le32(h + 12) & IN_USE) || f->first_seq == 0)
		return;
	f->in_use = true;
	for (;;) {
		size_t len = f->off < f->nbytes
				 ? check_record(f->bytes + f->off, f->nbytes - f->off, f->id,
						f->last_seq + 1)
				 : 0;
		if (!len)
			break;
		f->off += len;
		f->last_seq++;
	}
}

/* Opens one file, reads it whole, then extends it with zeros to its size. */
static int open_file(struct jfile *f, const char *dir, int n)
{
	struct stat st;
	int rc = 0;

	snprintf(f->path, sizeof(f->path), "%s/journal.%d", dir, n);
	f->fd = open(f->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (f->fd < 0)
		return say(f, "cannot open", -errno);
	if (fstat(f->fd, &st) < 0)
		return say(f, "cannot stat", -errno);
	f->nbytes =
	    (size_t)st.st_size < FS_JOURNAL_FILE_SIZE ? (size_t)st.st_size : FS_JOURNAL_FILE_SIZE;
	f->bytes = malloc(f->nbytes ? f->nbytes : 1);
	if (!f->bytes)
		return -ENOMEM;
	for (size_t got = 0; got < f->nbytes;) {
		ssize_t r = pread(f->fd, f->bytes + got, f->nbytes - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return say(f, "cannot read", r < 0 ? -errno : -EIO);
		got += (size_t)r;
	}
	load(f);
	if ((size_t)st.st_size < FS_JOURNAL_FILE_SIZE) {
		/* written, not fallocated: an overwrite then needs no metadata */
		f->grown = true;
		static const uint8_t zeros[65536];
		for (off_t o = st.st_size; rc == 0 && o < (off_t)FS_JOURNAL_FILE_SIZE;
		     o += (off_t)sizeof(zeros)) {
			size_t n = FS_JOURNAL_FILE_SIZE - (size_t)o < sizeof(zeros)
				       ? FS_JOURNAL_FILE_SIZE - (size_t)o
				       : sizeof(zeros);
			rc = write_all(f->fd, zeros, n, o);
		}
		if (rc == 0 && fdatasync(f->fd) < 0)
			rc = -errno;
		if (rc) {
			/* its records can still be replayed; fsync commits meanwhile */
			say(f, "cannot preallocate it; fsync commits instead", rc);
			f->short_file = true;
		}
	}
	return 0;
}

void fs_journal_close(struct fs_journal *j)
{
	if (!j)
		return;
	for (int i = 0; i < 2; i++) {
		if (j->f[i].fd >= 0)
			close(j->f[i].fd);
		free(j->f[i].bytes);
	}
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->sync_mu);
	pthread_cond_destroy(&j->sync_cv);
	free(j);
}

int fs_journal_open(const char *dir, struct fs_journal **out)
{
	struct fs_journal *j = calloc(1, sizeof(*j));
	int rc = 0;

	*out = NULL;
	if (!j)
		return -ENOMEM;
	pthread_mutex_init(&j->mu, NULL);
	pthread_mutex_init(&j->sync_mu, NULL);
	pthread_cond_init(&j->sync_cv, NULL);
	j->f[0].fd = j->f[1].fd = -1;
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = open_file(&j->f[i], dir, i);
	if (rc == 0 && (j->f[0].grown || j->f[1].grown)) {
		/* the files' names survive a power loss as well as their bytes */
		int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd < 0 || fsync(dfd) < 0)
			rc = say(&j->f[0], "cannot sync its directory", -errno);
		if (dfd >= 0)
			close(dfd);
	}
	if (rc) {
		fs_journal_close(j);
		return rc;
	}
	for (int i = 0; i < 2; i++) {
		if (j->f[i].last_seq > j->max_seen)
			j->max_seen = j->f[i].last_seq;
		if (j->f[i].first_seq > j->max_seen)
			j->max_seen = j->f[i].first_seq;
	}
	j->next_seq = j->max_seen + 1;
	/* records go on in the newer file (appends are consecutive with its) */
	j->active = j->f[1].in_use && (!j->f[0].in_use || j->f[1].first_seq > j->f[0].first_seq);
	j->appended = j->synced = j->next_seq - 1;
	*out = j;
	return 0;
}

uint64_t fs_journal_max_seq(struct fs_journal *j)
{
	return j->max_seen;
}

/* The record at p of file f, decoded (it was checked at load). */
static void decode(const uint8_t *p, struct fs_journal_rec *r)
{
	uint32_t len = get_le32(p);
	uint32_t flags = get_le32(p + 52);

	r->seq = get_le64(p + 16);
	r->ino = get_le64(p + 24);
	r->size = get_le64(p + 32);
	r->mtime.tv_sec = (time_t)(int64_t)get_le64(p + 40);
	r->mtime.tv_nsec = get_le32(p + 48);
	r->has_mtime = flags & REC_HAS_MTIME;
	r->nmap = get_le32(p + 56);
	r->ndirty = get_le32(p + 60);
	r->map = p + FS_JOURNAL_HEAD;
	r->dirty = r->map + (size_t)r->nmap * FS_JOURNAL_SLOT;
	r->dirty_len = (size_t)(p + len - 8 - r->dirty);
}

/* Whether the parts of a checked record fit inside it: its map, then
 * ndirty slots each with its bytes, nothing past the checksum. */
static bool parts_fit(const uint8_t *p)
{
	uint32_t len = get_le32(p);
	uint64_t nmap = get_le32(p + 56), ndirty = get_le32(p + 60);
	uint64_t pos = FS_JOURNAL_HEAD + nmap * FS_JOURNAL_SLOT, end = len - 8;

	if (pos > end || get_le32(p + 48) >= 1000000000u)
		return false;
	for (uint64_t i = 0; i < ndirty; i++) {
		if (end - pos < FS_JOURNAL_DIRTY)
			return false;
		const uint8_t *d = p + pos;
		uint64_t slen = get_le32(d + 4), off = get_le32(d + 16), n = get_le32(d + 20);
		if (slen > (1u << 20) || off + n > (1u << 20))
			return false;
		pos += FS_JOURNAL_DIRTY;
		if (end - pos < (n + 7) / 8 * 8)
			return false;
		pos += (n + 7) / 8 * 8;
	}
	return pos == end;
}

void fs_journal_dirty_next(const struct fs_journal_rec *rec, size_t *pos,
			   struct fs_journal_dirty *out)
{
	const uint8_t *d = rec->dirty + *pos;

	out->idx = get_le32(d);
	out->len = get_le32(d + 4);
	out->chain = get_le64(d + 8);
	out->off = get_le32(d + 16);
	out->n = get_le32(d + 20);
	out->bytes = d + FS_JOURNAL_DIRTY;
	*pos += FS_JOURNAL_DIRTY + ((size_t)out->n + 7) / 8 * 8;
}

/* fn for each valid record of f (loaded), in order. */
static int scan_file(const struct jfile *f, fs_journal_fn fn, void *arg)
{
	size_t off = FS_JOURNAL_DATA;
	int rc = 0;

	if (!f->in_use || !f->bytes)
		return 0;
	for (uint64_t seq = f->first_seq; seq <= f->last_seq && rc == 0; seq++) {
		const uint8_t *p = f->bytes + off;
		struct fs_journal_rec r;
		off += get_le32(p);
		if (!parts_fit(p)) {
			fprintf(stderr,
				"caskfs: fsync journal %s: record %llu is malformed; "
				"it and those after it are ignored\n",
				f->path, (unsigned long long)seq);
			break;
		}
		decode(p, &r);
		rc = fn(arg, &r);
	}
	return rc;
}

int fs_journal_scan(struct fs_journal *j, fs_journal_fn fn, void *arg)
{
	int first = j->f[1].in_use && (!j->f[0].in_use || j->f[1].first_seq < j->f[0].first_seq);
	int rc = scan_file(&j->f[first], fn, arg);

	return rc ? rc : scan_file(&j->f[!first], fn, arg);
}

int fs_journal_parse(const uint8_t *bytes, size_t n, fs_journal_fn fn, void *arg)
{
	struct jfile f = { .fd = -1, .path = "(bytes)", .bytes = (uint8_t *)bytes, .nbytes = n };

	load(&f);
	return scan_file(&f, fn, arg);
}

int fs_journal_reset(struct fs_journal *j, uint64_t next_floor)
{
	int rc = 0;

	pthread_mutex_lock(&j->mu);
	for (int i = 0; i < 2 && rc == 0; i++) {
		struct jfile *f = &j->f[i];
		bool held = f->in_use;
		f->in_use = false;
		f->first_seq = next_floor + 1;
		f->last_seq = next_floor;
		f->off = FS_JOURNAL_DATA;
		rc = write_header(f);
		if (rc == 0 && fdatasync(f->fd) < 0)
			rc = -errno;
		if (rc)
			say(f, "cannot reset", rc);
		if (!held)
			rc = 0; /* it held nothing to undo (a full disk kept it short) */
		free(f->bytes);
		f->bytes = NULL;
		f->nbytes = 0;
	}
	j->active = 0;
	if (j->next_seq <= next_floor)
		j->next_seq = next_floor + 1;
	j->appended = j->next_seq - 1;
	pthread_mutex_unlock(&j->mu);
	pthread_mutex_lock(&j->sync_mu);
	j->synced = j->appended;
	pthread_mutex_unlock(&j->sync_mu);
	return rc;
}

/* Makes file i active for records from next_seq on (mu held): a new id, its
 * header written (made durable with its first record). */
static int activate(struct fs_journal *j, int i)
{
	struct jfile *f = &j->f[i];
	uint64_t id = 0;
	int rc;

	/* random, not counted: a file whose header was torn has lost the id
	 * its records carry, and a count could give that id out again */
	if (getrandom(&id, sizeof(id), 0) != sizeof(id))
		id = (uint64_t)time(NULL) << 20 ^ (uint64_t)clock();
	if (id == j->f[0].id || id == j->f[1].id)
		id ^= 1;
	f->id = id;
	f->in_use = true;
	f->first_seq = j->next_seq;
	f->last_seq = j->next_seq - 1;
	f->off = FS_JOURNAL_DATA;
	rc = write_header(f);
	if (rc) {
		f->in_use = false;
		return say(f, "cannot write its header", rc);
	}
	f->pending = true;
	j->active = i;
	return 0;
}

void fs_journal_encode_head(uint8_t *buf, size_t len, uint64_t ino, uint64_t size,
			    const struct timespec *mtime, uint32_t nmap, uint32_t ndirty)
{
	memset(buf, 0, FS_JOURNAL_HEAD);
	put_le32(buf, (uint32_t)len);
	put_le32(buf + 4, REC_VERSION);
	put_le64(buf + 24, ino);
	put_le64(buf + 32, size);
	if (mtime) {
		put_le64(buf + 40, (uint64_t)(int64_t)mtime->tv_sec);
		put_le32(buf + 48, (uint32_t)mtime->tv_nsec);
		put_le32(buf + 52, REC_HAS_MTIME);
	}
	put_le32(buf + 56, nmap);
	put_le32(buf + 60, ndirty);
}

int fs_journal_append(struct fs_journal *j, uint8_t *buf, size_t len, uint64_t *seq)
{
	struct jfile *f;
	int rc = 0;

	if (len % 8 || len < FS_JOURNAL_HEAD + 8 || len > FS_JOURNAL_RECORD_MAX)
		return -EINVAL;
	pthread_mutex_lock(&j->mu);
	f = &j->f[j->active];
	if (j->f[0].short_file || j->f[1].short_file) {
		rc = -ENOSPC;
	} else if (!f->in_use || f->off + len > FS_JOURNAL_FILE_SIZE) {
		int other = !f->in_use ? j->active : 1 - j->active;
		rc = j->f[other].in_use ? -ENOSPC : activate(j, other);
		f = &j->f[j->active];
	}
	if (rc == 0) {
		put_le64(buf + 8, f->id);
		put_le64(buf + 16, j->next_seq);
		put_le64(buf + len - 8, XXH3_64bits(buf, len - 8));
		rc = write_all(f->fd, buf, len, (off_t)f->off);
		if (rc)
			say(f, "cannot write a record", rc);
	}
	if (rc == 0) {
		f->off += len;
		f->last_seq = j->next_seq;
		f->pending = true;
		*seq = j->appended = j->next_seq++;
	}
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fs_journal_sync(struct fs_journal *j, uint64_t seq)
{
	int rc = 0;

	pthread_mutex_lock(&j->sync_mu);
	while (j->synced < seq && rc == 0) {
		if (j->syncing) {
			pthread_cond_wait(&j->sync_cv, &j->sync_mu);
			continue;
		}
		j->syncing = true;
		pthread_mutex_unlock(&j->sync_mu);

		bool pending[2];
		pthread_mutex_lock(&j->mu);
		uint64_t upto = j->appended;
		for (int i = 0; i < 2; i++) {
			pending[i] = j->f[i].pending;
			j->f[i].pending = false;
		}
		pthread_mutex_unlock(&j->mu);
		for (int i = 0; i < 2; i++) {
			if (pending[i] && fdatasync(j->f[i].fd) < 0) {
				rc = say(&j->f[i], "fdatasync failed", -errno);
				pthread_mutex_lock(&j->mu);
				j->f[i].pending = true;
				pthread_mutex_unlock(&j->mu);
			}
		}

		pthread_mutex_lock(&j->sync_mu);
		j->syncing = false;
		if (rc == 0 && upto > j->synced)
			j->synced = upto;
		pthread_cond_broadcast(&j->sync_cv);
	}
	pthread_mutex_unlock(&j->sync_mu);
	return rc;
}

bool fs_journal_rotate_due(struct fs_journal *j)
{
	pthread_mutex_lock(&j->mu);
	const struct jfile *a = &j->f[j->active], *o = &j->f[1 - j->active];
	bool due = o->in_use || (a->in_use && a->off > FS_JOURNAL_FILE_SIZE / 2);
	pthread_mutex_unlock(&j->mu);
	return due;
}

uint64_t fs_journal_rotate(struct fs_journal *j)
{
	pthread_mutex_lock(&j->mu);
	int other = 1 - j->active;
	if (!j->f[other].in_use && j->f[j->active].in_use &&
	    j->f[j->active].off > FS_JOURNAL_FILE_SIZE / 2)
		activate(j, other);
	uint64_t first = j->f[j->active].in_use ? j->f[j->active].first_seq : j->next_seq;
	pthread_mutex_unlock(&j->mu);
	return first;
}

int fs_journal_retire(struct fs_journal *j)
{
	struct jfile *f;
	bool wrote = false;
	int rc = 0;

	pthread_mutex_lock(&j->mu);
	f = &j->f[1 - j->active];
	if (f->in_use) {
		/* its records are obsolete: whatever the disk keeps of them, a
		 * replay skips them (meta_folded), until the caller prunes */
		f->in_use = false;
		f->first_seq = f->last_seq + 1;
		rc = write_header(f);
		wrote = rc == 0;
	}
	pthread_mutex_unlock(&j->mu);
	if (wrote && fdatasync(f->fd) < 0)
		rc = -errno;
	if (rc)
		say(f, "cannot empty", rc);
	return rc;
}
