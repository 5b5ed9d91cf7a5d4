/*
 * compress - zstd for values that are worth it. Photos and audio are already
 * compressed, so a cheap test runs first: the order-0 entropy of a 1 KiB
 * sample taken from four places (a table lookup per byte value, no
 * logarithms). Data near 8 bits per byte is stored as it is; anything else is
 * compressed and kept only when that saves at least an eighth. Contexts are
 * per thread, created on first use. The zstd flag: docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>

#include "store_i.h"

#define SAMPLE_LEN 1024
#define MIN_LEN 128
/* Bits per byte above which a sample is taken as already compressed. A random
 * 1 KiB sample measures about 7.8 (the estimate runs low on small samples);
 * text about 4.5 to 5.5. */
#define ENTROPY_LIMIT 7.5

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
/* term[c] = -c * log2(c / SAMPLE_LEN): a byte value seen c times in a full sample. */
static double term[SAMPLE_LEN + 1];
static pthread_once_t term_once = PTHREAD_ONCE_INIT;

static void make_terms(void)
{
	for (int c = 1; c <= SAMPLE_LEN; c++)
		term[c] = -(double)c * log2((double)c / SAMPLE_LEN);
}

static void free_cctx(void *p)
{
	ZSTD_freeCCtx(p);
}

static void free_dctx(void *p)
{
	ZSTD_freeDCtx(p);
}

static void make_keys(void)
{
	pthread_key_create(&cctx_key, free_cctx);
	pthread_key_create(&dctx_key, free_dctx);
}

static ZSTD_CCtx *thread_cctx(void)
{
	ZSTD_CCtx *c;

	pthread_once(&keys_once, make_keys);
	c = pthread_getspecific(cctx_key);
	if (!c) {
		c = ZSTD_createCCtx();
		if (c)
			pthread_setspecific(cctx_key, c);
	}
	return c;
}

static ZSTD_DCtx *thread_dctx(void)
{
	ZSTD_DCtx *d;

	pthread_once(&keys_once, make_keys);
	d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d)
			pthread_setspecific(dctx_key, d);
	}
	return d;
}

/* Worth it: saves at least 1/8 of the input. */
static bool saves_enough(size_t in, size_t out)
{
	return out <= in - in / 8;
}

/* Estimates bits per byte of src from a sample of SAMPLE_LEN bytes in four
 * runs (len >= MIN_LEN; short values are sampled with overlap). */
static double sample_entropy(const uint8_t *src, size_t len)
{
	uint32_t hist[256] = { 0 };
	const size_t run = SAMPLE_LEN / 4;
	double bits = 0;

	pthread_once(&term_once, make_terms);
	for (int part = 0; part < 4; part++) {
		if (len < run) {
			for (size_t i = 0; i < run; i++)
				hist[src[i % len]]++;
			continue;
		}
		const uint8_t *p = src + (len - run) / 3 * (size_t)part;
		for (size_t i = 0; i < run; i++)
			hist[p[i]]++;
	}
	for (int i = 0; i < 256; i++)
		bits += term[hist[i]];
	return bits / SAMPLE_LEN;
}

int store_zstd_compress(int level, const void *src, size_t len, void **out, size_t *outlen)
{
	ZSTD_CCtx *c;
	size_t bound, n;
	void *buf;

	if (level < 0 || len < MIN_LEN || sample_entropy(src, len) > ENTROPY_LIMIT)
		return 0;
	c = thread_cctx();
	if (!c)
		return -ENOMEM;
	bound = ZSTD_compressBound(len);
	buf = malloc(bound);
	if (!buf)
		return -ENOMEM;
	n = ZSTD_compressCCtx(c, buf, bound, src, len, level);
	if (ZSTD_isError(n) || !saves_enough(len, n)) {
		free(buf);
		return 0;
	}
	*out = buf;
	*outlen = n;
	return 1;
}

int store_zstd_decompress(const void *src, size_t slen, void *dst, size_t dlen)
{
	ZSTD_DCtx *d = thread_dctx();
	size_t n;

	if (!d)
		return -ENOMEM;
	n = ZSTD_decompressDCtx(d, dst, dlen, src, slen);
	if (ZSTD_isError(n) || n != dlen)
		return -EBADMSG;
	return 0;
}
