/*
 * server_i.h - the node server's internals, shared by server.c (listening
 * sockets, start and stop), conn.c (connections and their event loops),
 * command.c (what each request does), metacmd.c (the meta commands),
 * cmd_cluster.c (the cluster map commands), worker.c (decided operations,
 * off the loops), exptime.c (the EXPTIME rule), metrics.c (stats and
 * /metrics) and reply.c (a connection's output buffer). Calls go one way:
 *   server -> conn -> worker -> command -> metacmd, metrics, cmd_cluster, exptime -> reply
 * and command, conn -> reply. Protocol: docs/PROTOCOL.md.
 */
#ifndef CASKFS_STORE_NODE_SERVER_I_H
#define CASKFS_STORE_NODE_SERVER_I_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <time.h>

#include "proto.h"
#include "seal.h"
#include "server.h"
#include "tls.h"

/* The session of a connection that authenticated with the secret, without
 * TLS (seal.h): records received but not yet opened, records not yet sent. */
struct conn_seal {
	struct seal s;
	uint8_t *in; /* [0, in_len) received, not yet opened */
	size_t in_len, in_cap;
	uint8_t *out; /* [out_pos, out_len) to send */
	size_t out_len, out_pos, out_cap;
};

/* memcache tools parse MAJOR.MINOR.MICRO; the rest names what this is */
#define SERVER_VERSION "1.6.0-caskfs-0.2"
#define IN_MIN 16384
#define IN_MAX ((size_t)PROTO_VALUE_MAX + PROTO_LINE_MAX + 2)
#define OUT_HIGH (32u << 20) /* stop reading a connection past this much unsent output */
/* buffers larger than this are freed when empty; a 1 MiB chunk's request fits */
#define KEEP_IDLE (4u << 20)
/* A TLS handshake not finished this long after the accept is dropped, and a
 * loop holds at most HS_MAX of them: a new one beyond that drops the oldest,
 * so stalled clients cost bounded memory and cannot keep good ones out. */
#define HS_TIMEOUT_MS 3000
#define HS_MAX 128
/* Sealed bytes received and not yet opened, and sealed bytes not yet sent. */
#define SEAL_IN_CAP (2 * SEAL_RECORD_MAX)
#define SEAL_OUT_CAP (2 * SEAL_RECORD_MAX)

struct conn {
	int fd;
	char *in; /* received, unparsed bytes [0, in_len) */
	size_t in_len, in_cap;
	char *out; /* reply bytes [out_pos, out_len) not yet sent */
	size_t out_len, out_pos, out_cap;
	size_t swallow; /* bytes of a refused value still to discard */
	size_t need;	/* bytes the request at the start of in takes, when known */
	bool authed;
	bool nonce_sent;
	uint8_t cn[AUTH_NONCE], sn[AUTH_NONCE];
	bool closing;		  /* close once out is sent */
	bool started;		  /* the first byte was seen (it tells the binary protocol) */
	bool oom;		  /* an output append failed: close */
	bool busy;		  /* a request of it runs on a worker: not read, not closed */
	bool hup;		  /* it failed or hung up while busy: close when the worker is done */
	bool tls;		  /* came on the TCP port of a node with TLS */
	bool handshaking;	  /* tls, and the handshake is not done */
	bool seal_next;		  /* set by auth: the session is sealed from the next byte */
	bool tls_dead;		  /* a fatal TLS error: no close_notify */
	bool tls_read_wants_out;  /* SSL_read waits for the socket to take bytes */
	bool tls_write_wants_in;  /* SSL_write waits for bytes from the socket */
	bool tls_more;		  /* the last read stopped before TLS ran dry */
	uint32_t hs_want;	  /* handshaking: the event the handshake waits for */
	struct ssl_st *ssl;	  /* tls: made at the first event, else NULL */
	struct tls_out tx;	  /* tls: records made, not yet sent */
	struct conn_seal *seal;	  /* sealed with the secret, else NULL */
	int64_t hs_deadline;	  /* handshaking: monotonic ms when it is dropped */
	struct conn *hs_prev, *hs_next; /* handshaking: the loop's handshakes, oldest first */
	uint32_t events;	  /* what epoll watches now */
	bool ready;		  /* on the loop's ready list */
	struct conn *ready_next;
	struct conn *prev, *next; /* the loop's list; only its thread touches it */
};

struct server_job;

struct loop {
	struct server *srv;
	int ep;
	pthread_t thread;
	struct conn *conns;	 /* every open connection of this loop */
	struct conn *hs_head, *hs_tail; /* its TLS handshakes in progress, oldest first */
	int hs_count;
	/* connections whose transport holds input epoll does not report */
	struct conn *ready;
	int wakefd;		 /* eventfd: a worker finished a job of this loop */
	pthread_mutex_t done_mu; /* protects done */
	struct server_job *done; /* finished jobs, replies to hand to their connections */
};

/* A pool of workers for decided operations (worker.c): decisions of
 * different keys run side by side. */
#define SERVER_POOL_THREADS 8
struct server_pool {
	struct server *srv;
	pthread_mutex_t mu; /* protects head, tail, stopping */
	pthread_cond_t cv;
	struct server_job *head, *tail;
	bool stopping;
	int nthreads;
	pthread_t threads[SERVER_POOL_THREADS];
};

struct server {
	struct store *store;
	struct cluster *cluster;
	const struct auth_key *key;
	struct auth_key key_copy;
	int lfd; /* TCP, or -1 */
	int ufd; /* the control socket in DATA_DIR, or -1 */
	char upath[108];
	int stopfd; /* eventfd: written once to stop every loop */
	int nloops;
	struct loop *loops;
	int max_conns;
	struct ssl_ctx_st *tls; /* the TCP port's TLS context, or NULL */
	server_ext_fn ext;
	server_stats_fn stats_ext;
	void *ext_arg;
	bool no_expiry;		   /* exptime ignored: nothing is given an expiry time */
	bool allow_flush;	   /* flush_all is served */
	struct server_pool *pools; /* [0] client requests, [1] xop from peers; NULL: none */
	time_t started;
	_Atomic int conns;
	_Atomic uint64_t total_conns, cmd_get, cmd_set, get_hits, get_misses, cmd_delete;
	_Atomic uint64_t errors, rejected_conns;
	_Atomic uint64_t tls_handshakes, tls_failures, tls_dropped;
};

/* ---- reply.c: a connection's output (they set c->oom when memory runs out) ---- */

void server_out_bytes(struct conn *c, const void *p, size_t n);
void server_out_str(struct conn *c, const char *s);
__attribute__((format(printf, 2, 3))) void server_out_fmt(struct conn *c, const char *fmt, ...);
/* "VALUE KEY FLAGS BYTES [CAS]\r\n", without printf: every get hit writes one. */
void server_out_value(struct conn *c, const char *key, size_t klen, uint32_t flags, size_t bytes,
		      bool with_cas, uint64_t cas);
/* Appends line unless the request asked for no reply. */
void server_out_status(struct conn *c, const struct proto_req *r, const char *line);
/* "SERVER_ERROR <strerror(-err)>" */
void server_out_error(struct conn *c, int err);
/* server_out_bytes() for a struct conn passed as ctx: the server_emit_fn
 * given to the server's owner (ext, stats_ext). */
void server_emit(void *ctx, const void *p, size_t n);

/* ---- metrics.c ---- */

/* stats [segments|peers] */
void server_cmd_stats(struct server *srv, struct conn *c, const struct proto_req *r);
/* GET /metrics: the same numbers as Prometheus text, then the connection closes. */
void server_cmd_http(struct server *srv, struct conn *c, const struct proto_req *r);

/* ---- cmd_cluster.c: the cluster map and the bucket trees ---- */

/* xmap [BYTES]: takes the map offered (if newer) and answers with this
 * node's map. */
void server_cmd_xmap(struct server *srv, struct conn *c, const struct proto_req *r);
/* ptree DIGEST N SET PEER [PATH]: `get @PATH` over the buckets of SET. */
void server_cmd_ptree(struct server *srv, struct conn *c, const struct proto_req *r);

/* ---- command.c ---- */

/* Answers one parsed request into c's output. */
void server_execute(struct server *srv, struct conn *c, const struct proto_req *r);

/* ---- exptime.c ---- */

/* An exptime (memcached's rule: 0 never; up to 30 days, seconds from now;
 * beyond, a unix time; negative, already expired) as an absolute expiry
 * time for the store: 0 never, 1 already past. 0 with --no-expiry. */
#define SERVER_RELATIVE_MAX (30 * 24 * 3600)
uint32_t server_expires(const struct server *srv, int64_t exptime);

/* ---- metacmd.c: mg, ms, md (mn is one line, in command.c) ---- */

void server_cmd_mg(struct server *srv, struct conn *c, const struct proto_req *r);
void server_cmd_ms(struct server *srv, struct conn *c, const struct proto_req *r);
void server_cmd_md(struct server *srv, struct conn *c, const struct proto_req *r);

/* ---- worker.c: decided operations off the event loops ---- */

/* Whether r waits for a decision on other nodes and so runs on a worker. */
bool server_runs_on_worker(const struct server *srv, const struct proto_req *r);
/* Hands r (the len bytes at req, copied) of c to a worker; the caller marks
 * c busy. 0 or -ENOMEM (then run it in place). */
int server_worker_submit(struct server *srv, struct loop *l, struct conn *c,
			 const struct proto_req *r, const char *req, size_t len);
/* In l's thread, when l->wakefd is readable: consumes the wakeup; then
 * server_worker_reply() until NULL (a job finished after the wakeup was
 * consumed wakes the loop again). */
void server_worker_woken(struct loop *l);
/* Takes one finished job of l, appends its reply to its connection, which
 * is no longer busy, and returns that connection for the loop to go on with,
 * or NULL when none is left. */
struct conn *server_worker_reply(struct loop *l);
/* Frees l's finished jobs without replying (the server is stopping). */
void server_worker_drop(struct loop *l);
int server_workers_start(struct server *srv);
/* Stops and joins the workers (each finishes the job it runs). */
void server_workers_stop(struct server *srv);

/* ---- conn.c ---- */

/* The thread of one event loop; returns when srv->stopfd is written. */
void *server_loop_main(void *arg);
/* Closes c and takes it off l's list. */
void server_conn_close(struct loop *l, struct conn *c);

#endif
