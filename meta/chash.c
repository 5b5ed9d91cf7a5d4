/*
 * chash - the content hash of a file, defined over its chunk map so that it
 * costs no read of the data (docs/FORMAT.md, "Content hash"): xxh3-128 over
 * le64 size, then, for every slot that holds bytes, le32 index, le32 length
 * and the 16-byte chunk id. Holes and stored all-zero slots are left out
 * alike, and a slot's length is cut to the file's end, so the same bytes
 * written whole or in pieces, sparse or not, hash the same. A slot whose
 * chunk is longer or shorter than what it reads (clipped by a truncate, or
 * extended past it) counts by the id of the bytes it reads, which only the
 * caller can tell, for any slot short of a whole one
 * (meta_content_hash_read). slot_at() is the one place that
 * knows how the chunk map is laid out.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "meta_i.h"
#include "store/endian.h"
#include "store/xxh_i.h"

static const uint8_t zeros[64 << 10];
static uint8_t zero_slot_id[META_CHUNK_KEY]; /* of META_CHUNK_SIZE zero bytes */
static pthread_once_t zero_once = PTHREAD_ONCE_INIT;

/* The chunk id (xxh3-128, big-endian) of len zero bytes, streamed: the same
 * digest as the one-shot hash a chunk's id is. */
static void zero_id(uint32_t len, uint8_t out[META_CHUNK_KEY])
{
	XXH3_state_t st;
	XXH128_canonical_t c;

	XXH3_128bits_reset(&st);
	for (uint32_t done = 0; done < len;) {
		uint32_t n = len - done < sizeof(zeros) ? len - done : (uint32_t)sizeof(zeros);
		XXH3_128bits_update(&st, zeros, n);
		done += n;
	}
	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
	memcpy(out, c.digest, META_CHUNK_KEY);
}

static void zero_init(void)
{
	zero_id(META_CHUNK_SIZE, zero_slot_id);
}

bool meta_chunk_is_zero(const uint8_t id[META_CHUNK_KEY], uint32_t len)
{
	uint8_t z[META_CHUNK_KEY];
	static const uint8_t hole[META_CHUNK_KEY];

	if (memcmp(id, hole, META_CHUNK_KEY) == 0 || len == 0)
		return true;
	if (len == META_CHUNK_SIZE) {
		pthread_once(&zero_once, zero_init);
		return memcmp(id, zero_slot_id, META_CHUNK_KEY) == 0;
	}
	zero_id(len, z);
	return memcmp(id, z, META_CHUNK_KEY) == 0;
}

/* Entry i of in's chunk map (i < in->nchunks): its slot's index in the
 * file, its length and its id (the map is sparse and sorted: holes are not
 * listed; a reserved slot has the all-zero id and reads as zeros). */
static void slot_at(const struct meta_inode *in, uint32_t i, uint32_t *idx, uint32_t *len,
		    const uint8_t **id)
{
	*idx = in->chunks[i].idx;
	*len = in->chunks[i].len;
	*id = in->chunks[i].key;
}

bool meta_slot_get(const struct meta_inode *in, uint32_t i, uint32_t *idx, uint32_t *len,
		   const uint8_t **id)
{
	uint64_t start;

	slot_at(in, i, idx, len, id);
	start = (uint64_t)*idx * META_CHUNK_SIZE;
	if (start >= in->size)
		*len = 0;
	else if (in->size - start < *len)
		*len = (uint32_t)(in->size - start);
	return *len > 0 && !meta_chunk_is_zero(*id, *len);
}

struct meta_content_hasher *meta_content_hash_begin(uint64_t size)
{
	XXH3_state_t *st = XXH3_createState();
	uint8_t b[8];

	if (!st)
		return NULL;
	XXH3_128bits_reset(st);
	put_le64(b, size);
	XXH3_128bits_update(st, b, 8);
	return (struct meta_content_hasher *)st;
}

void meta_content_hash_slot(struct meta_content_hasher *h, uint32_t idx, uint32_t len,
			    const uint8_t id[META_CHUNK_KEY])
{
	uint8_t b[8];

	put_le32(b, idx);
	put_le32(b + 4, len);
	XXH3_128bits_update((XXH3_state_t *)h, b, 8);
	XXH3_128bits_update((XXH3_state_t *)h, id, META_CHUNK_KEY);
}

void meta_content_hash_end(struct meta_content_hasher *h, uint8_t out[META_CONTENT_HASH])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest((XXH3_state_t *)h));
	memcpy(out, c.digest, META_CONTENT_HASH);
	XXH3_freeState((XXH3_state_t *)h);
}

int meta_content_hash(const struct meta_inode *in, uint8_t out[META_CONTENT_HASH])
{
	return meta_content_hash_read(in, NULL, NULL, out);
}

int meta_content_hash_read(const struct meta_inode *in, meta_slot_bytes_fn fn, void *arg,
			   uint8_t out[META_CONTENT_HASH])
{
	struct meta_content_hasher *h = meta_content_hash_begin(in->size);
	int rc = 0;

	if (!h)
		return -ENOMEM;
	for (uint32_t i = 0; in->chunks && i < in->nchunks && rc == 0; i++) {
		const struct meta_chunk *c = &in->chunks[i];
		uint64_t start = (uint64_t)c->idx * META_CHUNK_SIZE;
		uint32_t idx, len;
		const uint8_t *id;
		uint8_t read_id[META_CHUNK_KEY];

		if (start >= in->size || meta_chunk_reserved(c))
			continue;
		uint32_t extent = in->size - start < META_CHUNK_SIZE ? (uint32_t)(in->size - start)
								     : META_CHUNK_SIZE;
		if (fn && (c->len != META_CHUNK_SIZE || extent != META_CHUNK_SIZE)) {
			/* maybe other bytes than its chunk's: their own id */
			if ((rc = fn(arg, c, extent, read_id)) == 0 &&
			    !meta_chunk_is_zero(read_id, extent))
				meta_content_hash_slot(h, c->idx, extent, read_id);
		} else if (meta_slot_get(in, i, &idx, &len, &id)) {
			meta_content_hash_slot(h, idx, len, id);
		}
	}
	meta_content_hash_end(h, out);
	return rc;
}
