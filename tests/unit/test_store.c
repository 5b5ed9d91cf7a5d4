/*
 * test_store - the log engine end to end through store.h: round trips, reopen,
 * torn tails, corruption, compaction against a model, version rules, threads,
 * a full disk and the directory lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "testutil.h"

static struct store *open_or_fail(const char *dir, const struct store_options *o)
{
	struct store *s = NULL;

	assert_int_equal(store_open(dir, o, &s), 0);
	return s;
}

static char *seg_file(const char *dir, uint32_t id, const char *ext)
{
	char *p;

	assert_true(asprintf(&p, "%s/log/%06u.%s", dir, id, ext) > 0);
	return p;
}

/* Keys of every length 1..250, values from 0 bytes to 16 MiB; reopen; all equal. */
static void test_roundtrip_sizes(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	static const size_t sizes[] = { 0,    1,    2,	   127,	    128,	   129,
					4095, 4096, 65537, 1 << 20, (1 << 20) + 3, 16 << 20 };
	const size_t nsizes = sizeof(sizes) / sizeof(sizes[0]);
	uint8_t *buf = malloc(16 << 20);
	char key[STORE_KEY_MAX];
	struct store *s;

	tu_options(&o, NULL);
	o.segment_size = 8 << 20;
	s = open_or_fail(dir, &o);
	for (size_t k = 1; k <= STORE_KEY_MAX; k++) {
		memset(key, 'a' + (int)(k % 26), k);
		key[0] = (char)k;
		tu_fill(buf, 64, k);
		assert_int_equal(store_put(s, key, k, buf, k % 64, NULL), 0);
	}
	for (size_t i = 0; i < nsizes; i++) {
		int n = snprintf(key, sizeof(key), "value-%zu", sizes[i]);
		tu_fill(buf, sizes[i], i);
		if (i % 2) /* every other one compressible */
			memset(buf, 'x', sizes[i] / 2);
		assert_int_equal(store_put(s, key, (size_t)n, buf, sizes[i], NULL), 0);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (size_t k = 1; k <= STORE_KEY_MAX; k++) {
			uint8_t v[64];
			memset(key, 'a' + (int)(k % 26), k);
			key[0] = (char)k;
			tu_fill(v, 64, k);
			tu_expect(s, key, k, v, k % 64);
		}
		for (size_t i = 0; i < nsizes; i++) {
			int n = snprintf(key, sizeof(key), "value-%zu", sizes[i]);
			tu_fill(buf, sizes[i], i);
			if (i % 2)
				memset(buf, 'x', sizes[i] / 2);
			tu_expect(s, key, (size_t)n, buf, sizes[i]);
		}
		assert_int_equal(store_close(s), 0);
		s = open_or_fail(dir, &o);
	}
	/* Bad sizes are refused and nothing is stored. */
	memset(key, 'k', sizeof(key));
	assert_int_equal(store_put(s, key, STORE_KEY_MAX + 1, "v", 1, NULL), -EINVAL);
	assert_int_equal(store_put(s, key, 0, "v", 1, NULL), -EINVAL);
	assert_int_equal(store_put(s, "big", 3, buf, STORE_VALUE_MAX + 1, NULL), -EINVAL);
	assert_int_equal(store_close(s), 0);
	free(buf);
	tu_rmdir(dir);
}

/* A model of what the store must hold: per key, absent or (seed, len). */
struct model {
	size_t nkeys;
	int *present; /* 1 = value, 0 = absent */
	uint64_t *seed;
	uint32_t *len;
};

static void model_init(struct model *m, size_t nkeys)
{
	m->nkeys = nkeys;
	m->present = calloc(nkeys, sizeof(int));
	m->seed = calloc(nkeys, sizeof(uint64_t));
	m->len = calloc(nkeys, sizeof(uint32_t));
}

static void model_free(struct model *m)
{
	free(m->present);
	free(m->seed);
	free(m->len);
}

static int model_key(size_t i, char *buf)
{
	return sprintf(buf, "key/%zu", i);
}

static void model_check(struct store *s, const struct model *m)
{
	uint8_t *buf = malloc(1 << 16);
	char key[64];
	struct store_stats st;
	uint64_t live = 0;

	for (size_t i = 0; i < m->nkeys; i++) {
		int kl = model_key(i, key);
		if (m->present[i]) {
			tu_fill(buf, m->len[i], m->seed[i]);
			if (m->present[i] == 2)
				memset(buf, 'z', m->len[i] / 2);
			tu_expect(s, key, (size_t)kl, buf, m->len[i]);
			live++;
		} else {
			void *v;
			size_t vl;
			assert_int_equal(store_get(s, key, (size_t)kl, &v, &vl, NULL), -ENOENT);
		}
	}
	store_stats(s, &st);
	assert_int_equal(st.keys, live);
	free(buf);
}

static void model_op(struct store *s, struct model *m, uint64_t *rng)
{
	uint8_t buf[4096];
	char key[64];
	size_t i = tu_rand(rng) % m->nkeys;
	int kl = model_key(i, key);
	uint64_t r = tu_rand(rng) % 10;

	if (r < 3 && m->present[i]) {
		assert_int_equal(store_delete(s, key, (size_t)kl, NULL), 0);
		m->present[i] = 0;
	} else if (r < 3) {
		assert_int_equal(store_delete(s, key, (size_t)kl, NULL), -ENOENT);
	} else {
		uint32_t len = (uint32_t)(tu_rand(rng) % sizeof(buf));
		uint64_t seed = tu_rand(rng);
		tu_fill(buf, len, seed);
		if (r == 9) /* some compressible values */
			memset(buf, 'z', len / 2);
		assert_int_equal(store_put(s, key, (size_t)kl, buf, len, NULL), 0);
		m->present[i] = r == 9 ? 2 : 1;
		m->seed[i] = seed;
		m->len[i] = len;
	}
}

/* Reopen after each kind of write: the reopened store equals the model. */
static void test_reopen_every_write(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	struct store_version v = { .stamp = 1, .node = 9 };

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	/* new key */
	assert_int_equal(store_put(s, "a", 1, "one", 3, NULL), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "a", 1, "one", 3);
	/* overwrite */
	assert_int_equal(store_put(s, "a", 1, "two!", 4, NULL), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "a", 1, "two!", 4);
	/* empty value */
	assert_int_equal(store_put(s, "e", 1, "", 0, NULL), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "e", 1, "", 0);
	/* delete */
	assert_int_equal(store_delete(s, "a", 1, NULL), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	void *val;
	size_t vl;
	assert_int_equal(store_get(s, "a", 1, &val, &vl, NULL), -ENOENT);
	/* put after delete */
	assert_int_equal(store_put(s, "a", 1, "three", 5, NULL), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "a", 1, "three", 5);
	/* a stale apply (old version) is refused and stays refused after reopen */
	assert_int_equal(store_apply(s, "a", 1, "old", 3, &v, false), STORE_STALE);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "a", 1, "three", 5);
	/* a newer apply wins */
	v.stamp = UINT64_C(1) << 62;
	assert_int_equal(store_apply(s, "a", 1, "future", 6, &v, false), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "a", 1, "future", 6);
	/* and a local put after it is newer still: the clock observed the stamp */
	assert_int_equal(store_put(s, "a", 1, "local", 5, NULL), 0);
	store_close(s);
	s = open_or_fail(dir, &o);
	tu_expect(s, "a", 1, "local", 5);
	struct store_meta m;
	assert_int_equal(store_stat(s, "a", 1, &m), 0);
	assert_true(m.version.stamp > v.stamp);
	assert_int_equal(m.version.node, 1);
	store_close(s);
	tu_rmdir(dir);
}

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

static uint8_t *read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	off_t n = tu_file_size(path);
	uint8_t *buf = malloc((size_t)n + 1);

	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, (size_t)n), n);
	close(fd);
	*len = (size_t)n;
	return buf;
}

/* The active segment cut at every byte of its last record: opens, keeps all
 * earlier records, reports the cut. */
static void test_truncated_tail_every_offset(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_meta last;
	uint8_t val[300];
	char key[32];
	size_t seglen;

	tu_options(&o, &log);
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 10; i++) {
		int kl = sprintf(key, "k%d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		assert_int_equal(store_put(s, key, (size_t)kl, val, sizeof(val), &last), 0);
	}
	store_close(s);
	char *path = seg_file(dir, 1, "cask");
	uint8_t *seg = read_file(path, &seglen);
	assert_int_equal(seglen, last.offset + 48 + 2 + sizeof(val)); /* a version 2 header */

	for (size_t cut = last.offset; cut < seglen; cut++) {
		struct store_stats st;

		write_file(path, seg, cut);
		tu_log_init(&log);
		s = open_or_fail(dir, &o);
		for (int i = 0; i < 9; i++) {
			int kl = sprintf(key, "k%d", i);
			tu_fill(val, sizeof(val), (uint64_t)i);
			tu_expect(s, key, (size_t)kl, val, sizeof(val));
		}
		void *v;
		size_t vl;
		assert_int_equal(store_get(s, "k9", 2, &v, &vl, NULL), -ENOENT);
		store_stats(s, &st);
		assert_int_equal(st.cut_bytes, cut - last.offset);
		if (cut > last.offset)
			assert_non_null(strstr(log.text, "cut"));
		/* the store keeps working after the cut */
		assert_int_equal(store_put(s, "after", 5, "x", 1, NULL), 0);
		store_close(s);
		s = open_or_fail(dir, &o);
		tu_expect(s, "after", 5, "x", 1);
		assert_int_equal(store_delete(s, "after", 5, NULL), 0);
		store_close(s);
	}
	free(seg);
	free(path);
	tu_rmdir(dir);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x20;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

/* A flipped byte inside a sealed record: that key fails with a checksum error,
 * every other key still reads. A flipped byte in the middle of the active
 * segment costs only that record. */
static void test_flipped_byte(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_meta m[40];
	uint8_t val[500];
	char key[32];

	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 4096;
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 40; i++) {
		int kl = sprintf(key, "k%d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		assert_int_equal(store_put(s, key, (size_t)kl, val, sizeof(val), &m[i]), 0);
	}
	uint32_t active = m[39].segment;
	assert_true(active >= 4);
	store_close(s);

	/* k3 lives in a sealed segment: flip a byte in its value */
	assert_true(m[3].segment < active);
	char *p = seg_file(dir, m[3].segment, "cask");
	flip_byte(p, (off_t)m[3].offset + 48 + 2 + 100);
	free(p);
	/* k38 is in the active segment, not last: flip a byte in its value */
	assert_int_equal(m[38].segment, active);
	p = seg_file(dir, active, "cask");
	flip_byte(p, (off_t)m[38].offset + 48 + 3 + 7);
	free(p);

	s = open_or_fail(dir, &o);
	assert_non_null(strstr(log.text, "fails its checksum; kept"));
	for (int i = 0; i < 40; i++) {
		int kl = sprintf(key, "k%d", i);
		void *v;
		size_t vl;
		if (i == 3 || i == 38) {
			assert_int_equal(store_get(s, key, (size_t)kl, &v, &vl, NULL), -EBADMSG);
		} else {
			tu_fill(val, sizeof(val), (uint64_t)i);
			tu_expect(s, key, (size_t)kl, val, sizeof(val));
		}
	}
	assert_non_null(strstr(log.text, "key k3: record at segment"));
	struct store_stats st;
	store_stats(s, &st);
	assert_true(st.corrupt_records >= 2);
	/* Compaction must not drop the damaged record's segment silently. */
	assert_true(store_compact(s, true) >= 0);
	void *v;
	size_t vl;
	assert_int_equal(store_get(s, "k3", 2, &v, &vl, NULL), -EBADMSG);
	assert_int_equal(store_get(s, "k38", 3, &v, &vl, NULL), -EBADMSG);
	store_close(s);
	/* and still after a reopen (hints rebuilt or not) */
	s = open_or_fail(dir, &o);
	assert_int_equal(store_get(s, "k3", 2, &v, &vl, NULL), -EBADMSG);
	assert_int_equal(store_get(s, "k38", 3, &v, &vl, NULL), -EBADMSG);
	tu_fill(val, sizeof(val), 37);
	tu_expect(s, "k37", 3, val, sizeof(val));
	store_close(s);
	tu_rmdir(dir);
}

/* Records that are whole but all fail their checksums (a wrong format, a
 * damaged disk) are not a torn tail: open refuses, and cuts nothing. */
static void test_refuses_to_cut_whole_records(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_meta m[5];
	uint8_t val[200];
	char key[16];

	tu_options(&o, &log);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 5; i++) {
		int kl = sprintf(key, "k%d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		assert_int_equal(store_put(s, key, (size_t)kl, val, sizeof(val), &m[i]), 0);
	}
	store_close(s);
	char *p = seg_file(dir, 1, "cask");
	off_t size = tu_file_size(p);
	for (int i = 1; i < 5; i++) /* damage the checksum of every record but the first */
		flip_byte(p, (off_t)m[i].offset);
	struct store *s2 = NULL;
	assert_int_equal(store_open(dir, &o, &s2), -EBADMSG);
	assert_non_null(strstr(log.text, "refusing to cut"));
	assert_int_equal(tu_file_size(p), size);
	/* one failing record at the very end is a torn write, and is cut */
	for (int i = 1; i < 4; i++)
		flip_byte(p, (off_t)m[i].offset);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_non_null(strstr(log.text, "cut"));
	tu_fill(val, sizeof(val), 3);
	tu_expect(s, "k3", 2, val, sizeof(val));
	store_close(s);
	free(p);
	tu_rmdir(dir);
}

/* A missing or damaged hint: the segment is scanned and the hint rewritten. */
static void test_hint_rebuilt(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct model m;
	uint64_t rng = 42;

	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 8192;
	model_init(&m, 100);
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 500; i++)
		model_op(s, &m, &rng);
	store_close(s);

	char *h1 = seg_file(dir, 1, "hint"), *h2 = seg_file(dir, 2, "hint");
	assert_int_equal(unlink(h1), 0);
	flip_byte(h2, 20);
	s = open_or_fail(dir, &o);
	model_check(s, &m);
	assert_non_null(strstr(log.text, "hint of segment 000002 is unusable"));
	store_close(s);
	assert_true(tu_file_size(h1) > 0);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_null(strstr(log.text, "unusable"));
	model_check(s, &m);
	store_close(s);
	free(h1);
	free(h2);
	model_free(&m);
	tu_rmdir(dir);
}

/* 100k random puts, deletes and overwrites with small segments and compaction
 * running in the background and on demand: the store always equals the model. */
static void test_compaction_model(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_stats st;
	struct model m;
	uint64_t rng = 7, compactions = 0;

	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 64 * 1024;
	o.no_background = false;
	o.compact_interval_ms = 5;
	o.compact_live_ratio = 0.5;
	model_init(&m, 2000);
	s = open_or_fail(dir, &o);
	for (int i = 1; i <= 100000; i++) {
		model_op(s, &m, &rng);
		if (i % 20000 == 0) {
			assert_true(store_compact(s, false) >= 0);
			model_check(s, &m);
		}
		if (i % 50000 == 0) {
			store_stats(s, &st);
			compactions += st.compactions;
			store_close(s);
			s = open_or_fail(dir, &o);
			model_check(s, &m);
		}
	}
	store_stats(s, &st);
	assert_true(compactions > 10);
	assert_int_equal(st.corrupt_records, 0);
	assert_true(store_compact(s, true) >= 0);
	model_check(s, &m);
	store_stats(s, &st);
	/* after a full compaction, little garbage is left but for the active segment */
	assert_true(st.disk_bytes < st.live_bytes + st.segments * 16 + o.segment_size * 2);
	store_close(s);
	s = open_or_fail(dir, &o);
	model_check(s, &m);
	store_close(s);
	model_free(&m);
	tu_rmdir(dir);
}

/* Version rules: a tombstone beats an older put that arrives later; equal
 * stamps are ordered by node id. */
static void test_versions(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	void *v;
	size_t vl;
	struct store_version tomb = { .stamp = 1000, .node = 2 },
			     older = { .stamp = 999, .node = 3 };
	struct store_version same_lower = { .stamp = 1000, .node = 1 };
	struct store_version same_higher = { .stamp = 1000, .node = 3 };

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_apply(s, "k", 1, NULL, 0, &tomb, true), 0);
	assert_int_equal(store_apply(s, "k", 1, "old", 3, &older, false), STORE_STALE);
	assert_int_equal(store_apply(s, "k", 1, "low", 3, &same_lower, false), STORE_STALE);
	assert_int_equal(store_apply(s, "k", 1, NULL, 0, &tomb, true), STORE_STALE);
	assert_int_equal(store_get(s, "k", 1, &v, &vl, NULL), -ENOENT);
	struct store_meta m;
	assert_int_equal(store_stat(s, "k", 1, &m), -ENOENT);
	assert_true(m.tombstone);
	assert_int_equal(m.version.stamp, 1000);
	store_close(s);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_get(s, "k", 1, &v, &vl, NULL), -ENOENT);
	assert_int_equal(store_apply(s, "k", 1, "old", 3, &older, false), STORE_STALE);
	assert_int_equal(store_apply(s, "k", 1, "high", 4, &same_higher, false), 0);
	tu_expect(s, "k", 1, "high", 4);
	/* deleting what is absent says so and writes nothing */
	struct store_stats before, after;
	store_stats(s, &before);
	assert_int_equal(store_delete(s, "nothing", 7, NULL), -ENOENT);
	store_stats(s, &after);
	assert_int_equal(before.appended, after.appended);
	store_close(s);
	tu_rmdir(dir);
}

/* ---- threads ---- */

struct hammer {
	struct store *s;
	int id;
	int errors;
	_Atomic int *stop;
};

/* Values describe themselves: 8 bytes of seed, 4 of length, then tu_fill(seed). */
static size_t make_value(uint8_t *buf, uint64_t seed, uint32_t len)
{
	memcpy(buf, &seed, 8);
	memcpy(buf + 8, &len, 4);
	tu_fill(buf + 12, len, seed);
	return 12 + len;
}

static int value_ok(const uint8_t *v, size_t vl)
{
	static _Thread_local uint8_t want[8192];
	uint64_t seed;
	uint32_t len;

	if (vl < 12)
		return 0;
	memcpy(&seed, v, 8);
	memcpy(&len, v + 8, 4);
	if (len != vl - 12 || len > sizeof(want))
		return 0;
	tu_fill(want, len, seed);
	return memcmp(want, v + 12, len) == 0;
}

static void *writer(void *arg)
{
	struct hammer *h = arg;
	uint64_t rng = (uint64_t)h->id + 100;
	uint8_t buf[8300];
	char key[32];

	for (int i = 0; i < 6000; i++) {
		int kl = sprintf(key, "t%d", (int)(tu_rand(&rng) % 300));
		int r = (int)(tu_rand(&rng) % 8);
		int rc;
		if (r == 0) {
			rc = store_delete(h->s, key, (size_t)kl, NULL);
			if (rc != 0 && rc != -ENOENT)
				h->errors++;
		} else {
			size_t n = make_value(buf, tu_rand(&rng), (uint32_t)(tu_rand(&rng) % 8000));
			if (store_put(h->s, key, (size_t)kl, buf, n, NULL) != 0)
				h->errors++;
		}
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct hammer *h = arg;
	uint64_t rng = (uint64_t)h->id + 200;
	char key[32];

	while (!atomic_load(h->stop)) {
		int kl = sprintf(key, "t%d", (int)(tu_rand(&rng) % 300));
		void *v;
		size_t vl;
		int rc = store_get(h->s, key, (size_t)kl, &v, &vl, NULL);
		if (rc == 0) {
			if (!value_ok(v, vl))
				h->errors++;
			free(v);
		} else if (rc != -ENOENT) {
			h->errors++;
		}
		if (tu_rand(&rng) % 64 == 0) {
			struct store_tree_node self, ch[16];
			uint8_t path[1] = { (uint8_t)(tu_rand(&rng) % 16) };
			if (store_tree_children(h->s, path, 1, &self, ch) != 0)
				h->errors++;
		}
	}
	return NULL;
}

/* 4 writers and 4 readers at once, small segments, compaction and batch fsync
 * in the background: no reader ever sees a wrong value or an error. */
static void test_threads(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	pthread_t th[8];
	struct hammer h[8];
	_Atomic int stop = 0;

	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 256 * 1024;
	o.no_background = false;
	o.sync = STORE_SYNC_BATCH;
	o.batch_interval_ms = 2;
	o.compact_interval_ms = 3;
	o.compact_live_ratio = 0.6;
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 8; i++) {
		h[i] = (struct hammer){ .s = s, .id = i, .stop = &stop };
		assert_int_equal(pthread_create(&th[i], NULL, i < 4 ? writer : reader, &h[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, 1);
	for (int i = 4; i < 8; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++)
		assert_int_equal(h[i].errors, 0);
	struct store_stats st;
	store_stats(s, &st);
	assert_true(st.compactions > 0);
	assert_int_equal(st.corrupt_records, 0);
	/* the tree agrees with the keydir after all that */
	struct store_tree_node self, ch[16];
	assert_int_equal(store_tree_children(s, NULL, 0, &self, ch), 0);
	assert_int_equal(self.count, st.keys + st.tombstones);
	uint64_t root = st.tree_root;
	store_close(s);
	s = open_or_fail(dir, &o);
	store_stats(s, &st);
	assert_int_equal(st.tree_root, root);
	store_close(s);
	tu_rmdir(dir);
}

/* Durability modes: always fsyncs before returning; batch within a few ms. */
static void test_sync_modes(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	struct store_stats st;

	tu_options(&o, NULL);
	o.sync = STORE_SYNC_ALWAYS;
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put(s, "a", 1, "x", 1, NULL), 0);
	store_stats(s, &st);
	assert_int_equal(st.synced_through, st.appended);
	store_close(s);

	tu_options(&o, NULL);
	o.sync = STORE_SYNC_BATCH;
	o.no_background = false;
	o.batch_interval_ms = 1;
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put(s, "b", 1, "y", 1, NULL), 0);
	for (int i = 0; i < 2000; i++) {
		store_stats(s, &st);
		if (st.synced_through == st.appended)
			break;
		usleep(1000);
	}
	assert_int_equal(st.synced_through, st.appended);
	store_close(s);

	tu_options(&o, NULL);
	o.sync = STORE_SYNC_NONE;
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put(s, "c", 1, "z", 1, NULL), 0);
	store_stats(s, &st);
	assert_true(st.synced_through < st.appended);
	assert_int_equal(store_sync(s), 0);
	store_stats(s, &st);
	assert_int_equal(st.synced_through, st.appended);
	store_close(s);
	tu_rmdir(dir);
}

/* A full disk (here: a file size limit): the put fails with a clear error,
 * nothing half-written stays, and the store works again once there is room. */
static void test_full_disk(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct rlimit old, lim;
	uint8_t *big = malloc(1 << 20);

	tu_options(&o, &log);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put(s, "small", 5, "ok", 2, NULL), 0);
	tu_fill(big, 1 << 20, 1);
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = 64 * 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int rc = store_put(s, "big", 3, big, 1 << 20, NULL);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_true(rc == -EFBIG || rc == -ENOSPC);
	assert_non_null(strstr(log.text, "append of key big"));
	void *v;
	size_t vl;
	assert_int_equal(store_get(s, "big", 3, &v, &vl, NULL), -ENOENT);
	char *p = seg_file(dir, 1, "cask");
	off_t size = tu_file_size(p);
	assert_true(size < 64 * 1024);
	/* room again: the store goes on */
	assert_int_equal(store_put(s, "big", 3, big, 1 << 20, NULL), 0);
	store_close(s);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_null(strstr(log.text, "cut"));
	tu_expect(s, "small", 5, "ok", 2);
	tu_expect(s, "big", 3, big, 1 << 20);
	store_close(s);
	free(p);
	free(big);
	tu_rmdir(dir);
}

/* A segment file cut short behind the store's back (or an unreadable page):
 * reads of what is gone fail with EIO, the process survives, the rest reads. */
static void test_file_truncated_under_reader(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_meta m1, m2;
	uint8_t val[20000];

	tu_options(&o, &log);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	tu_fill(val, sizeof(val), 3);
	assert_int_equal(store_put(s, "first", 5, val, sizeof(val), &m1), 0);
	assert_int_equal(store_put(s, "second", 6, val, sizeof(val), &m2), 0);
	assert_int_equal(store_sync(s), 0); /* out of the append buffer, into the file */
	char *p = seg_file(dir, 1, "cask");
	assert_int_equal(truncate(p, (off_t)m2.offset + 100), 0);
	void *v;
	size_t vl;
	assert_int_equal(store_get(s, "second", 6, &v, &vl, NULL), -EIO);
	tu_expect(s, "first", 5, val, sizeof(val));
	assert_non_null(strstr(log.text, "key second: cannot read segment 000001"));
	store_close(s);
	/* reopen: the torn tail is cut and reported */
	s = open_or_fail(dir, &o);
	assert_int_equal(store_get(s, "second", 6, &v, &vl, NULL), -ENOENT);
	tu_expect(s, "first", 5, val, sizeof(val));
	store_close(s);
	free(p);
	tu_rmdir(dir);
}

/* The disk fills while acknowledged records wait in the append buffer: the
 * flush fails, they stay readable in memory, new writes are refused with the
 * error, and once there is room again everything lands whole. */
static void test_full_disk_buffered(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct rlimit old, lim;
	uint8_t val[100];
	char key[32];

	tu_options(&o, &log);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put(s, "first", 5, "x", 1, NULL), 0);
	assert_int_equal(store_sync(s), 0);
	char *p = seg_file(dir, 1, "cask");
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = (rlim_t)tu_file_size(p) + 1000;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	for (int i = 0; i < 100; i++) {
		int kl = sprintf(key, "b%d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		assert_int_equal(store_put(s, key, (size_t)kl, val, sizeof(val), NULL), 0);
	}
	int rc = store_sync(s);
	assert_true(rc == -EFBIG || rc == -ENOSPC);
	assert_non_null(strstr(log.text, "stay in memory"));
	assert_int_equal(store_put(s, "refused", 7, "y", 1, NULL), rc);
	tu_fill(val, sizeof(val), 42);
	tu_expect(s, "b42", 3, val, sizeof(val)); /* still readable from memory */
	void *v;
	size_t vl;
	assert_int_equal(store_get(s, "refused", 7, &v, &vl, NULL), -ENOENT);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(store_put(s, "later", 5, "z", 1, NULL), 0);
	assert_int_equal(store_sync(s), 0);
	assert_non_null(strstr(log.text, "went through again"));
	store_close(s);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_null(strstr(log.text, "cut"));
	for (int i = 0; i < 100; i++) {
		int kl = sprintf(key, "b%d", i);
		tu_fill(val, sizeof(val), (uint64_t)i);
		tu_expect(s, key, (size_t)kl, val, sizeof(val));
	}
	tu_expect(s, "later", 5, "z", 1);
	tu_expect(s, "first", 5, "x", 1);
	store_close(s);
	free(p);
	tu_rmdir(dir);
}

/* One process per DATA_DIR: a second open fails with EBUSY and names the pid. */
static void test_lock(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s, *s2 = NULL;
	char pid[32];

	tu_options(&o, &log);
	tu_log_init(&log);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_open(dir, &o, &s2), -EBUSY);
	assert_null(s2);
	snprintf(pid, sizeof(pid), "in use by process %d", (int)getpid());
	assert_non_null(strstr(log.text, pid));
	store_close(s);
	s = open_or_fail(dir, &o);
	store_close(s);
	/* bad options are refused */
	o.segment_size = 10;
	assert_int_equal(store_open(dir, &o, &s2), -EINVAL);
	tu_rmdir(dir);
}

/* store_read: into the caller's buffer; too small says how much is needed. */
static void test_read_into_buffer(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	uint8_t val[10000], buf[10000];
	char text[5000];
	size_t vl = 0;
	struct store_meta m;

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	tu_fill(val, sizeof(val), 11);
	memset(text, 't', sizeof(text));
	assert_int_equal(store_put(s, "plain", 5, val, sizeof(val), NULL), 0);
	assert_int_equal(store_put(s, "text", 4, text, sizeof(text), NULL), 0);
	assert_int_equal(store_read(s, "plain", 5, buf, 100, &vl, NULL), -ERANGE);
	assert_int_equal(vl, sizeof(val));
	assert_int_equal(store_read(s, "plain", 5, buf, sizeof(buf), &vl, &m), 0);
	assert_int_equal(vl, sizeof(val));
	assert_memory_equal(buf, val, sizeof(val));
	assert_false(m.compressed);
	assert_int_equal(store_read(s, "text", 4, buf, 4999, &vl, NULL), -ERANGE);
	assert_int_equal(vl, sizeof(text));
	assert_int_equal(store_read(s, "text", 4, buf, sizeof(buf), &vl, &m), 0);
	assert_true(m.compressed);
	assert_true(m.stored_size < 100);
	assert_memory_equal(buf, text, sizeof(text));
	assert_int_equal(store_read(s, "none", 4, buf, sizeof(buf), &vl, NULL), -ENOENT);
	assert_int_equal(store_read(s, "plain", 5, NULL, 0, &vl, NULL), -EINVAL);
	store_close(s);
	tu_rmdir(dir);
}

/* store_read_content: the value's bytes are the caller's to verify, but the
 * header and the key still are the store's: a flipped byte in a value reads
 * (store_read refuses it), one in a header does not. */
static void test_read_content(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct tu_log log;
	struct store *s;
	struct store_meta ma, mb;
	uint8_t a[3000], b[3000], buf[3000];
	size_t vl = 0;

	tu_options(&o, &log);
	tu_log_init(&log);
	o.segment_size = 4096; /* each value in a sealed segment of its own */
	s = open_or_fail(dir, &o);
	tu_fill(a, sizeof(a), 21);
	tu_fill(b, sizeof(b), 22);
	assert_int_equal(store_put(s, "va", 2, a, sizeof(a), &ma), 0);
	assert_int_equal(store_put(s, "vb", 2, b, sizeof(b), &mb), 0);
	assert_int_equal(store_put(s, "vc", 2, a, 100, NULL), 0);
	assert_int_equal(store_put(s, "pad", 3, b, sizeof(b), NULL), 0);
	assert_true(ma.segment < mb.segment);
	assert_int_equal(store_read_content(s, "va", 2, buf, sizeof(buf), &vl, NULL), 0);
	assert_memory_equal(buf, a, sizeof(a));
	assert_int_equal(store_read_content(s, "va", 2, buf, 10, &vl, NULL), -ERANGE);
	store_close(s);

	char *p = seg_file(dir, ma.segment, "cask");
	flip_byte(p, (off_t)ma.offset + 48 + 2 + 1000); /* a's value */
	free(p);
	p = seg_file(dir, mb.segment, "cask");
	flip_byte(p, (off_t)mb.offset + 41); /* b's header: its client flags */
	free(p);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_read(s, "va", 2, buf, sizeof(buf), &vl, NULL), -EBADMSG);
	assert_int_equal(store_read_content(s, "va", 2, buf, sizeof(buf), &vl, NULL), 0);
	assert_int_equal(vl, sizeof(a));
	assert_int_equal(buf[1000], a[1000] ^ 0x20);
	buf[1000] ^= 0x20;
	assert_memory_equal(buf, a, sizeof(a));
	assert_int_equal(store_read_content(s, "vb", 2, buf, sizeof(buf), &vl, NULL), -EBADMSG);
	assert_int_equal(store_read(s, "vb", 2, buf, sizeof(buf), &vl, NULL), -EBADMSG);
	assert_int_equal(store_read_content(s, "vc", 2, buf, sizeof(buf), &vl, NULL), 0);
	assert_memory_equal(buf, a, 100);
	assert_int_equal(store_read_content(s, "vd", 2, buf, sizeof(buf), &vl, NULL), -ENOENT);
	store_close(s);
	tu_rmdir(dir);
}

/* store_scan: prefixes, tombstones, a callback that stops early. */
static int count_cb(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	(void)key;
	(void)klen;
	(void)m;
	return ++*(int *)arg == 1000 ? 7 : 0;
}

static void test_scan(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	char key[32];
	int n;

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 300; i++) {
		int kl = sprintf(key, "%s/%d", i % 3 ? "photo" : "text", i);
		assert_int_equal(store_put(s, key, (size_t)kl, "v", 1, NULL), 0);
	}
	assert_int_equal(store_delete(s, "text/0", 6, NULL), 0);
	n = 0;
	assert_int_equal(store_scan(s, "text/", 5, false, count_cb, &n), 0);
	assert_int_equal(n, 99);
	n = 0;
	assert_int_equal(store_scan(s, "text/", 5, true, count_cb, &n), 0);
	assert_int_equal(n, 100);
	n = 0;
	assert_int_equal(store_scan(s, "", 0, false, count_cb, &n), 0);
	assert_int_equal(n, 299);
	n = 998;
	assert_int_equal(store_scan(s, "photo", 5, false, count_cb, &n), 7);
	store_close(s);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_sizes),
		cmocka_unit_test(test_reopen_every_write),
		cmocka_unit_test(test_truncated_tail_every_offset),
		cmocka_unit_test(test_flipped_byte),
		cmocka_unit_test(test_hint_rebuilt),
		cmocka_unit_test(test_refuses_to_cut_whole_records),
		cmocka_unit_test(test_compaction_model),
		cmocka_unit_test(test_versions),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_sync_modes),
		cmocka_unit_test(test_full_disk),
		cmocka_unit_test(test_file_truncated_under_reader),
		cmocka_unit_test(test_full_disk_buffered),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_read_into_buffer),
		cmocka_unit_test(test_read_content),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
