/*
 * client_i.h - the blocking client's internals, shared by client.c (connecting,
 * the requests and their replies) and channel.c (how the bytes move: plainly,
 * through TLS, or as sealed records). Calls go one way: client -> channel.
 * Protocol: docs/PROTOCOL.md.
 */
#ifndef CASKFS_STORE_NODE_CLIENT_I_H
#define CASKFS_STORE_NODE_CLIENT_I_H

#include <stdint.h>
#include <sys/types.h>

#include "client.h"
#include "seal.h"
#include "tls.h"

/* Small pieces of a request are gathered into one TLS record up to this. */
#define TLS_GATHER 16384

/* Sealed records received and not yet opened, and one opened record. */
struct mc_sealed {
	struct seal s;
	uint8_t wire[2 * SEAL_RECORD_MAX]; /* [wpos, wlen) received */
	size_t wpos, wlen;
	uint8_t plain[SEAL_PLAIN_MAX]; /* [ppos, plen) opened, not yet read */
	size_t ppos, plen;
	uint8_t tx[SEAL_PLAIN_MAX]; /* plaintext gathered for the next record */
	size_t txlen;
	uint8_t rec[SEAL_RECORD_MAX]; /* the record being sent */
};

struct mc_conn {
	int fd;
	int io_ms;
	uint64_t sent, received; /* bytes of the protocol, before TLS or sealing */
	char *buf;		 /* received bytes [pos, len) not yet consumed */
	size_t pos, len, cap;
	struct ssl_st *ssl;	  /* TLS, or NULL */
	struct tls_out tx;	  /* TLS: records made, not yet sent */
	struct mc_sealed *sealed; /* sealed with the secret, or NULL */
	char *gather;		  /* TLS: TLS_GATHER bytes for small pieces */
	char addr[300];
};

/* Waits for events on fd for at most ms; -ETIMEDOUT when nothing came. */
int mc_wait_fd(int fd, short events, int ms);
/* Receives at most cap bytes of the protocol into dst, waiting up to io_ms
 * each time none are there: how many (> 0), -ECONNRESET at the end of the
 * stream, -EPROTO for a sealed record that fails, -ETIMEDOUT, -errno. */
ssize_t mc_recv_some(struct mc_conn *c, void *dst, size_t cap);
/* The TLS handshake on c's socket when mc_tls_init() turned TLS on (else 0),
 * the server's certificate verified as naming host. Errors as mc_connect()'s
 * for TLS. */
int mc_channel_tls(struct mc_conn *c, const char *host);
/* Seals c from now on with keys from key and the handshake's nonces; what
 * c's buffer holds beyond the answer came sealed already. */
int mc_channel_seal(struct mc_conn *c, const struct auth_key *key, const uint8_t *cn,
		    const uint8_t *sn);
/* Frees what the channel holds (TLS session, sealing state, buffers). */
void mc_channel_free(struct mc_conn *c);

#endif
