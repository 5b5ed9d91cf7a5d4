/*
 * record - encoding and checking of log records and segment headers.
 * Every field is written with an explicit little-endian helper; decoders treat
 * their input as untrusted and check every length before it is used. The
 * version byte (offset 39, in both versions) says how long the header is.
 * Layout: docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include "../xxh_i.h"

#include "record_i.h"
#include "../store.h"
#include "../endian.h"

void store_rec_encode(const struct store_rec_hdr *h, uint8_t out[STORE_REC_HDR])
{
	put_le64(out + 0, h->checksum);
	put_le64(out + 8, h->stamp);
	put_le64(out + 16, h->value_hash);
	put_le32(out + 24, h->node);
	put_le32(out + 28, h->stored_len);
	put_le32(out + 32, h->raw_len);
	put_le16(out + 36, h->key_len);
	out[38] = h->flags;
	out[39] = h->version;
	if (h->version == 1)
		return;
	put_le32(out + 40, h->client_flags);
	put_le32(out + 44, h->expires);
}

int store_rec_decode(const uint8_t *in, size_t avail, struct store_rec_hdr *h)
{
	if (avail < STORE_REC_HDR_V1)
		return -EBADMSG;
	h->checksum = get_le64(in + 0);
	h->stamp = get_le64(in + 8);
	h->value_hash = get_le64(in + 16);
	h->node = get_le32(in + 24);
	h->stored_len = get_le32(in + 28);
	h->raw_len = get_le32(in + 32);
	h->key_len = get_le16(in + 36);
	h->flags = in[38];
	h->version = in[39];
	h->client_flags = 0;
	h->expires = 0;

	if (h->version != 1 && h->version != 2)
		return -EBADMSG;
	if (h->version == 2) {
		if (avail < STORE_REC_HDR)
			return -EBADMSG;
		h->client_flags = get_le32(in + 40);
		h->expires = get_le32(in + 44);
	}
	if (h->flags & ~STORE_REC_FLAGS_KNOWN)
		return -EBADMSG;
	if (h->key_len == 0 || h->key_len > STORE_KEY_MAX)
		return -EBADMSG;
	if (h->stored_len > STORE_VALUE_MAX || h->raw_len > STORE_VALUE_MAX)
		return -EBADMSG;
	if (h->flags & STORE_REC_TOMBSTONE) {
		if (h->stored_len != 0 || h->raw_len != 0 || (h->flags & STORE_REC_ZSTD) ||
		    h->expires != 0)
			return -EBADMSG;
	} else if (!(h->flags & STORE_REC_ZSTD) && h->stored_len != h->raw_len) {
		return -EBADMSG;
	}
	return 0;
}

uint64_t store_rec_checksum(const uint8_t *hdr, const void *key, size_t klen, uint64_t stored_hash)
{
	uint8_t buf[STORE_REC_HDR - 8 + STORE_KEY_MAX];
	size_t hl = store_rec_hdr_len(hdr[39]) - 8;

	if (klen > STORE_KEY_MAX)
		klen = STORE_KEY_MAX;
	memcpy(buf, hdr + 8, hl);
	memcpy(buf + hl, key, klen);
	return XXH3_64bits_withSeed(buf, hl + klen, stored_hash);
}

void store_seg_encode(uint32_t id, uint8_t out[STORE_SEG_HDR])
{
	memcpy(out, STORE_SEG_MAGIC, 8);
	put_le32(out + 8, STORE_SEG_VERSION);
	put_le32(out + 12, id);
}

int store_seg_decode(const uint8_t in[STORE_SEG_HDR], uint32_t expect_id)
{
	uint32_t version = get_le32(in + 8);

	if (memcmp(in, STORE_SEG_MAGIC, 8) != 0)
		return -EBADMSG;
	if (version < 1 || version > STORE_SEG_VERSION)
		return -EBADMSG;
	if (get_le32(in + 12) != expect_id)
		return -EBADMSG;
	return (int)version;
}
