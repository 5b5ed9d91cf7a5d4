/*
 * scrub - the scrubber: a thread that re-reads every record of the sealed
 * segments while the node serves, at a bounded rate (and not at all while the
 * store is busy), checks each against its checksum, its value hash and the
 * owner's check (a chunk against its id), and has a damaged copy that is its
 * key's newest replaced by the owner's repair callback (a good copy from a
 * peer). The one idea: records are found through each segment's hint file,
 * not by walking headers, so a damaged header cannot hide the records after
 * it; and the position is written to DATA_DIR/scrub.state every few seconds,
 * so a restart resumes where the pass was. docs/FORMAT.md ("scrub.state"),
 * docs/OPERATIONS.md ("Scrubbing").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hash_i.h"
#include "store_i.h"
#include "../endian.h"

#define STATE_MAGIC "CASKSCRB"
#define STATE_VERSION 1
#define STATE_SIZE 128
#define SAVE_MS 2000
#define WINDOW_MS 1000	     /* the rate is kept over windows this long */
#define BUSY_CHECK_MS 100    /* how often a pause looks at the load again */
#define MAX_PAUSE_MS 10000   /* after this long paused, one record goes anyway */
#define DEFAULT_INTERVAL_S (7 * 86400)
#define DEFAULT_BUSY_OPS 2000

struct store_scrubber {
	struct store *s;
	struct store_scrub_options opt;
	pthread_t thread;
	bool threaded;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop, kick;	     /* protected by mu */
	struct store_scrub_stats st; /* protected by mu (written by the pass only) */
	/* the pass's own, touched by its thread only */
	uint8_t *buf, *raw;
	size_t cap, rawcap;
	uint32_t seg;
	uint64_t resume_off;
	int64_t window_ms, save_ms, ops_ms;
	uint64_t window_bytes, ops;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- scrub.state ---- */

static void state_path(const char *dir, char *buf, size_t cap, const char *ext)
{
	snprintf(buf, cap, "%s/scrub.state%s", dir, ext);
}

static void state_encode(const struct store_scrub_stats *st, uint8_t b[STATE_SIZE])
{
	memset(b, 0, STATE_SIZE);
	memcpy(b, STATE_MAGIC, 8);
	put_le32(b + 8, STATE_VERSION);
	put_le32(b + 12, st->running ? 1 : 0);
	put_le64(b + 16, st->passes);
	put_le32(b + 24, st->segment);
	put_le64(b + 32, st->offset);
	put_le64(b + 40, (uint64_t)st->pass_started_ms);
	put_le64(b + 48, (uint64_t)st->last_pass_end_ms);
	put_le64(b + 56, (uint64_t)st->next_pass_ms);
	put_le64(b + 64, st->bytes);
	put_le64(b + 72, st->records);
	put_le64(b + 80, st->damaged);
	put_le64(b + 88, st->repaired);
	put_le64(b + 96, st->unrepaired);
	put_le64(b + 104, st->stale);
	put_le64(b + 112, st->pass_bytes);
	put_le64(b + 120, store_hash_bulk(b, 120));
}

int store_scrub_state_read(const char *dir, struct store_scrub_stats *st)
{
	char path[4200];
	uint8_t b[STATE_SIZE];
	int fd;
	ssize_t n;

	memset(st, 0, sizeof(*st));
	state_path(dir, path, sizeof(path), "");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = store_read_full(fd, b, sizeof(b), 0);
	close(fd);
	if (n != STATE_SIZE || memcmp(b, STATE_MAGIC, 8) != 0 || get_le32(b + 8) != STATE_VERSION ||
	    get_le64(b + 120) != store_hash_bulk(b, 120))
		return -EBADMSG;
	st->running = get_le32(b + 12) & 1;
	st->passes = get_le64(b + 16);
	st->segment = get_le32(b + 24);
	st->offset = get_le64(b + 32);
	st->pass_started_ms = (int64_t)get_le64(b + 40);
	st->last_pass_end_ms = (int64_t)get_le64(b + 48);
	st->next_pass_ms = (int64_t)get_le64(b + 56);
	st->bytes = get_le64(b + 64);
	st->records = get_le64(b + 72);
	st->damaged = get_le64(b + 80);
	st->repaired = get_le64(b + 88);
	st->unrepaired = get_le64(b + 96);
	st->stale = get_le64(b + 104);
	st->pass_bytes = get_le64(b + 112);
	return 0;
}

/* Writes the state durably (a temporary file, fsync, rename). */
static int state_save(struct store_scrubber *sc)
{
	char path[4200], tmp[4210];
	uint8_t b[STATE_SIZE];
	int fd, rc = 0;

	pthread_mutex_lock(&sc->mu);
	state_encode(&sc->st, b);
	pthread_mutex_unlock(&sc->mu);
	state_path(sc->s->dir, path, sizeof(path), "");
	state_path(sc->s->dir, tmp, sizeof(tmp), ".tmp");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = store_write_full(fd, b, sizeof(b), 0);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		store_logf(sc->s, STORE_LOG_WARN, "scrub: cannot write %s: %s", path, strerror(-rc));
	sc->save_ms = mono_ms();
	return rc;
}

/* ---- pacing ---- */

/* Sleeps up to ms (less when stopped or kicked); true when asked to stop. */
static bool nap(struct store_scrubber *sc, int64_t ms, bool wake_on_kick)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&sc->mu);
	if (!sc->stop && !(wake_on_kick && sc->kick))
		pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
	stop = sc->stop;
	pthread_mutex_unlock(&sc->mu);
	return stop;
}

static uint64_t store_ops(struct store *s)
{
	return atomic_load(&s->gets) + atomic_load(&s->puts) + atomic_load(&s->deletes);
}

/* Before reading len bytes: waits while the store serves more than busy_ops
 * requests a second, then as long as the rate allows. True: stop. */
static bool pace(struct store_scrubber *sc, uint64_t len)
{
	int64_t now = mono_ms(), paused = 0;

	for (;;) {
		/* requests a second since the last look (over at least a check period) */
		uint64_t ops = store_ops(sc->s);
		int64_t t = mono_ms(), span = t - sc->ops_ms;
		bool busy = (ops - sc->ops) * 1000 / (uint64_t)(span > BUSY_CHECK_MS ? span : BUSY_CHECK_MS) >
			    sc->opt.busy_ops;
		sc->ops = ops;
		sc->ops_ms = t;
		if (!busy || paused >= MAX_PAUSE_MS)
			break;
		pthread_mutex_lock(&sc->mu);
		sc->st.paused = true;
		pthread_mutex_unlock(&sc->mu);
		if (nap(sc, BUSY_CHECK_MS, false))
			return true;
		paused += BUSY_CHECK_MS;
	}
	if (paused) {
		pthread_mutex_lock(&sc->mu);
		sc->st.paused = false;
		pthread_mutex_unlock(&sc->mu);
		sc->window_ms = mono_ms(); /* a pause is not credit for a burst */
		sc->window_bytes = 0;
		now = sc->window_ms;
	}
	if (now - sc->window_ms >= WINDOW_MS) {
		/* carry what the last window overspent, so the long-run rate holds */
		uint64_t allowed = sc->opt.rate * (uint64_t)(now - sc->window_ms) / 1000;
		sc->window_bytes = sc->window_bytes > allowed ? sc->window_bytes - allowed : 0;
		sc->window_ms = now;
	}
	sc->window_bytes += len;
	int64_t due = sc->window_ms + (int64_t)(sc->window_bytes * 1000 / sc->opt.rate);
	if (due > now)
		return nap(sc, due - now, false);
	return false;
}

/* ---- one record ---- */

static int grow(uint8_t **p, size_t *cap, size_t want)
{
	if (want <= *cap)
		return 0;
	uint8_t *n = realloc(*p, want);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = want;
	return 0;
}

/* Whether the record of hint entry e, read into sc->buf, is what the hint
 * says and checks out: 0 good, -EBADMSG damaged, -ENOMEM. */
static int check_record(struct store_scrubber *sc, const struct store_hint_entry *e)
{
	const uint8_t *p = sc->buf, *key;
	struct store_rec_hdr h;

	if (store_rec_decode(p, e->len, &h) < 0 || store_rec_size(&h) != e->len)
		return -EBADMSG;
	key = p + store_rec_hdr_len(h.version); /* the header of either version */
	if (h.key_len != e->hdr.key_len || memcmp(key, e->key, h.key_len) != 0 ||
	    h.stamp != e->hdr.stamp || h.node != e->hdr.node)
		return -EBADMSG;
	const uint8_t *val = key + h.key_len;
	if (store_rec_checksum(p, key, h.key_len, store_hash_bulk(val, h.stored_len)) != h.checksum)
		return -EBADMSG;
	if (h.flags & STORE_REC_TOMBSTONE)
		return 0;
	if (h.flags & STORE_REC_ZSTD) {
		if (grow(&sc->raw, &sc->rawcap, h.raw_len ? h.raw_len : 1) < 0)
			return -ENOMEM;
		if (store_zstd_decompress(val, h.stored_len, sc->raw, h.raw_len) < 0 ||
		    store_hash_bulk(sc->raw, h.raw_len) != h.value_hash)
			return -EBADMSG;
		val = sc->raw;
	}
	if (sc->opt.check && sc->opt.check(sc->opt.arg, key, h.key_len, val, h.raw_len) < 0)
		return -EBADMSG;
	return 0;
}

/* Whether key's newest record is the one at (seg, off). */
static bool is_current(struct store *s, const struct store_hint_entry *e, uint32_t seg)
{
	struct store_kd_entry *k;
	bool cur;

	pthread_rwlock_rdlock(&s->lock);
	k = store_kd_find(s->kd, store_key_hash(e->key, e->hdr.key_len), e->key, e->hdr.key_len);
	cur = k && k->seg == seg && k->off == e->off;
	pthread_rwlock_unlock(&s->lock);
	return cur;
}

static void damaged(struct store_scrubber *sc, const struct store_hint_entry *e)
{
	struct store *s = sc->s;
	struct store_version v = { e->hdr.stamp, e->hdr.node };
	char kr[512];
	int rc = 1; /* stale */

	store_key_repr(e->key, e->hdr.key_len, kr, sizeof(kr));
	if (is_current(s, e, sc->seg))
		rc = sc->opt.repair ? sc->opt.repair(sc->opt.arg, e->key, e->hdr.key_len, &v)
				    : -ENOENT;
	pthread_mutex_lock(&sc->mu);
	sc->st.damaged++;
	if (rc == 0)
		sc->st.repaired++;
	else if (rc < 0)
		sc->st.unrepaired++;
	else
		sc->st.stale++;
	pthread_mutex_unlock(&sc->mu);
	atomic_fetch_add(&s->corrupt_records, 1);
	store_logf(s, rc < 0 ? STORE_LOG_ERROR : STORE_LOG_WARN,
		   "scrub: segment %06u offset %u: record of %s is damaged; %s", sc->seg, e->off, kr,
		   rc == 0   ? "repaired from a peer"
		   : rc > 0  ? "not its newest version (compaction drops it)"
		   : sc->opt.repair ? "no peer has a good copy"
				    : "no peer to repair it from");
}

static int scrub_entry(void *arg, const struct store_hint_entry *e)
{
	struct store_scrubber *sc = arg;
	struct store_segment *seg = NULL;
	ssize_t got;
	int rc;

	if (e->off < sc->resume_off)
		return 0;
	if (pace(sc, e->len))
		return -ECANCELED;
	if ((rc = grow(&sc->buf, &sc->cap, e->len)) < 0)
		return rc;
	pthread_rwlock_rdlock(&sc->s->lock);
	seg = store_table_get(sc->s, sc->seg);
	if (seg)
		store_segment_ref(seg);
	pthread_rwlock_unlock(&sc->s->lock);
	if (!seg)
		return -ENOENT; /* compacted away meanwhile: its records live elsewhere */
	got = store_read_full(seg->fd, sc->buf, e->len, (off_t)e->off);
	store_segment_unref(seg);
	if (got < 0 && got != -EIO)
		return (int)got;
	rc = got == (ssize_t)e->len ? check_record(sc, e) : -EBADMSG;
	if (rc == -ENOMEM)
		return rc;
	if (rc == -EBADMSG)
		damaged(sc, e);
	pthread_mutex_lock(&sc->mu);
	sc->st.records++;
	sc->st.bytes += e->len;
	sc->st.pass_bytes += e->len;
	sc->st.offset = (uint64_t)e->off + e->len;
	pthread_mutex_unlock(&sc->mu);
	if (mono_ms() - sc->save_ms >= SAVE_MS)
		state_save(sc);
	return 0;
}

/* ---- a pass ---- */

/* The bytes of the sealed segments from id from on, and the highest of them
 * in *last (0: none): what a pass that starts now reads. */
static uint64_t sealed_bytes(struct store *s, uint32_t from, uint32_t *last)
{
	uint64_t total = 0;

	*last = 0;
	pthread_rwlock_rdlock(&s->lock);
	for (uint32_t id = from; id < s->segs_cap; id++)
		if (s->segs[id] && s->segs[id]->sealed) {
			total += atomic_load(&s->segs[id]->size);
			*last = id;
		}
	pthread_rwlock_unlock(&s->lock);
	return total;
}

/* One pass from where the state says (resuming) or from the first segment.
 * 0 done, -ECANCELED stopped (the position is saved), -errno. */
static int run_pass(struct store_scrubber *sc)
{
	struct store *s = sc->s;
	int rc = 0;

	pthread_mutex_lock(&sc->mu);
	if (!sc->st.running) {
		sc->st.running = true;
		sc->st.segment = 0;
		sc->st.offset = 0;
		sc->st.pass_bytes = 0;
		sc->st.pass_started_ms = wall_ms();
	}
	/* segments sealed during the pass wait for the next one: a node written
	 * faster than the rate would otherwise never finish a pass */
	uint32_t last;
	sc->st.pass_total = sc->st.pass_bytes + sealed_bytes(s, sc->st.segment, &last);
	sc->seg = sc->st.segment;
	sc->resume_off = sc->st.offset;
	sc->kick = false;
	pthread_mutex_unlock(&sc->mu);
	sc->window_ms = mono_ms();
	sc->window_bytes = 0;
	sc->ops = store_ops(s);
	sc->ops_ms = mono_ms();
	state_save(sc);
	for (;; sc->seg++, sc->resume_off = 0) {
		struct store_segment *seg = NULL;

		pthread_rwlock_rdlock(&s->lock);
		bool end = sc->seg >= s->segs_cap || sc->seg > last;
		if (!end && s->segs[sc->seg] && s->segs[sc->seg]->sealed) {
			seg = s->segs[sc->seg];
			store_segment_ref(seg);
		}
		pthread_rwlock_unlock(&s->lock);
		if (end)
			break;
		if (!seg)
			continue;
		pthread_mutex_lock(&sc->mu);
		sc->st.segment = sc->seg;
		sc->st.offset = sc->resume_off;
		pthread_mutex_unlock(&sc->mu);
		rc = store_hint_load(s, seg, scrub_entry, sc);
		store_segment_unref(seg);
		if (rc == -ENOENT) {
			rc = 0; /* compacted away under us */
		} else if (rc == -EBADMSG) {
			store_logf(s, STORE_LOG_WARN,
				   "scrub: segment %06u has no usable hint file; left to caskfs fsck",
				   sc->seg);
			rc = 0;
		}
		if (rc)
			break;
	}
	if (rc == 0) {
		pthread_mutex_lock(&sc->mu);
		sc->st.running = false;
		sc->st.passes++;
		sc->st.segment = 0;
		sc->st.offset = 0;
		sc->st.last_pass_end_ms = wall_ms();
		sc->st.next_pass_ms = sc->st.pass_started_ms + (int64_t)sc->opt.interval_s * 1000;
		pthread_mutex_unlock(&sc->mu);
		store_logf(s, STORE_LOG_INFO,
			   "scrub: pass %" PRIu64 " done: %" PRIu64 " bytes; %" PRIu64
			   " damaged records found so far, %" PRIu64 " repaired",
			   sc->st.passes, sc->st.pass_bytes, sc->st.damaged, sc->st.repaired);
	}
	state_save(sc);
	return rc;
}

static void *scrub_main(void *arg)
{
	struct store_scrubber *sc = arg;

	for (;;) {
		pthread_mutex_lock(&sc->mu);
		bool due = sc->kick || sc->st.running || wall_ms() >= sc->st.next_pass_ms;
		bool stop = sc->stop;
		pthread_mutex_unlock(&sc->mu);
		if (stop)
			break;
		if (!due) {
			if (nap(sc, 1000, true))
				break;
			continue;
		}
		int rc = run_pass(sc);
		if (rc == -ECANCELED)
			break;
		if (rc < 0) {
			store_logf(sc->s, STORE_LOG_ERROR, "scrub: pass stopped: %s; again in a minute",
				   strerror(-rc));
			if (nap(sc, 60000, true))
				break;
		}
	}
	return NULL;
}

static int scrubber_new(struct store *s, const struct store_scrub_options *opt,
			struct store_scrubber **out)
{
	struct store_scrubber *sc;

	if (!opt || opt->rate == 0)
		return -EINVAL;
	if (!(sc = calloc(1, sizeof(*sc))))
		return -ENOMEM;
	sc->s = s;
	sc->opt = *opt;
	if (!sc->opt.interval_s)
		sc->opt.interval_s = DEFAULT_INTERVAL_S;
	if (!sc->opt.busy_ops)
		sc->opt.busy_ops = DEFAULT_BUSY_OPS;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_cond_init(&sc->cv, NULL);
	if (store_scrub_state_read(s->dir, &sc->st) < 0) {
		memset(&sc->st, 0, sizeof(sc->st)); /* none yet: the first pass is one interval off */
		sc->st.next_pass_ms = wall_ms() + (int64_t)sc->opt.interval_s * 1000;
	}
	sc->st.rate = sc->opt.rate;
	sc->save_ms = mono_ms();
	*out = sc;
	return 0;
}

static void scrubber_free(struct store_scrubber *sc)
{
	pthread_mutex_destroy(&sc->mu);
	pthread_cond_destroy(&sc->cv);
	free(sc->buf);
	free(sc->raw);
	free(sc);
}

int store_scrub_start(struct store *s, const struct store_scrub_options *opt)
{
	struct store_scrubber *sc;
	int rc;

	if (s->scrub)
		return -EBUSY;
	if ((rc = scrubber_new(s, opt, &sc)) < 0)
		return rc;
	if ((rc = pthread_create(&sc->thread, NULL, scrub_main, sc)) != 0) {
		scrubber_free(sc);
		return -rc;
	}
	sc->threaded = true;
	s->scrub = sc;
	return 0;
}

void store_scrub_stop(struct store *s)
{
	struct store_scrubber *sc = s ? s->scrub : NULL;

	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	sc->stop = true;
	pthread_cond_broadcast(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	pthread_join(sc->thread, NULL);
	s->scrub = NULL;
	scrubber_free(sc);
}

int store_scrub_now(struct store *s)
{
	struct store_scrubber *sc = s->scrub;

	if (!sc)
		return -ENOENT;
	pthread_mutex_lock(&sc->mu);
	sc->kick = true;
	pthread_cond_broadcast(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	return 0;
}

void store_scrub_stats(struct store *s, struct store_scrub_stats *st)
{
	struct store_scrubber *sc = s->scrub;

	if (!sc) {
		if (store_scrub_state_read(s->dir, st) < 0)
			memset(st, 0, sizeof(*st));
		st->enabled = false;
		return;
	}
	pthread_mutex_lock(&sc->mu);
	*st = sc->st;
	st->running |= sc->kick; /* asked for: as good as started */
	pthread_mutex_unlock(&sc->mu);
	st->enabled = true;
}

int store_scrub_pass(struct store *s, const struct store_scrub_options *opt,
		     struct store_scrub_stats *st)
{
	struct store_scrubber *sc;
	int rc = scrubber_new(s, opt, &sc);

	if (rc < 0)
		return rc;
	rc = run_pass(sc);
	*st = sc->st;
	scrubber_free(sc);
	return rc;
}
