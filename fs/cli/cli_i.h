/*
 * cli_i.h - the subcommands of the caskfs binary. fs/main.c parses argv and
 * calls these with parsed arguments; each returns the process exit status
 * (see docs/USAGE.md) and prints its own errors to stderr.
 */
#ifndef CASKFS_FS_CLI_I_H
#define CASKFS_FS_CLI_I_H

#include <stdbool.h>
#include <stdint.h>

#include "store/cluster.h"
#include "store/server.h"
#include "store/store.h"

/* Exit statuses shared by the subcommands. */
enum cli_exit {
	CLI_OK = 0,
	CLI_MISSING = 1, /* the key (or file) does not exist */
	CLI_USAGE = 2,	 /* bad arguments */
	CLI_IO = 3,	 /* I/O error, DATA_DIR busy, out of memory */
	CLI_CORRUPT = 4, /* a record failed its checksum */
};

enum kv_op { KV_PUT, KV_GET, KV_DEL, KV_LS, KV_STAT };

struct kv_args {
	const char *target; /* DATA_DIR */
	enum kv_op op;
	const char *key;  /* NULL for ls without prefix and stat without key */
	const char *file; /* put: value file, NULL for stdin */
	const char *secret_file; /* HOST:PORT targets: authenticate with this secret */
	struct store_options store;
};

int cli_kv(const struct kv_args *a);
/* kv against a node (target is HOST:PORT); fs/kv_remote.c. */
int cli_kv_remote(const struct kv_args *a);

/* fs/progress.c: a progress bar on stderr when it is a terminal, else silence. */
struct progress {
	const char *label;
	uint64_t total, done; /* total 0: a counter without a bar */
	bool tty, shown;
	double last;
};
void progress_start(struct progress *p, const char *label, uint64_t total);
void progress_step(struct progress *p, uint64_t done);
void progress_end(struct progress *p);

/* fs/logsink.c: with syslog_on, or a level above info filtered out, the
 * daemon's stderr lines get a level and go to syslog or to stderr. */
int log_setup(const char *ident, bool syslog_on, int level);
/* "error", "warn", "info", "debug" to a syslog level; -EINVAL otherwise. */
int log_level_parse(const char *name, int *level);

/* The cluster options shared by mount and serve (DESIGN.md, "One binary"). */
struct node_args {
	const char *listen;	 /* HOST:PORT, or NULL: no server (mount only) */
	const char *peers;	 /* comma-separated HOST:PORT, or NULL */
	int replicas, write_quorum, read_quorum; /* 0: defaults */
	const char *secret_file; /* NULL: no authentication (loopback only) */
	int threads;		 /* server event loops; 0: default */
	int timeout_ms;		 /* per peer request; 0: default */
	bool node_id_given;	 /* --node-id was given (else derived from listen) */
	int sync_interval_s;	 /* background anti-entropy period (mount); 0: none */
	bool syslog;		 /* messages to syslog instead of stderr */
	int log_level;		 /* syslog level at and above which messages are kept; 0: info */
};

/* A running node: the quorum client and, when listening, the server. */
struct node {
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
/* Opens the quorum client over s and starts the server when a->listen is set.
 * Prints what it runs with on stderr (prefix names the command). Returns 0 or
 * a CLI exit status. */
int node_start(struct store *s, const char *data_dir, const struct node_args *a,
	       const char *prefix, server_ext_fn ext, server_stats_fn stats_ext, void *ext_arg,
	       struct node *out);
void node_stop(struct node *n);
/* When a running node answers on DATA_DIR dir's control socket, fills out
 * with its address ("unix:DIR/control.sock") and returns true. */
bool node_control_addr(const char *dir, char *out, size_t cap);
/* When DATA_DIR dir is held by a node that does not go on answering on its
 * control socket (it was just unmounted or stopped and is syncing), waits up
 * to 5 s for it to let go, so an unmount followed by a mount works. */
void node_wait_shutdown(const char *dir);

struct serve_args {
	const char *data_dir;
	struct node_args node;
	struct store_options store;
};

int cli_serve(const struct serve_args *a);

struct sync_args {
	const char *a, *b; /* HOST:PORT or DATA_DIR */
	bool dry_run, verbose, meta_only, data_only;
	const char *secret_file;
};

/* fs/gc.c: removes chunks no file references, older than grace_ms. */
int cli_gc(const char *target, uint64_t grace_ms, bool dry_run, const char *secret_file);

/* fs/status.c: what DATA_DIR or the node at HOST:PORT holds, as text or JSON. */
int cli_status(const char *target, bool json, const char *secret_file);

/* fs/sync.c: 0 equal at the end, 1 differences remain, 2 usage, 3 I/O. */
int cli_sync(const struct sync_args *a);

struct mount_args {
	const char *data_dir;
	const char *mountpoint;
	bool foreground;
	const char *options;  /* extra -o options for FUSE, or NULL */
	const char *log_file; /* where a backgrounded daemon writes; NULL: /dev/null */
	bool writeback;	      /* the kernel's writeback cache */
	struct node_args node;
	struct store_options store;
};

int cli_mount(const struct mount_args *a);

struct bench_args {
	const char *mountpoint;
	size_t seq_bytes; /* sequential workload size */
	int files;	  /* small files created */
};

int cli_bench(const struct bench_args *a);

/* Whether something is mounted at path (resolved); fills its file system
 * type and source when asked (type or source may be NULL). */
bool fs_mountinfo_lookup(const char *path, char *type, size_t tcap, char *source, size_t scap);

struct fsck_args {
	const char *data_dir;
	bool repair;
	const char *peers;	 /* where --repair fetches good copies from, or NULL */
	const char *secret_file; /* to authenticate to the peers */
};

/* Checks DATA_DIR (and repairs it with a->repair); CLI_OK when clean (after
 * repair), CLI_MISSING (1) with problems left. */
int cli_fsck(const struct fsck_args *a);

#endif
