/*
 * auth.h - peers prove they hold the cluster's shared secret, without sending
 * it: a challenge-response with HMAC-SHA-256 (libsodium) over both sides'
 * random nonces, so each side also checks the other. It authenticates a
 * connection; it does not encrypt it (docs/PROTOCOL.md, "Authentication").
 */
#ifndef CASKFS_STORE_NODE_AUTH_H
#define CASKFS_STORE_NODE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_NONCE 16
#define AUTH_PROOF 32

/* The key derived from a secret file's bytes (BLAKE2b-256). */
struct auth_key {
	uint8_t k[32];
};

/*
 * Reads the secret file at path and derives the key into *key (the caller's).
 * A secret is the file's first 4096 bytes, less a trailing newline; it must
 * be at least 16 bytes and the file must not be readable by group or others.
 * Returns 0, or on failure a message in err (errcap bytes, NUL-terminated)
 * and: -EPERM (the file's mode lets group or others in), -EINVAL (fewer than
 * 16 bytes), -EIO (libsodium cannot start), or the errno of open() or read().
 */
int auth_load(const char *path, struct auth_key *key, char *err, size_t errcap);

/* Fills n with random bytes (libsodium's generator). */
void auth_nonce(uint8_t n[AUTH_NONCE]);

/* Writes into out the proof that role ('c' client, 's' server) holds key,
 * bound to both nonces (cn the client's, sn the server's). */
void auth_proof(const struct auth_key *key, char role, const uint8_t cn[AUTH_NONCE],
		const uint8_t sn[AUTH_NONCE], uint8_t out[AUTH_PROOF]);

/* Whether proof is role's proof for these nonces (constant time). */
bool auth_check(const struct auth_key *key, char role, const uint8_t cn[AUTH_NONCE],
		const uint8_t sn[AUTH_NONCE], const uint8_t proof[AUTH_PROOF]);

/* Lower-case hex of the n bytes at in into out, which must hold 2n + 1
 * bytes (NUL-terminated). */
void auth_hex(const uint8_t *in, size_t n, char *out);

/* Parses the hlen characters at hex (either case, not terminated) into
 * exactly n bytes at out; false, with out partly written, on anything but
 * 2n hex digits. */
bool auth_unhex(const char *hex, size_t hlen, uint8_t *out, size_t n);

#endif
