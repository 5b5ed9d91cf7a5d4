/*
 * cli_i.h - the commands of the caskfs binary that live in fs/cli. main.c
 * parses argv and calls these with the parsed arguments (mount is in
 * fs/daemon, bench in fs/bench); each returns the process exit status
 * (enum cli_exit, docs/USAGE.md) and prints its own errors to stderr. The
 * argument structs and their strings are main's (argv) for the whole call.
 * fs/cli is the top of fs/: it may call every other folder, none calls it.
 */
#ifndef CASKFS_FS_CLI_CLI_I_H
#define CASKFS_FS_CLI_CLI_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fs/common/common_i.h"
#include "store/store.h"

/* ---- kv.c, kv_remote.c: `caskfs kv` ---- */

enum kv_op { KV_PUT, KV_GET, KV_DEL, KV_LS, KV_STAT };

struct kv_args {
	const char *target; /* DATA_DIR, or HOST:PORT */
	enum kv_op op;
	const char *key;	 /* NULL for ls without prefix and stat without key */
	const char *file;	 /* put: value file, NULL for stdin */
	const char *secret_file; /* HOST:PORT targets: authenticate with this secret */
	struct store_options store;
};

int cli_kv(const struct kv_args *a);
/* kv against a node (target is HOST:PORT or a control socket). */
int cli_kv_remote(const struct kv_args *a);

/* read_all.c: reads fd to its end into a malloc'd buffer (the caller's):
 * 0, -EFBIG when it holds more than max bytes, -ENOMEM, or read's -errno. */
int cli_read_all(int fd, size_t max, void **out, size_t *len);

/* ---- serve.c: `caskfs serve` ---- */

struct serve_args {
	const char *data_dir;
	struct node_args node;
	struct store_options store;
};

int cli_serve(const struct serve_args *a);

/* ---- sync.c: `caskfs sync` ---- */

struct sync_args {
	const char *a, *b; /* HOST:PORT or DATA_DIR */
	bool dry_run, verbose, meta_only, data_only;
	const char *secret_file;
};

/* 0 equal at the end, 1 differences remain, 2 usage, 3 I/O. */
int cli_sync(const struct sync_args *a);

/* ---- usage.c: --help texts (main.c prints them) ---- */

extern const char cli_usage_mount[], cli_usage_serve[], cli_usage_cluster[], cli_usage_bench[],
    cli_usage_fsck[], cli_usage_scrub[];

/* ---- cluster.c: `caskfs cluster` ---- */

struct cluster_args {
	const char *op;		 /* "show", "add" or "remove" */
	const char *node;	 /* a member: HOST:PORT or the DATA_DIR of a running node */
	const char *addr;	 /* add, remove: the node's HOST:PORT */
	const char *secret_file; /* authenticate to the nodes */
	bool no_wait;		 /* return once the map changed, before buckets moved */
	int timeout_s;		 /* give up waiting after this long; 0: never */
};

/* 0 done, 1 no such member, 2 usage, 3 unreachable or not done in time. */
int cli_cluster(const struct cluster_args *a);

/* ---- gc.c, status.c ---- */

/* Removes chunks no file references, older than grace_ms. */
int cli_gc(const char *target, uint64_t grace_ms, bool dry_run, const char *secret_file);
/* What DATA_DIR or the node at HOST:PORT holds, as text or JSON. */
int cli_status(const char *target, bool json, const char *secret_file);

/* ---- fsck.c: `caskfs fsck` ---- */

struct fsck_args {
	const char *data_dir;
	bool repair;
	const char *peers;	 /* where --repair fetches good copies from, or NULL */
	const char *secret_file; /* to authenticate to the peers */
};

/* Checks DATA_DIR (and repairs it with a->repair); CLI_OK when clean (after
 * repair), CLI_MISSING (1) with problems left. */
int cli_fsck(const struct fsck_args *a);

/* ---- scrub.c: `caskfs scrub` ---- */

struct scrub_args {
	const char *target; /* DATA_DIR or HOST:PORT */
	bool now, wait;
	uint64_t rate; /* a pass run here on a DATA_DIR at rest: 0 unthrottled */
	const char *secret_file;
};

/* Shows (and with now starts) the scrub of a node or DATA_DIR: CLI_OK,
 * CLI_CORRUPT (4) when damage was left unrepaired, CLI_IO, CLI_USAGE. */
int cli_scrub(const struct scrub_args *a);

/* ---- hash.c: `caskfs hash FILE...` ---- */

/* Prints "HASH  FILE" for each file, its content hash computed from its
 * bytes (docs/FORMAT.md, "Content hash"). CLI_OK, or the status of the last
 * file that failed (CLI_MISSING, CLI_IO). */
int cli_hash(char **files, int n);

/* ---- tls.c: the --tls-* options (main.c parses them with these) ---- */

/* The long options, in every command that reaches nodes (mount and serve
 * through CLUSTER_OPTIONS), and what their usage says. */
#define CLI_TLS_OPTIONS                                \
	{ "tls-cert", required_argument, NULL, 1020 }, \
	    { "tls-key", required_argument, NULL, 1021 }, { "tls-ca", required_argument, NULL, 1022 }
#define CLI_TLS_USAGE                                                         \
	"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"                   \
	"                     TLS to a node (HOST:PORT): the CA that signed the\n" \
	"                     node's certificate, and this client's own\n"        \
	"                     certificate and key\n"
#define CLI_TLS_USAGE_KV                                                          \
	"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"                       \
	"                             TLS to a node: its CA, and this client's own\n" \
	"                             certificate and key\n"
#define CLI_TLS_USAGE_SYNC                                                         \
	"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"                        \
	"                         TLS to the nodes: their CA, and this client's own\n" \
	"                         certificate and key\n"
#define CLI_TLS_USAGE_NODE                                                           \
	"  --tls-cert FILE            TLS 1.3 on the port and towards the peers with\n"  \
	"  --tls-key FILE             this certificate and key; with --tls-ca, clients\n" \
	"  --tls-ca FILE              and peers must show a certificate it signed\n"

/* Takes option c (with optarg) into f when it is one of CLI_TLS_OPTIONS. */
bool cli_tls_opt(int c, struct tls_files *f);
/* Connections to nodes go through TLS from now on when f names any file
 * (mc_tls_init()); 0, or its error with the message in err. */
int cli_tls_setup(const struct tls_files *f, char *err, size_t errcap);

/* ---- config.c: DATA_DIR/node.conf ---- */

struct option;
/* Reads the settings of a node.conf (f, named path in messages) for the
 * long options opts, at most cap of them, into out as malloc'd
 * "--name=value" strings (the caller's); *n says how many. 0 (also when
 * memory ran out: the settings read so far), or -EINVAL for a name opts
 * does not have, said in err. */
int cli_config_parse(FILE *f, const char *path, const struct option *opts, char **out, int cap,
		     int *n, char *err, size_t errcap);
/* The argv to parse for a mount or serve command line (argc, argv, with
 * opts and optstring of getopt_long): argv itself when DATA_DIR has no
 * node.conf, else a new array (never freed: it lives as long as the
 * process) with the file's settings first, so the command line wins; *argc
 * follows. NULL, with the message in err, for a setting opts does not have. */
char **cli_config_argv(int *argc, char **argv, const struct option *opts, const char *optstring,
		       char *err, size_t errcap);

#endif
