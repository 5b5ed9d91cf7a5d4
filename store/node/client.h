/*
 * client.h - a blocking client of the node protocol (docs/PROTOCOL.md) with a
 * deadline on every step: what the quorum client uses to talk to peers and
 * what `caskfs kv HOST:PORT` uses. One connection serves one thread at a time.
 * Errors are negative errnos: -ETIMEDOUT, -ECONNREFUSED, -EPROTO for a reply
 * that breaks the protocol (the connection is then unusable: close it).
 */
#ifndef CASKFS_STORE_CLIENT_H
#define CASKFS_STORE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "auth.h"
#include "../store.h"

struct mc_conn;

/*
 * Connects to addr ("HOST:PORT") within connect_ms and, when key is not NULL,
 * authenticates within io_ms. Later calls wait at most io_ms for each read or
 * write. On success *out owns the connection (mc_close()).
 */
int mc_connect(const char *addr, const struct auth_key *key, int connect_ms, int io_ms,
	       struct mc_conn **out);
void mc_close(struct mc_conn *c);

/* Writes all of iov or fails. */
int mc_send(struct mc_conn *c, const struct iovec *iov, int n);
/* Reads one reply line; *line (valid until the next call) has no CRLF and is
 * NUL-terminated. */
int mc_line(struct mc_conn *c, char **line, size_t *len);
/* Reads n bytes and the CRLF after them into dst. */
int mc_block(struct mc_conn *c, void *dst, size_t n);

/* Sends a stamped put (xset) without waiting for its reply. */
int mc_xset_send(struct mc_conn *c, const void *key, size_t klen, const void *val, size_t vlen,
		 const struct store_version *v, bool tombstone);
/* Reads an xset reply: 0 applied, STORE_STALE when the node had this version
 * or a newer one, -EIO with the node's error in err (errcap bytes), or a
 * connection error. */
int mc_xset_recv(struct mc_conn *c, char *err, size_t errcap);

/*
 * A node's own record of key (xget: no forwarding). On 0, *val (malloc'd; may
 * be NULL when the caller passes val NULL to skip the value) and *meta describe
 * it; a tombstone has meta->tombstone set. -ENOENT when the node has no record.
 */
int mc_xget(struct mc_conn *c, const void *key, size_t klen, void **val, size_t *vlen,
	    struct store_meta *meta);

/* A plain memcache set/get/delete (the node coordinates them). get: 0 with
 * *val malloc'd, or -ENOENT. delete: 0, or -ENOENT (NOT_FOUND). */
int mc_set(struct mc_conn *c, const char *key, const void *val, size_t vlen);
int mc_get(struct mc_conn *c, const char *key, void **val, size_t *vlen);
int mc_delete(struct mc_conn *c, const char *key);

/* Sends cmd (a line, CRLF added) and reads a reply of at most one VALUE then
 * END, as for a get of one key: 0 with *val malloc'd, or -ENOENT. */
int mc_fetch(struct mc_conn *c, const char *cmd, void **val, size_t *vlen);
/* Bytes this connection sent and received so far. */
void mc_traffic(const struct mc_conn *c, uint64_t *sent, uint64_t *received);

/* Sends one command line (CRLF added) and reads every line of the reply up to
 * "END" (not included), calling fn on each; fn returns non-zero to fail the
 * call with that value (the rest of the reply is still read). */
typedef int (*mc_line_fn)(void *arg, const char *line, size_t len);
int mc_lines(struct mc_conn *c, const char *cmd, mc_line_fn fn, void *arg);

/* The address this connection went to. */
const char *mc_addr(const struct mc_conn *c);

/*
 * Splits "HOST:PORT" (a bracketed IPv6 host is allowed) into host and port.
 * Returns 0 or -EINVAL.
 */
int mc_split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap);

#endif
