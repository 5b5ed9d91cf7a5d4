/*
 * client.h - a blocking client of the node protocol (docs/PROTOCOL.md) with a
 * deadline on every step: what the quorum client uses to talk to peers and
 * what `caskfs kv HOST:PORT` uses. One connection serves one thread at a time.
 *
 * Errors are negative errnos. Every call that talks may return -ETIMEDOUT
 * (nothing moved for io_ms), -ECONNRESET (the node closed the connection),
 * -ENOMEM, or the errno of a failing send or recv; -EPROTO means a reply
 * that breaks the protocol. After any of these the connection is unusable:
 * close it. A reply the protocol allows but that says no (NOT_FOUND, an
 * error line) leaves the connection usable.
 *
 * Strings returned (mc_line(), mc_addr()) are owned by the connection; values
 * returned through void **val are malloc'd and owned by the caller, who
 * frees them with free().
 */
#ifndef CASKFS_STORE_NODE_CLIENT_H
#define CASKFS_STORE_NODE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "auth.h"
#include "tls.h"
#include "../store.h"

struct mc_conn;

/*
 * Sets the TLS that every later mc_connect() to a HOST:PORT uses, for the
 * whole process (a node has one identity towards all its peers): f's cert
 * and key are shown to servers that ask, f's ca verifies them (the system's
 * trust store without it), and the server's certificate must name the host
 * dialled. With none of f's files (or f NULL), connections go without TLS.
 * Call it before threads connect; it is not safe against a concurrent
 * mc_connect(). Errors, with a message in err (errcap bytes): those of
 * tls_client_ctx(); the previous setting is kept then.
 */
int mc_tls_init(const struct tls_files *f, char *err, size_t errcap);
/* Whether mc_tls_init() turned TLS on. */
bool mc_tls_enabled(void);

/*
 * Connects to addr within connect_ms, runs the TLS handshake when
 * mc_tls_init() turned TLS on, and, when key is not NULL, authenticates
 * within io_ms (the server proves it holds the key too); without TLS the
 * session is then sealed with keys derived from key (seal.h). Later calls
 * wait at most io_ms for each read or write.
 *   addr     "HOST:PORT" (a bracketed IPv6 host is allowed), or "unix:PATH"
 *            for a node's control socket, which needs no key (key ignored)
 *   key      the shared secret, or NULL; copied as needed, not kept
 *   out      on success, the connection, owned by the caller (mc_close());
 *            NULL on failure
 * Errors: -EINVAL (a malformed addr), -ENAMETOOLONG (a unix path too long),
 * -EHOSTUNREACH (HOST does not resolve), -ECONNREFUSED, -ETIMEDOUT or the
 * errno of connect(), -EACCES (authentication failed, or a certificate was
 * refused), -EPROTO (the TLS handshake failed otherwise, e.g. a node without
 * TLS), -ENOMEM, and the errors of talking. TLS failures are printed to
 * stderr with OpenSSL's reason. With TLS 1.3 a server that refuses the
 * client's certificate says so after the handshake: the first reply then
 * fails with -EACCES.
 */
int mc_connect(const char *addr, const struct auth_key *key, int connect_ms, int io_ms,
	       struct mc_conn **out);
/* Closes the socket and frees c. NULL is fine. */
void mc_close(struct mc_conn *c);
/* Whether an idle connection still looks usable: nothing unread, no end of
 * stream from the node (which closed it, e.g. on a restart). A request sent
 * on one that passes may still fail; one that fails was never seen. */
bool mc_idle_ok(struct mc_conn *c);

/* Writes all of iov (n entries, at most 8) or fails. Returns 0, -EINVAL for
 * more than 8 entries, or the errors of talking. */
int mc_send(struct mc_conn *c, const struct iovec *iov, int n);
/* Reads one reply line. *line (owned by c, valid until the next call on c)
 * has no CRLF and is NUL-terminated; *len is its length. Returns 0, -EPROTO
 * for a line longer than PROTO_LINE_MAX, or the errors of talking. */
int mc_line(struct mc_conn *c, char **line, size_t *len);
/* Reads n bytes into dst (the caller's, n bytes of room) and the CRLF after
 * them. Returns 0, -EPROTO when no CRLF follows, or the errors of talking. */
int mc_block(struct mc_conn *c, void *dst, size_t n);

/* Sends a stamped put (xset) of version v with attributes attr (NULL:
 * none) without waiting for its reply; with tombstone, val, vlen and attr are
 * ignored. Returns 0 or the errors of mc_send(). Read the reply with
 * mc_xset_recv(). */
int mc_xset_send(struct mc_conn *c, const void *key, size_t klen, const void *val, size_t vlen,
		 const struct store_version *v, bool tombstone, const struct store_attr *attr);
/* Reads an xset reply: 0 applied, STORE_STALE when the node had this version
 * or a newer one, -EIO when it refused the record (SERVER_ERROR), -EPROTO
 * for any other line, or the errors of talking. On -EIO and -EPROTO the
 * node's line is in err (errcap bytes, NUL-terminated). */
int mc_xset_recv(struct mc_conn *c, char *err, size_t errcap);

/*
 * A node's own record of key (xget: never forwarded to other nodes). On 0,
 * *meta describes the record (version, value_hash, size, attr; a tombstone
 * has meta->tombstone set) and *val / *vlen hold its value (malloc'd, the
 * caller's; pass val NULL to have it read and dropped). *val is NULL on
 * every error. Returns -ENOENT when the node has no record of key, -EPROTO
 * for a malformed reply, or the errors of talking.
 */
int mc_xget(struct mc_conn *c, const void *key, size_t klen, void **val, size_t *vlen,
	    struct store_meta *meta);

/*
 * A plain memcache set, get or delete; the node coordinates it over the
 * cluster. key is a NUL-terminated memcache key (at most PROTO_KEY_MAX bytes).
 *   mc_set     0 when STORED; -EIO for any other reply (printed to stderr)
 *   mc_get     0 with *val (malloc'd, the caller's) and *vlen; -ENOENT when
 *              there is no value; the errors of mc_fetch()
 *   mc_delete  0 when DELETED, -ENOENT for NOT_FOUND, -EIO for any other
 *              reply (printed to stderr)
 * and the errors of talking.
 */
int mc_set(struct mc_conn *c, const char *key, const void *val, size_t vlen);
int mc_get(struct mc_conn *c, const char *key, void **val, size_t *vlen);
int mc_delete(struct mc_conn *c, const char *key);

/* Sends cmd (a NUL-terminated line, CRLF added) and reads a reply of at most
 * one VALUE then END, as for a get of one key: 0 with *val (malloc'd, the
 * caller's) and *vlen, or -ENOENT when the reply has no VALUE. *val is NULL
 * on every error. Errors: -EIO for a SERVER_ERROR line (printed to stderr),
 * -EPROTO for any other unexpected line, and the errors of talking. */
int mc_fetch(struct mc_conn *c, const char *cmd, void **val, size_t *vlen);
/* Bytes of the protocol this connection sent and received so far (before
 * TLS or sealing). */
void mc_traffic(const struct mc_conn *c, uint64_t *sent, uint64_t *received);

/* Sends cmd (a NUL-terminated line, CRLF added) and reads every line of the
 * reply up to "END" (not included), calling fn on each (line as mc_line()
 * gives it). fn returns non-zero to fail the call with that value; the rest
 * of the reply is still read. Errors: -EIO when the reply is ERROR,
 * CLIENT_ERROR or SERVER_ERROR (printed to stderr), and the errors of talking. */
typedef int (*mc_line_fn)(void *arg, const char *line, size_t len);
int mc_lines(struct mc_conn *c, const char *cmd, mc_line_fn fn, void *arg);

/* The address this connection went to, as given to mc_connect(); owned by c. */
const char *mc_addr(const struct mc_conn *c);

/*
 * Splits "HOST:PORT" (a bracketed IPv6 host is allowed, brackets dropped)
 * into host (hcap bytes) and port (pcap bytes), both NUL-terminated. Returns
 * 0, or -EINVAL when addr has no port, a port that is not all digits, an
 * empty host, or a part that does not fit.
 */
int mc_split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap);

#endif
