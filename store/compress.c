/*
 * compress - zstd for values that are worth it. Photos and audio are already
 * compressed, so a cheap probe (the first 8 KiB) decides first; the whole value
 * is compressed only when the probe saves, and kept only when it saves at least
 * an eighth. Contexts are per thread, created on first use.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>

#include "store_i.h"

#define PROBE_LEN 8192
#define MIN_LEN 128

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

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

int store_zstd_compress(int level, const void *src, size_t len, void **out, size_t *outlen)
{
	ZSTD_CCtx *c;
	size_t bound, n;
	void *buf;

	if (level < 0 || len < MIN_LEN)
		return 0;
	c = thread_cctx();
	if (!c)
		return -ENOMEM;
	bound = ZSTD_compressBound(len);
	buf = malloc(bound);
	if (!buf)
		return -ENOMEM;
	if (len > PROBE_LEN) {
		n = ZSTD_compressCCtx(c, buf, bound, src, PROBE_LEN, level);
		if (ZSTD_isError(n) || !saves_enough(PROBE_LEN, n)) {
			free(buf);
			return 0;
		}
	}
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
