/*
 * seal.h - the encrypted session of a connection that authenticated with the
 * shared secret but runs without TLS (docs/PROTOCOL.md, "Encrypted session").
 * After the challenge-response both directions become a stream of records:
 *
 *   le32 L | ciphertext (L - 16 bytes) | 16-byte tag      (16 < L <= SEAL_CIPHER_MAX)
 *
 * sealed with XChaCha20-Poly1305 (libsodium's IETF construction) under a key
 * of its own per direction, derived from the secret and both handshake
 * nonces; the nonce is the record's sequence number in that direction and the
 * length prefix is the associated data, so a record that is altered, dropped,
 * replayed or moved fails to open and the connection is closed.
 */
#ifndef CASKFS_STORE_NODE_SEAL_H
#define CASKFS_STORE_NODE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"

#define SEAL_HEADER 4
#define SEAL_TAG 16
/* Largest plaintext a record carries; bigger writes are cut into records. */
#define SEAL_PLAIN_MAX 65536
#define SEAL_CIPHER_MAX (SEAL_PLAIN_MAX + SEAL_TAG)
#define SEAL_RECORD_MAX (SEAL_HEADER + SEAL_CIPHER_MAX)

/* One direction of a session: its key and the sequence number of its next record. */
struct seal_dir {
	uint8_t key[32];
	uint64_t seq;
};

struct seal {
	struct seal_dir tx, rx;
};

/*
 * Derives both directions' keys for one session into *s (the caller's) from
 * the shared key and the nonces of the handshake that authenticated it (cn
 * the client's, sn the server's); role is 'c' for the client's end, 's' for
 * the server's, so that one's tx is the other's rx. Sequence numbers start at 0.
 */
void seal_init(struct seal *s, const struct auth_key *key, const uint8_t cn[AUTH_NONCE],
	       const uint8_t sn[AUTH_NONCE], char role);
/* Wipes the keys in s. */
void seal_wipe(struct seal *s);

/* Bytes the records carrying n bytes of plaintext take on the wire. */
size_t seal_wire_size(size_t n);

/*
 * Seals the n bytes at plain (1 <= n <= SEAL_PLAIN_MAX) into one record at
 * out, which must have room for n + SEAL_HEADER + SEAL_TAG bytes, and
 * advances d's sequence number. Returns the record's size.
 */
size_t seal_record(struct seal_dir *d, const void *plain, size_t n, uint8_t *out);

/*
 * The size of the record whose first bytes are the len bytes at in
 * (untrusted): 0 when fewer than SEAL_HEADER bytes are there, -EPROTO when
 * the length prefix is out of bounds (the stream cannot go on: close it).
 */
long seal_peek(const uint8_t *in, size_t len);

/*
 * Opens the record at the start of the len bytes at in (untrusted) into out
 * (cap bytes of room; the plaintext is the record's size less SEAL_HEADER
 * and SEAL_TAG, at most SEAL_PLAIN_MAX) and advances d's sequence number.
 * in and out may not overlap. Returns the record's size (bytes consumed from
 * in) with *plain_len set, 0 when the record is not all there yet, -EPROTO
 * for a length out of bounds, -ENOBUFS when cap is too small (nothing
 * consumed), -EBADMSG when it fails authentication. After -EPROTO or
 * -EBADMSG the session is broken: close the connection.
 */
long seal_open(struct seal_dir *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
	       size_t *plain_len);

#endif
