/*
 * record - the on-disk record: a fixed little-endian header, the key, then
 * the (possibly zstd-compressed) value. The header's first 8 bytes are a
 * checksum over the rest of the header, the key and (through its xxh3-64, the
 * seed) the stored value, so a record is either whole and verified or not
 * there. Version 2 (48-byte header) adds the client's flags and the expiry
 * time; version 1 (40 bytes) is still read, with both 0. Byte layout:
 * docs/FORMAT.md ("Records").
 */
#ifndef CASKFS_STORE_RECORD_I_H
#define CASKFS_STORE_RECORD_I_H

#include <stddef.h>
#include <stdint.h>

#define STORE_REC_HDR_V1 40 /* header of a version 1 record: the shortest */
#define STORE_REC_HDR 48    /* header of a version 2 record: the longest */
#define STORE_REC_VERSION 2 /* what is written */
#define STORE_REC_TOMBSTONE 0x01
#define STORE_REC_ZSTD 0x02
#define STORE_REC_FLAGS_KNOWN (STORE_REC_TOMBSTONE | STORE_REC_ZSTD)

/* The segment file header: magic, format version, segment id. Version 2
 * segments may hold records of version 1 and 2; version 1 only version 1. */
#define STORE_SEG_MAGIC "CASKSEG\0"
#define STORE_SEG_HDR 16
#define STORE_SEG_VERSION 2

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
	uint32_t client_flags; /* version 2; 0 for version 1 */
	uint32_t expires;      /* version 2: unix seconds, 0 never; 0 for version 1 */
};

/* Header bytes of a record of this version (1 or 2). */
static inline size_t store_rec_hdr_len(uint8_t version)
{
	return version == 1 ? STORE_REC_HDR_V1 : STORE_REC_HDR;
}

/* Writes h (checksum field as it is) into out: store_rec_hdr_len(h->version)
 * bytes. A version 1 header cannot hold client_flags or expires (dropped). */
void store_rec_encode(const struct store_rec_hdr *h, uint8_t out[STORE_REC_HDR]);

/*
 * Decodes a header from avail untrusted bytes at in and checks what can be
 * checked without the body: a known version whose header fits in avail,
 * known flags, key length 1..STORE_KEY_MAX, value lengths within
 * STORE_VALUE_MAX, a tombstone with no value and no expiry. Returns 0 or
 * -EBADMSG (also when avail is too short for the header).
 */
int store_rec_decode(const uint8_t *in, size_t avail, struct store_rec_hdr *h);

/* Total bytes of a record with this header. */
static inline uint64_t store_rec_size(const struct store_rec_hdr *h)
{
	return (uint64_t)store_rec_hdr_len(h->version) + h->key_len + h->stored_len;
}

/*
 * The checksum field's value: xxh3-64 over the header after the checksum
 * (hdr[8..40) or hdr[8..48), as hdr's version byte says) and the key, seeded
 * with stored_hash, the xxh3-64 of the stored value bytes. For an
 * uncompressed value that is the value hash already in the header, so a put
 * hashes its value once.
 */
uint64_t store_rec_checksum(const uint8_t *hdr, const void *key, size_t klen, uint64_t stored_hash);

/* Encodes a segment header (the current version) for segment id into out. */
void store_seg_encode(uint32_t id, uint8_t out[STORE_SEG_HDR]);
/* Checks a segment header; returns its version (1 or 2) or -EBADMSG. */
int store_seg_decode(const uint8_t in[STORE_SEG_HDR], uint32_t expect_id);

#endif
