/*
 * record - the on-disk record: a fixed 40-byte little-endian header, the key,
 * then the (possibly zstd-compressed) value. The header's first 8 bytes are a
 * checksum over the rest of the header, the key and (through its xxh3-64, the
 * seed) the stored value, so a record is either whole and verified or not
 * there. Byte layout: docs/FORMAT.md.
 */
#ifndef CASKFS_STORE_RECORD_I_H
#define CASKFS_STORE_RECORD_I_H

#include <stddef.h>
#include <stdint.h>

#define STORE_REC_HDR 40
#define STORE_REC_VERSION 1
#define STORE_REC_TOMBSTONE 0x01
#define STORE_REC_ZSTD 0x02
#define STORE_REC_FLAGS_KNOWN (STORE_REC_TOMBSTONE | STORE_REC_ZSTD)

/* The segment file header: magic, format version, segment id. */
#define STORE_SEG_MAGIC "CASKSEG\0"
#define STORE_SEG_HDR 16
#define STORE_SEG_VERSION 1

struct store_rec_hdr {
	uint64_t checksum;
	uint64_t stamp;
	uint64_t value_hash;
	uint32_t node;
	uint32_t stored_len;
	uint32_t raw_len;
	uint16_t key_len;
	uint8_t flags;
	uint8_t version;
};

/* Writes h (checksum field as it is) into out. */
void store_rec_encode(const struct store_rec_hdr *h, uint8_t out[STORE_REC_HDR]);

/*
 * Decodes a header from untrusted bytes and checks what can be checked without
 * the body: version, known flags, key length 1..STORE_KEY_MAX, value lengths
 * within STORE_VALUE_MAX, a tombstone with no value. Returns 0 or -EBADMSG.
 */
int store_rec_decode(const uint8_t in[STORE_REC_HDR], struct store_rec_hdr *h);

/* Total bytes of a record with this header. */
static inline uint64_t store_rec_size(const struct store_rec_hdr *h)
{
	return (uint64_t)STORE_REC_HDR + h->key_len + h->stored_len;
}

/*
 * The checksum field's value: xxh3-64 over hdr[8..40) and the key, seeded with
 * stored_hash, the xxh3-64 of the stored value bytes. For an uncompressed value
 * that is the value hash already in the header, so a put hashes its value once.
 */
uint64_t store_rec_checksum(const uint8_t hdr[STORE_REC_HDR], const void *key, size_t klen,
			    uint64_t stored_hash);

/* Encodes a segment header for segment id into out. */
void store_seg_encode(uint32_t id, uint8_t out[STORE_SEG_HDR]);
/* Checks a segment header; returns 0 or -EBADMSG. */
int store_seg_decode(const uint8_t in[STORE_SEG_HDR], uint32_t expect_id);

#endif
