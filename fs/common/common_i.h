/*
 * common_i.h - what the daemon (fs/daemon), replication (fs/repl), the
 * commands (fs/cli) and the bench (fs/bench) share: the exit statuses, the
 * cluster options and the node they start, where a daemon's messages go, the
 * progress bar, what is mounted where, and the clocks. This folder calls only
 * meta/ and store/; every folder of fs/ may call it.
 *
 * Ownership: strings passed in (addresses, paths, labels) stay the caller's
 * and must outlive the call, or the struct they are stored in (struct
 * progress keeps its label, struct node_args its strings). struct node owns
 * its cluster and server until node_stop().
 */
#ifndef CASKFS_FS_COMMON_COMMON_I_H
#define CASKFS_FS_COMMON_COMMON_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "meta/meta.h"
#include "store/node/cluster.h"
#include "store/node/server.h"
#include "store/store.h"

/* Exit statuses shared by the subcommands (docs/USAGE.md). */
enum cli_exit {
	CLI_OK = 0,
	CLI_MISSING = 1, /* the key (or file) does not exist */
	CLI_USAGE = 2,	 /* bad arguments */
	CLI_IO = 3,	 /* I/O error, DATA_DIR busy, out of memory */
	CLI_CORRUPT = 4, /* a record failed its checksum */
};

/* CLOCK_MONOTONIC in milliseconds: retry times, how long a file was left alone. */
static inline int64_t fs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC in seconds: what a workload or a progress step took. */
static inline double fs_now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * fs/common/ticker.c: a thread that calls fn(arg) every period_ms until
 * fs_ticker_stop. fn returns true when it has more to do at once (the next
 * call comes without a wait). With FS_TICKER_NOW the first call comes at
 * once instead of after a period; with FS_TICKER_LAST a stop that ends a
 * wait still gets that period's call. arg is the caller's and must outlive
 * the ticker. Start: 0, -ENOMEM or -EAGAIN (no thread); stop takes NULL.
 */
enum { FS_TICKER_NOW = 1, FS_TICKER_LAST = 2 };
struct fs_ticker;
int fs_ticker_start(int period_ms, unsigned flags, bool (*fn)(void *arg), void *arg,
		    struct fs_ticker **out);
/* Ends the current wait: the next call comes now. NULL is nothing. */
void fs_ticker_kick(struct fs_ticker *t);
/* Stops the thread after the call under way, if any, and frees t. */
void fs_ticker_stop(struct fs_ticker *t);

/* fs/common/progress.c: a progress bar on stderr when it is a terminal, else silence. */
struct progress {
	const char *label;
	uint64_t total, done; /* total 0: a counter without a bar */
	bool tty, shown;
	double last;
};
void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_step(struct progress *p, uint64_t done);
void progress_end(struct progress *p);

/* fs/common/logsink.c: with syslog_on, or a level above info filtered out, the
 * daemon's stderr lines get a level and go to syslog or to stderr. */
int log_setup(const char *ident, bool syslog_on, int level);
/* "error", "warn", "info", "debug" to a syslog level; -EINVAL otherwise. */
int log_level_parse(const char *name, int *level);

/* fs/common/mountinfo.c: whether something is mounted at path (resolved);
 * fills its file system type and source when asked (type or source may be
 * NULL). */
bool fs_mountinfo_lookup(const char *path, char *type, size_t tcap, char *source, size_t scap);

/* fs/common/datadir.c: the namespace of DATA_DIR dir, whose store s is
 * open, with the store's node id: 0 and *out (the caller's to meta_close),
 * 0 and *out NULL when dir holds none, or the error of meta_open. */
int fs_datadir_open_meta(const char *dir, struct store *s, struct meta **out);

/* fs/common/status.c: the report of `caskfs status` on target (a DATA_DIR, a
 * running node's DATA_DIR, or HOST:PORT, authenticated with the secret file
 * when not NULL), as text or JSON, written to out; errors go to stderr. The
 * exit status of `caskfs status` (enum cli_exit). */
int fs_status_report(FILE *out, const char *target, bool json, const char *secret);

/* The cluster options shared by mount and serve (DESIGN.md, "One binary"). */
struct node_args {
	const char *listen;	 /* HOST:PORT, or NULL: no server (mount only) */
	const char *peers;	 /* comma-separated HOST:PORT, or NULL */
	int replicas, write_quorum, read_quorum; /* 0: defaults */
	const char *secret_file; /* NULL: no authentication (loopback only) */
	struct tls_files tls;	 /* --tls-cert, --tls-key, --tls-ca: TLS, port and peers */
	int threads;		 /* server event loops; 0: default */
	int timeout_ms;		 /* per peer request; 0: default */
	bool node_id_given;	 /* --node-id was given (else derived from listen) */
	int sync_interval_s;	 /* background anti-entropy period; 0: none */
	int rebalance_mib;	 /* MiB/s a node moves buckets at; 0: the default (64) */
	bool syslog;		 /* messages to syslog instead of stderr */
	int log_level;		 /* syslog level at and above which messages are kept; 0: info */
	uint64_t scrub_rate;	 /* scrubber's bytes a second, when scrub_rate_given (0: off) */
	bool scrub_rate_given;	 /* else NODE_SCRUB_RATE */
	unsigned scrub_interval_s; /* between the starts of two passes; 0: the default (7 days) */
	bool no_expiry;		   /* memcache exptime ignored */
	bool allow_flush;	   /* flush_all served */
};

/* The scrubber's default rate (docs/OPERATIONS.md, "Scrubbing"). */
#define NODE_SCRUB_RATE (4ull << 20)

/* fs/common/node.c: a running node, the quorum client and, when listening,
 * the server. */
struct node {
	struct store *store; /* not owned: the scrubber runs on it until node_stop */
	struct cluster *cluster;
	struct server *server;
	struct auth_key key;
	bool have_key;
};

/*
 * Fills in a node id derived from the listen address when none was given and
 * the node has peers (so ids differ across a cluster without configuration).
 */
void node_pick_id(const struct node_args *a, struct store_options *store);
/* Opens the quorum client over s and starts the server when a->listen is set;
 * ext, stats_ext and ext_arg are handed to the server (server.h). Prints what
 * it runs with on stderr (prefix names the command). Returns 0 or a CLI exit
 * status. */
int node_start(struct store *s, const char *data_dir, const struct node_args *a,
	       const char *prefix, server_ext_fn ext, server_stats_fn stats_ext, void *ext_arg,
	       struct node *out);
void node_stop(struct node *n);
/* The addresses of a cluster's nodes other than this one, in its order. */
struct node_peers {
	char addr[CLUSTER_MAX_NODES][256];
	int n;
};
void node_peers_list(struct cluster *c, struct node_peers *out);
/* When a running node answers on DATA_DIR dir's control socket, fills out
 * with its address ("unix:DIR/control.sock") and returns true. */
bool node_control_addr(const char *dir, char *out, size_t cap);
/* When DATA_DIR dir is held by a node that does not go on answering on its
 * control socket (it was just unmounted or stopped and is syncing), waits up
 * to 5 s for it to let go, so an unmount followed by a mount works. */
void node_wait_shutdown(const char *dir);

#endif
