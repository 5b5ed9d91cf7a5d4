/*
 * testutil.h - helpers for the C unit tests: temporary DATA_DIRs removed after
 * each test, a log callback that records messages so tests can assert on what
 * the store reported, and deterministic pseudo-random bytes.
 */
#ifndef CASKFS_TESTUTIL_H
#define CASKFS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>

#include <cmocka.h>

#include "store/store.h"

static inline char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *p;

	char suffix[7];

	/* mkdtemp wants a template ending in six 'X's */
	memset(suffix, 'X', 6);
	suffix[6] = '\0';
	assert_true(asprintf(&p, "%s/caskfs-unit-%s", base, suffix) > 0);
	assert_non_null(mkdtemp(p));
	return p;
}

static inline void tu_rmdir(char *dir)
{
	char cmd[4200];

	if (!dir)
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* Captured log lines, for asserting on reports. */
struct tu_log {
	pthread_mutex_t mu;
	char text[1 << 16];
	size_t len;
};

static inline void tu_log_fn(void *arg, enum store_log_level level, const char *msg)
{
	struct tu_log *l = arg;

	(void)level;
	pthread_mutex_lock(&l->mu);
	int n = snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s\n", msg);
	if (n > 0 && l->len + (size_t)n < sizeof(l->text))
		l->len += (size_t)n;
	pthread_mutex_unlock(&l->mu);
}

static inline void tu_log_init(struct tu_log *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
}

/* Options for tests: no threads unless asked, a quiet log into *l (if given). */
static inline void tu_options(struct store_options *o, struct tu_log *l)
{
	store_options_init(o);
	o->no_background = true;
	o->sync = STORE_SYNC_NONE;
	if (l) {
		o->log = tu_log_fn;
		o->log_arg = l;
	}
}

/* xorshift64*: deterministic bytes for a given seed. */
static inline uint64_t tu_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static inline void tu_fill(void *buf, size_t len, uint64_t seed)
{
	uint8_t *p = buf;
	uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = tu_rand(&s);
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(p + i, &v, n);
	}
}

static inline off_t tu_file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Asserts key holds exactly val (vlen bytes). */
static inline void tu_expect(struct store *s, const char *key, size_t klen, const void *val,
			     size_t vlen)
{
	void *got = NULL;
	size_t glen = 0;

	assert_int_equal(store_get(s, key, klen, &got, &glen, NULL), 0);
	assert_int_equal(glen, vlen);
	if (vlen)
		assert_memory_equal(got, val, vlen);
	free(got);
}

#endif
