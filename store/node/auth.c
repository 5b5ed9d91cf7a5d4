/*
 * auth - the shared-secret challenge-response of docs/PROTOCOL.md
 * ("Authentication"). The secret never crosses the wire; each proof is an
 * HMAC-SHA-256 over a role byte and both nonces, so a recorded exchange
 * cannot be replayed against a fresh nonce.
 */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int auth_load(const char *path, struct auth_key *key, char *err, size_t errcap)
{
	uint8_t buf[4096];
	struct stat st;
	ssize_t n;
	int fd, rc = 0;

	if (sodium_init() < 0) {
		snprintf(err, errcap, "libsodium failed to initialize");
		return -EIO;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errcap, "cannot open secret file %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || (st.st_mode & 077)) {
		snprintf(err, errcap,
			 "secret file %s is readable by group or others (chmod 600 it)", path);
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		rc = -errno;
		snprintf(err, errcap, "cannot read secret file %s: %s", path, strerror(errno));
		return rc;
	}
	/* a trailing newline is not part of the secret */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n < 16) {
		snprintf(err, errcap, "secret file %s holds fewer than 16 bytes", path);
		return -EINVAL;
	}
	crypto_generichash(key->k, sizeof(key->k), buf, (size_t)n, NULL, 0);
	sodium_memzero(buf, sizeof(buf));
	return 0;
}

void auth_nonce(uint8_t n[AUTH_NONCE])
{
	if (sodium_init() < 0)
		return; /* cannot happen once auth_load() succeeded */
	randombytes_buf(n, AUTH_NONCE);
}

void auth_proof(const struct auth_key *key, char role, const uint8_t cn[AUTH_NONCE],
		const uint8_t sn[AUTH_NONCE], uint8_t out[AUTH_PROOF])
{
	crypto_auth_hmacsha256_state st;
	uint8_t tag[16] = "caskfs-auth-1-?";

	tag[14] = (uint8_t)role;
	crypto_auth_hmacsha256_init(&st, key->k, sizeof(key->k));
	crypto_auth_hmacsha256_update(&st, tag, sizeof(tag));
	crypto_auth_hmacsha256_update(&st, cn, AUTH_NONCE);
	crypto_auth_hmacsha256_update(&st, sn, AUTH_NONCE);
	crypto_auth_hmacsha256_final(&st, out);
}

bool auth_check(const struct auth_key *key, char role, const uint8_t cn[AUTH_NONCE],
		const uint8_t sn[AUTH_NONCE], const uint8_t proof[AUTH_PROOF])
{
	uint8_t want[AUTH_PROOF];

	auth_proof(key, role, cn, sn, want);
	return sodium_memcmp(want, proof, AUTH_PROOF) == 0;
}

void auth_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = 0;
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool auth_unhex(const char *hex, size_t hlen, uint8_t *out, size_t n)
{
	if (hlen != 2 * n)
		return false;
	for (size_t i = 0; i < n; i++) {
		int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}
