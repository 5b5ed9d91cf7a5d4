/*
 * server.h - the node server: the memcache text protocol and caskfs's
 * extensions (docs/PROTOCOL.md) over TCP, served by a few epoll threads. Plain
 * set/get/delete are coordinated through the quorum client; the stamped
 * extensions act on the local store only and are never forwarded.
 */
#ifndef CASKFS_STORE_NODE_SERVER_H
#define CASKFS_STORE_NODE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "cluster.h"
#include "tls.h"
#include "../store.h"

/* Appends n bytes (copied) to the reply of the connection being served; ctx
 * is the one the server passed to the callback, valid during that call only. */
typedef void (*server_emit_fn)(void *ctx, const void *p, size_t n);

/* The namespace commands (PROTO_MPUT, PROTO_MEXT) are answered by whoever owns
 * the namespace (the mount); the store does not know files. r (and what it
 * points into) is valid during the call only. Called on the server's
 * threads, from several at once. */
struct proto_req;
typedef void (*server_ext_fn)(void *arg, const struct proto_req *r, server_emit_fn emit, void *ctx);

/* More numbers for `stats` (as "STAT name value\r\n" lines) or, with
 * metrics, for /metrics (Prometheus text), from the server's owner. Called
 * like server_ext_fn. */
typedef void (*server_stats_fn)(void *arg, bool metrics, server_emit_fn emit, void *ctx);

struct server_options {
	const char *listen;	    /* HOST:PORT, or NULL: the control socket only */
	const char *control;	    /* a unix socket path (DATA_DIR/control.sock), or NULL;
				       its clients need no authentication */
	int threads;		    /* event loops; 0 for 4 */
	const struct auth_key *key; /* when set, every connection must authenticate, and
				       one without TLS is sealed after it (seal.h) */
	struct tls_files tls;	    /* cert and key: TLS on the TCP port; with ca too,
				       clients must present a certificate it signed */
	int max_conns;		    /* 0 for 10000; more are accepted and closed at once */
	server_ext_fn ext;	    /* NULL: namespace commands get ERROR */
	server_stats_fn stats_ext;  /* NULL: none */
	void *ext_arg;		    /* for ext and stats_ext */
	bool no_expiry;		    /* exptime ignored (--no-expiry): nothing is given an expiry
				       time, and the store ignores those it holds */
	bool allow_flush;	    /* flush_all is served (--allow-flush); else refused */
};

struct server;

/*
 * Binds opt->listen (and opt->control) and starts opt->threads event loops
 * serving plain requests through c and the stamped extensions from s.
 *   s, c   the node's store and quorum client; the caller keeps owning them,
 *          and both must outlive the server
 *   opt    read during the call (the key and the control path are copied);
 *          opt->ext_arg is kept and must outlive the server
 *   out    on success, the server, owned by the caller (server_stop());
 *          NULL on failure
 * A control socket that cannot be bound is reported on stderr and left out;
 * the server runs without it. The process's soft limit of open files is
 * raised to its hard limit, since every connection holds a descriptor.
 * Errors: -EPERM (printed to stderr) when asked to listen on an address that
 * is not loopback with neither a key nor mutual TLS (cert, key and ca);
 * -EINVAL (printed) for a listen address that is malformed or does not
 * resolve, or TLS files that cannot be used; the errno of socket(), bind() or listen()
 * (-EADDRINUSE ...), printed; -ENOMEM; the errno of creating the loops'
 * epoll instances or threads.
 */
int server_start(struct store *s, struct cluster *c, const struct server_options *opt,
		 struct server **out);
/* Stops the threads, closes every connection and the sockets (removing the
 * control socket's file) and frees srv. NULL is fine. */
void server_stop(struct server *srv);

/* A text value being built for an extension's reply (`get @PATH`, `mtree`):
 * grows as written; oom is set, and the text stops growing, when memory
 * runs out. Start zeroed; the caller owns p (malloc'd, NUL-terminated once
 * anything was written, or NULL) and frees it with free(). */
struct server_text {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Appends printf-style text to t (nothing once t->oom is set). */
__attribute__((format(printf, 2, 3))) void server_text_fmt(struct server_text *t, const char *fmt,
							   ...);
/* Appends a tree node and its 16 children the way `get @PATH` and
 * `mtree PATH` show them ("self HASH COUNT", then "N HASH COUNT"). */
void server_text_tree_node(struct server_text *t, const struct store_tree_node *self,
			   const struct store_tree_node kids[16]);

/* Whether HOST:PORT names only loopback addresses: 1 when every address it
 * resolves to is loopback, 0 when one is not, -EINVAL when addr is malformed
 * or does not resolve. */
int server_addr_is_loopback(const char *addr);

#endif
