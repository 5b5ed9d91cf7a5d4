/*
 * chunkmap - a file's chunk map: the 1 MiB slots that hold data (or are
 * reserved by fallocate), sorted by slot number, each listed once. A slot
 * not listed is a hole, so a map costs memory and namespace bytes for the
 * data a file holds, never for its size: a 1 TiB sparse file written at both
 * ends is two entries. Lookups are binary searches; appending past the last
 * slot (a sequential write) costs no move. Format: docs/FORMAT.md ("Inode
 * record").
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "meta.h"

uint32_t meta_map_lower(const struct meta_chunk *v, uint32_t n, uint32_t idx)
{
	uint32_t lo = 0, hi = n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v[mid].idx < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const struct meta_chunk *meta_map_find(const struct meta_chunk *v, uint32_t n, uint32_t idx)
{
	uint32_t i = meta_map_lower(v, n, idx);

	return i < n && v[i].idx == idx ? &v[i] : NULL;
}

static int grow(struct meta_map *m)
{
	uint32_t cap;
	struct meta_chunk *v;

	if (m->n < m->cap)
		return 0;
	if (m->cap >= UINT32_MAX / 2)
		return -EFBIG;
	cap = m->cap ? m->cap * 2 : 4;
	v = realloc(m->v, (size_t)cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	m->v = v;
	m->cap = cap;
	return 0;
}

int meta_map_set(struct meta_map *m, const struct meta_chunk *c)
{
	uint32_t i = m->n && m->v[m->n - 1].idx < c->idx ? m->n : meta_map_lower(m->v, m->n, c->idx);
	int rc;

	if (i < m->n && m->v[i].idx == c->idx) {
		m->v[i] = *c;
		return 0;
	}
	if ((rc = grow(m)) < 0)
		return rc;
	memmove(m->v + i + 1, m->v + i, (size_t)(m->n - i) * sizeof(*m->v));
	m->v[i] = *c;
	m->n++;
	return 0;
}

void meta_map_punch(struct meta_map *m, uint32_t first, uint32_t end)
{
	uint32_t a = meta_map_lower(m->v, m->n, first);
	uint32_t b = end > first ? meta_map_lower(m->v, m->n, end) : a;

	memmove(m->v + a, m->v + b, (size_t)(m->n - b) * sizeof(*m->v));
	m->n -= b - a;
}

void meta_map_fit(struct meta_map *m, uint64_t size)
{
	uint64_t slots = (size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
	uint32_t keep = slots > UINT32_MAX ? m->n : meta_map_lower(m->v, m->n, (uint32_t)slots);

	m->n = keep;
	if (keep && m->v[keep - 1].idx == slots - 1) {
		uint64_t last = size - (slots - 1) * META_CHUNK_SIZE;
		if (m->v[keep - 1].len > last)
			m->v[keep - 1].len = (uint32_t)last;
	}
}

uint64_t meta_map_allocated(const struct meta_chunk *v, uint32_t n)
{
	uint64_t sum = 0;

	for (uint32_t i = 0; i < n; i++)
		sum += ((uint64_t)v[i].len + META_BLOCK - 1) / META_BLOCK * META_BLOCK;
	return sum;
}

int meta_map_copy(struct meta_map *dst, const struct meta_chunk *v, uint32_t n)
{
	struct meta_chunk *c = NULL;

	if (n) {
		c = malloc((size_t)n * sizeof(*c));
		if (!c)
			return -ENOMEM;
		memcpy(c, v, (size_t)n * sizeof(*c));
	}
	free(dst->v);
	dst->v = c;
	dst->n = dst->cap = n;
	return 0;
}

bool meta_chunk_reserved(const struct meta_chunk *c)
{
	static const uint8_t zero[META_CHUNK_KEY];

	return memcmp(c->key, zero, META_CHUNK_KEY) == 0;
}

void meta_map_release(struct meta_map *m)
{
	free(m->v);
	m->v = NULL;
	m->n = m->cap = 0;
}
