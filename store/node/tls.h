/*
 * tls.h - the OpenSSL contexts of a node's TLS (docs/PROTOCOL.md, "TLS"):
 * TLS 1.3 only, a certificate and key per node, and a CA that the other end
 * must be signed by. A server with a CA requires and verifies a client
 * certificate (mutual TLS); a client always verifies the server, against
 * the CA (or the system's trust store without one) and against the host it
 * dialled (the certificate's IP or DNS subject alternative names).
 * The contexts are OpenSSL's SSL_CTX, reference-counted and thread-safe.
 */
#ifndef CASKFS_STORE_NODE_TLS_H
#define CASKFS_STORE_NODE_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st; /* OpenSSL's SSL_CTX */

/* File names of PEM files; any may be NULL (not given). */
struct tls_files {
	const char *cert; /* this end's certificate (chain) */
	const char *key;  /* its private key */
	const char *ca;	  /* the CA certificate(s) the other end must chain to */
};

/* Whether any of the three is given. */
bool tls_files_given(const struct tls_files *f);

/*
 * A server context from f: cert and key are required; with ca, clients must
 * present a certificate signed by it. On success *out is the caller's
 * (tls_ctx_free()). Errors, with a message in err (errcap bytes,
 * NUL-terminated) naming the file: -EINVAL (cert or key missing, a file
 * OpenSSL cannot use, a key that does not match the certificate), -ENOMEM.
 */
int tls_server_ctx(const struct tls_files *f, struct ssl_ctx_st **out, char *err, size_t errcap);

/*
 * A client context from f: cert and key (both or neither) are presented to
 * servers that ask; ca verifies servers (NULL: the system's trust store).
 * Errors as tls_server_ctx().
 */
int tls_client_ctx(const struct tls_files *f, struct ssl_ctx_st **out, char *err, size_t errcap);

/* Drops the caller's reference to ctx. NULL is fine. */
void tls_ctx_free(struct ssl_ctx_st *ctx);

/* Whether ctx requires the other end's certificate (a server with a CA). */
bool tls_ctx_mutual(struct ssl_ctx_st *ctx);

/* The oldest queued OpenSSL error of this thread as text, and clears the
 * queue; "" when there is none. buf has cap bytes. Returns buf. */
const char *tls_last_error(char *buf, size_t cap);

/*
 * Where a session's outgoing records gather, so that many records leave in
 * one send() instead of one each (16 KiB records: 16 sends and as many
 * segments for a 256 KiB value). Owned by the caller, zeroed to start; its
 * buffer (p) is malloc'd on the first record, and the caller frees it.
 */
struct tls_out {
	char *p;
	size_t pos, len, cap; /* [pos, len) gathered, not yet sent */
};

/* Largest amount of records gathered before the session must send. */
#define TLS_OUT_MAX (256u << 10)

struct ssl_st; /* OpenSSL's SSL */

/*
 * Makes a session of ctx on socket fd that reads from the socket and writes
 * its records into out (the caller sends them: tls_out_send()). out must
 * outlive the session. Returns the session (SSL_free() it), or NULL when
 * memory runs out.
 */
struct ssl_st *tls_session(struct ssl_ctx_st *ctx, int fd, struct tls_out *out);

/* Sends what out holds on fd without blocking: 0 when all went, -EAGAIN
 * when the socket took what it could, -errno. The buffer is freed once
 * empty. */
int tls_out_send(struct tls_out *out, int fd);

#endif
