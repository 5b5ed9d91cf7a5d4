/*
 * server.h - the node server: the memcache text protocol and caskfs's
 * extensions (docs/PROTOCOL.md) over TCP, served by a few epoll threads. Plain
 * set/get/delete are coordinated through the quorum client; the stamped
 * extensions act on the local store only and are never forwarded.
 */
#ifndef CASKFS_STORE_SERVER_H
#define CASKFS_STORE_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "cluster.h"
#include "../store.h"

/* Writes n bytes of reply to the connection being served. */
typedef void (*server_emit_fn)(void *ctx, const void *p, size_t n);

/* The namespace commands (PROTO_MPUT, PROTO_MEXT) are answered by whoever owns
 * the namespace (the mount); the store does not know files. */
struct proto_req;
typedef void (*server_ext_fn)(void *arg, const struct proto_req *r, server_emit_fn emit,
			      void *ctx);

/* More numbers for `stats` (as "STAT name value\r\n" lines) or, with
 * metrics, for /metrics (Prometheus text), from the server's owner. */
typedef void (*server_stats_fn)(void *arg, bool metrics, server_emit_fn emit, void *ctx);

struct server_options {
	const char *listen;	    /* HOST:PORT, or NULL: the control socket only */
	const char *control;	    /* a unix socket path (DATA_DIR/control.sock), or NULL;
				       its clients need no authentication */
	int threads;		    /* event loops; 0 for 4 */
	const struct auth_key *key; /* when set, every connection must authenticate */
	int max_conns;		    /* 0 for 10000; more are accepted and closed at once */
	server_ext_fn ext;	    /* NULL: namespace commands get ERROR */
	server_stats_fn stats_ext;  /* NULL: none */
	void *ext_arg;		    /* for ext and stats_ext */
};

struct server;

/*
 * Binds opt->listen and starts serving s through c (both must outlive the
 * server). Refuses (-EPERM, with a message on stderr) to listen on anything
 * but a loopback address without a key. Errors: -EADDRINUSE, -EINVAL for a
 * bad address, or another -errno.
 */
int server_start(struct store *s, struct cluster *c, const struct server_options *opt,
		 struct server **out);
/* Stops the threads and closes every connection. NULL is fine. */
void server_stop(struct server *srv);

/* A text value being built for an extension's reply (`get @PATH`, `mtree`):
 * grows as written; oom is set, and the text stops growing, when memory
 * runs out. Start zeroed; free p. */
struct server_text {
	char *p;
	size_t len, cap;
	bool oom;
};

/* Appends printf-style text. */
__attribute__((format(printf, 2, 3))) void server_text_fmt(struct server_text *t,
							   const char *fmt, ...);
/* Appends a tree node and its 16 children the way `get @PATH` and
 * `mtree PATH` show them ("self HASH COUNT", then "N HASH COUNT"). */
void server_text_tree_node(struct server_text *t, const struct store_tree_node *self,
			   const struct store_tree_node kids[16]);

/* Whether HOST:PORT names only loopback addresses. */
int server_addr_is_loopback(const char *addr);

#endif
