/*
 * seal - the records of an encrypted session (seal.h; docs/PROTOCOL.md,
 * "Encrypted session"). The one idea: nothing about a record is trusted
 * before its tag is checked, except its length, which is bounded first, and
 * the nonce is never sent: each side counts the records of each direction, so
 * a record out of its place opens under the wrong nonce and fails.
 */
#include "seal.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "../endian.h"

_Static_assert(SEAL_TAG == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag size");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == 32, "key size");

void seal_init(struct seal *s, const struct auth_key *key, const uint8_t cn[AUTH_NONCE],
	       const uint8_t sn[AUTH_NONCE], char role)
{
	static const uint8_t tag[16] = "caskfs-seal-1";
	uint8_t master[crypto_kdf_KEYBYTES], to_server[32], to_client[32];
	crypto_generichash_state st;

	/* master = BLAKE2b-256 keyed with K over the tag and both nonces */
	crypto_generichash_init(&st, key->k, sizeof(key->k), sizeof(master));
	crypto_generichash_update(&st, tag, sizeof(tag));
	crypto_generichash_update(&st, cn, AUTH_NONCE);
	crypto_generichash_update(&st, sn, AUTH_NONCE);
	crypto_generichash_final(&st, master, sizeof(master));
	crypto_kdf_derive_from_key(to_server, sizeof(to_server), 1, "caskseal", master);
	crypto_kdf_derive_from_key(to_client, sizeof(to_client), 2, "caskseal", master);
	memcpy(s->tx.key, role == 'c' ? to_server : to_client, 32);
	memcpy(s->rx.key, role == 'c' ? to_client : to_server, 32);
	s->tx.seq = s->rx.seq = 0;
	sodium_memzero(master, sizeof(master));
	sodium_memzero(to_server, sizeof(to_server));
	sodium_memzero(to_client, sizeof(to_client));
}

void seal_wipe(struct seal *s)
{
	sodium_memzero(s, sizeof(*s));
}

size_t seal_wire_size(size_t n)
{
	size_t records = (n + SEAL_PLAIN_MAX - 1) / SEAL_PLAIN_MAX;
	return n + records * (SEAL_HEADER + SEAL_TAG);
}

static void nonce_of(uint64_t seq, uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES])
{
	memset(nonce, 0, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	put_le64(nonce, seq);
}

size_t seal_record(struct seal_dir *d, const void *plain, size_t n, uint8_t *out)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long clen;

	put_le32(out, (uint32_t)(n + SEAL_TAG));
	nonce_of(d->seq++, nonce);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + SEAL_HEADER, &clen, plain, n, out,
						   SEAL_HEADER, NULL, nonce, d->key);
	return SEAL_HEADER + (size_t)clen;
}

long seal_peek(const uint8_t *in, size_t len)
{
	if (len < SEAL_HEADER)
		return 0;
	uint32_t l = get_le32(in);
	if (l <= SEAL_TAG || l > SEAL_CIPHER_MAX)
		return -EPROTO;
	return (long)(SEAL_HEADER + l);
}

long seal_open(struct seal_dir *d, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
	       size_t *plain_len)
{
	uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
	unsigned long long plen;
	long size = seal_peek(in, len);

	if (size <= 0)
		return size;
	if ((size_t)size > len)
		return 0;
	if ((size_t)size - SEAL_HEADER - SEAL_TAG > cap)
		return -ENOBUFS;
	nonce_of(d->seq, nonce);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, in + SEAL_HEADER,
						       (unsigned long long)size - SEAL_HEADER, in,
						       SEAL_HEADER, nonce, d->key) != 0)
		return -EBADMSG;
	d->seq++;
	*plain_len = (size_t)plen;
	return size;
}
