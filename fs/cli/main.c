/*
 * main - the caskfs command line: parses argv (with the settings of
 * DATA_DIR/node.conf in front, config.c), prints usage, dispatches to the
 * subcommands (fs/cli/cli_i.h; mount in fs/daemon, bench in fs/bench) and
 * exits with their status. The only file that parses argv or calls exit().
 * Usage reference: docs/USAGE.md.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_i.h"
#include "fs/bench/bench_i.h"
#include "fs/daemon/daemon_i.h"

#define CASKFS_VERSION "0.1.0"

static const char usage_main[] =
    "usage: caskfs COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  mount DATA_DIR MOUNTPOINT             serve DATA_DIR as a filesystem\n"
    "  serve DATA_DIR --listen HOST:PORT     a node without a mount\n"
    "  kv DATA_DIR|HOST:PORT get|put|del|ls|stat ...   object access for scripts\n"
    "  bench MOUNTPOINT                      the standard workloads against a native directory\n"
    "  fsck DATA_DIR                         check every record and every chunk reference\n"
    "  sync A B                              anti-entropy between two replicas\n"
    "  status DATA_DIR|HOST:PORT             objects, segments, tree roots, peers, backlog\n"
    "  cluster show|add|remove NODE [HOST:PORT]   the cluster map: see it, grow, shrink\n"
    "  gc DATA_DIR|HOST:PORT                 remove chunks no file references, compact\n"
    "  hash FILE...                          content hashes, as user.caskfs.hash gives them\n"
    "  scrub DATA_DIR|HOST:PORT [--now]      the background scrubber: progress, findings\n"
    "\n"
    "Run 'caskfs COMMAND --help' for a command's options. Manual: docs/USAGE.md\n";

static const char usage_kv[] =
    "usage: caskfs kv [OPTIONS] DATA_DIR put KEY [FILE]   store FILE (or stdin) under KEY\n"
    "       caskfs kv [OPTIONS] DATA_DIR get KEY          write KEY's value to stdout\n"
    "       caskfs kv [OPTIONS] DATA_DIR del KEY          delete KEY\n"
    "       caskfs kv [OPTIONS] DATA_DIR ls [PREFIX]      list keys (with PREFIX)\n"
    "       caskfs kv [OPTIONS] DATA_DIR stat [KEY]       describe KEY, or the store\n"
    "\n"
    "options:\n"
    "  --sync always|batch|none   durability of writes (default batch; the command\n"
    "                             always fsyncs before it exits)\n"
    "  --node-id N                node id stamped into new records (default 1)\n"
    "  --segment-size BYTES       roll segments at this size (default 268435456)\n"
    "  --secret-file FILE         authenticate to a node (HOST:PORT targets)\n"
    CLI_TLS_USAGE_KV
    "  -h, --help                 this text\n"
    "\n"
    "With HOST:PORT instead of DATA_DIR, the node coordinates put, get and del\n"
    "(replicated); stat KEY describes that node's own copy; ls lists its keys.\n"
    "Keys are 1 to 250 bytes. Exit status: 0 success, 1 no such key, 2 bad usage,\n"
    "3 I/O error or DATA_DIR in use, 4 a record failed its checksum.\n";

/* The --help texts of mount, serve and cluster live in usage.c (they share
 * the cluster options' text). */
#define usage_mount cli_usage_mount
#define usage_serve cli_usage_serve
#define usage_cluster cli_usage_cluster

#define usage_bench cli_usage_bench

#define usage_fsck cli_usage_fsck

static void die_usage(const char *text, const char *fmt, const char *arg)
{
	if (fmt) {
		fprintf(stderr, "caskfs: ");
		fprintf(stderr, fmt, arg);
		fprintf(stderr, "\n\n");
	}
	fputs(text, stderr);
	exit(CLI_USAGE);
}

static unsigned long long parse_number(const char *s, const char *what, const char *usage)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		die_usage(usage, what, s);
	return v;
}

/* Connections to nodes go through TLS from now on when any file was given. */
static void tls_client(const struct tls_files *f, const char *usage)
{
	char err[512];
	if (cli_tls_setup(f, err, sizeof(err)) < 0)
		die_usage(usage, "%s", err);
}

#define CLUSTER_OPTIONS                                                 \
	{ "listen", required_argument, NULL, 1001 },                    \
	    { "peers", required_argument, NULL, 1002 },                 \
	    { "replicas", required_argument, NULL, 1003 },              \
	    { "write-quorum", required_argument, NULL, 1004 },          \
	    { "read-quorum", required_argument, NULL, 1005 },           \
	    { "secret-file", required_argument, NULL, 1006 },           \
	    { "threads", required_argument, NULL, 1007 },               \
	    { "timeout-ms", required_argument, NULL, 1008 },            \
	    { "sync-interval", required_argument, NULL, 1009 },          \
	    { "syslog", no_argument, NULL, 1010 },                      \
	    { "log-level", required_argument, NULL, 1011 },             \
	    { "scrub-rate", required_argument, NULL, 1012 },            \
	    { "scrub-interval", required_argument, NULL, 1013 },        \
	    { "rebalance-rate", required_argument, NULL, 1014 },        \
	    { "no-expiry", no_argument, NULL, 1015 },                   \
	    { "allow-flush", no_argument, NULL, 1016 },                 \
	    CLI_TLS_OPTIONS

/* A byte count with an optional K, M or G (powers of 1024). */
static uint64_t parse_bytes(const char *s, const char *usage)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	int shift = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
	if (errno || end == s || s[0] == '-' || (shift && end[1]) || (!shift && *end) ||
	    v > (UINT64_MAX >> 31))
		die_usage(usage, "bad byte count '%s'", s);
	return (uint64_t)v << shift;
}

/* Handles one of CLUSTER_OPTIONS; false when c is not one of them. */
static bool cluster_opt(int c, struct node_args *n, const char *usage)
{
	unsigned long long v;

	if (cli_tls_opt(c, &n->tls))
		return true;
	switch (c) {
	case 1001:
		n->listen = optarg;
		return true;
	case 1002:
		n->peers = optarg;
		return true;
	case 1006:
		n->secret_file = optarg;
		return true;
	case 1010:
		n->syslog = true;
		return true;
	case 1015:
		n->no_expiry = true;
		return true;
	case 1016:
		n->allow_flush = true;
		return true;
	case 1011:
		if (log_level_parse(optarg, &n->log_level) < 0)
			die_usage(usage, "unknown log level '%s' (error, warn, info, debug)", optarg);
		return true;
	case 1012:
		n->scrub_rate = parse_bytes(optarg, usage);
		n->scrub_rate_given = true;
		return true;
	case 1013:
		v = parse_number(optarg, "bad number '%s'", usage);
		if (v == 0 || v > 10ull * 365 * 86400)
			die_usage(usage, "number out of range: '%s'", optarg);
		n->scrub_interval_s = (unsigned)v;
		return true;
	case 1009:
	case 1014:
		v = parse_number(optarg, "bad number '%s'", usage);
		if (v > 86400 || (c == 1014 && v == 0))
			die_usage(usage, "number out of range: '%s'", optarg);
		if (c == 1009)
			n->sync_interval_s = (int)v;
		else
			n->rebalance_mib = (int)v;
		return true;
	case 1003:
	case 1004:
	case 1005:
	case 1007:
	case 1008:
		v = parse_number(optarg, "bad number '%s'", usage);
		if (v == 0 || v > (c == 1008 ? 600000 : 64))
			die_usage(usage, "number out of range: '%s'", optarg);
		if (c == 1003)
			n->replicas = (int)v;
		else if (c == 1004)
			n->write_quorum = (int)v;
		else if (c == 1005)
			n->read_quorum = (int)v;
		else if (c == 1007)
			n->threads = (int)v;
		else
			n->timeout_ms = (int)v;
		return true;
	default:
		return false;
	}
}

/* The store's options of kv, mount and serve (each takes those its option
 * table names): --sync, --node-id (1 to node_max; *node_id_given set when
 * not NULL), --segment-size. False when c is not one of them. */
static bool store_opt(int c, struct store_options *so, unsigned long long node_max,
		      bool *node_id_given, const char *usage)
{
	unsigned long long v;

	switch (c) {
	case 's':
		if (store_sync_mode_parse(optarg, &so->sync) < 0)
			die_usage(usage, "unknown sync mode '%s'", optarg);
		return true;
	case 'n':
		v = parse_number(optarg, "bad node id '%s'", usage);
		if (v == 0 || v > node_max)
			die_usage(usage, "bad node id '%s'", optarg);
		so->node_id = (uint32_t)v;
		if (node_id_given)
			*node_id_given = true;
		return true;
	case 'S':
		so->segment_size = parse_number(optarg, "bad segment size '%s'", usage);
		return true;
	default:
		return false;
	}
}

static int main_kv(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sync", required_argument, NULL, 's' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "segment-size", required_argument, NULL, 'S' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		CLI_TLS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct kv_args a = { 0 };
	struct tls_files tls = { 0 };
	const char *op;
	int c, rest;

	store_options_init(&a.store);
	a.store.no_background = true;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (store_opt(c, &a.store, UINT32_MAX, NULL, usage_kv) ||
		    cli_tls_opt(c, &tls))
			continue;
		switch (c) {
		case 'k':
			a.secret_file = optarg;
			break;
		case 'h':
			fputs(usage_kv, stdout);
			return CLI_OK;
		default:
			die_usage(usage_kv, NULL, NULL);
		}
	}
	tls_client(&tls, usage_kv);
	rest = argc - optind;
	if (rest < 2)
		die_usage(usage_kv, "%s", "kv needs DATA_DIR and an operation");
	a.target = argv[optind];
	op = argv[optind + 1];
	rest -= 2;
	char **args = argv + optind + 2;

	if (strcmp(op, "put") == 0) {
		a.op = KV_PUT;
		if (rest < 1 || rest > 2)
			die_usage(usage_kv, "%s", "put takes KEY [FILE]");
		a.file = rest == 2 ? args[1] : NULL;
	} else if (strcmp(op, "get") == 0 || strcmp(op, "del") == 0) {
		a.op = op[0] == 'g' ? KV_GET : KV_DEL;
		if (rest != 1)
			die_usage(usage_kv, "%s takes exactly one KEY", op);
	} else if (strcmp(op, "ls") == 0 || strcmp(op, "stat") == 0) {
		a.op = op[0] == 'l' ? KV_LS : KV_STAT;
		if (rest > 1)
			die_usage(usage_kv, "%s takes at most one argument", op);
	} else {
		die_usage(usage_kv, "unknown kv operation '%s'", op);
	}
	a.key = rest >= 1 ? args[0] : NULL;
	if (a.key && a.op != KV_LS && (a.key[0] == '\0' || strlen(a.key) > STORE_KEY_MAX))
		die_usage(usage_kv, "key must be 1 to 250 bytes: '%s'", a.key);
	return cli_kv(&a);
}

/* The command line with DATA_DIR/node.conf's settings in front (config.c). */
static char **with_config(int *argc, char **argv, const struct option *opts, const char *optstring)
{
	char err[4400];
	char **out = cli_config_argv(argc, argv, opts, optstring, err, sizeof(err));

	if (!out) {
		fprintf(stderr, "caskfs: %s\n", err);
		exit(CLI_USAGE);
	}
	return out;
}

static int main_mount(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "sync", required_argument, NULL, 's' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "log", required_argument, NULL, 'l' },
		{ "writeback", no_argument, NULL, 'w' },
		{ "segment-size", required_argument, NULL, 'S' },
		{ "uring", required_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		CLUSTER_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct mount_args a = { .node.sync_interval_s = 60, .uring = FS_URING_AUTO };
	int c;

	store_options_init(&a.store);
	argv = with_config(&argc, argv, opts, "fo:h");
	while ((c = getopt_long(argc, argv, "fo:h", opts, NULL)) != -1) {
		if (cluster_opt(c, &a.node, usage_mount) ||
		    store_opt(c, &a.store, 0xFFFF, &a.node.node_id_given, usage_mount))
			continue;
		switch (c) {
		case 'f':
			a.foreground = true;
			break;
		case 'o':
			a.options = optarg;
			break;
		case 'l':
			a.log_file = optarg;
			break;
		case 'w':
			a.writeback = true;
			break;
		case 'U':
			if (strcmp(optarg, "on") == 0)
				a.uring = FS_URING_ON;
			else if (strcmp(optarg, "off") == 0)
				a.uring = FS_URING_OFF;
			else if (strcmp(optarg, "auto") == 0)
				a.uring = FS_URING_AUTO;
			else
				die_usage(usage_mount, "bad --uring '%s' (on, off or auto)", optarg);
			break;
		case 'h':
			fputs(usage_mount, stdout);
			return CLI_OK;
		default:
			die_usage(usage_mount, NULL, NULL);
		}
	}
	if (argc - optind != 2)
		die_usage(usage_mount, "%s", "mount needs DATA_DIR and MOUNTPOINT");
	a.data_dir = argv[optind];
	a.mountpoint = argv[optind + 1];
	return cli_mount(&a);
}

static int main_serve(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sync", required_argument, NULL, 's' },
		{ "segment-size", required_argument, NULL, 'S' },
		{ "node-id", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		CLUSTER_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct serve_args a = { .node.sync_interval_s = 60 };
	int c;

	store_options_init(&a.store);
	argv = with_config(&argc, argv, opts, "h");
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cluster_opt(c, &a.node, usage_serve) ||
		    store_opt(c, &a.store, 0xFFFF, &a.node.node_id_given, usage_serve))
			continue;
		switch (c) {
		case 'h':
			fputs(usage_serve, stdout);
			return CLI_OK;
		default:
			die_usage(usage_serve, NULL, NULL);
		}
	}
	if (argc - optind != 1)
		die_usage(usage_serve, "%s", "serve needs DATA_DIR");
	a.data_dir = argv[optind];
	if (!a.node.listen)
		a.node.listen = "127.0.0.1:7700";
	return cli_serve(&a);
}

static const char usage_sync[] =
    "usage: caskfs sync [OPTIONS] A B\n"
    "\n"
    "Compares the hash trees of two replicas (each a node's HOST:PORT or a\n"
    "DATA_DIR not in use), descends only into what differs, and copies the newer\n"
    "version of every differing object and namespace record each way. Prints\n"
    "what differed and the bytes moved.\n"
    "\n"
    "options:\n"
    "  --dry-run              report the differences, copy nothing\n"
    "  --data                 only the objects (the store's tree)\n"
    "  --meta                 only the namespace records\n"
    "  --verbose              list every differing key\n"
    "  --secret-file FILE     authenticate to the nodes\n"
    CLI_TLS_USAGE_SYNC
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 the two are equal at the end, 1 they differ (always, with\n"
    "--dry-run, when anything differed), 2 bad usage, 3 a replica unreachable.\n";

static int main_sync(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },	{ "data", no_argument, NULL, 'd' },
		{ "meta", no_argument, NULL, 'm' },	{ "verbose", no_argument, NULL, 'v' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },	CLI_TLS_OPTIONS, { NULL, 0, NULL, 0 },
	};
	struct sync_args a = { 0 };
	struct tls_files tls = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "hv", opts, NULL)) != -1) {
		if (cli_tls_opt(c, &tls))
			continue;
		switch (c) {
		case 'n':
			a.dry_run = true;
			break;
		case 'd':
			a.data_only = true;
			break;
		case 'm':
			a.meta_only = true;
			break;
		case 'v':
			a.verbose = true;
			break;
		case 'k':
			a.secret_file = optarg;
			break;
		case 'h':
			fputs(usage_sync, stdout);
			return CLI_OK;
		default:
			die_usage(usage_sync, NULL, NULL);
		}
	}
	tls_client(&tls, usage_sync);
	if (argc - optind != 2)
		die_usage(usage_sync, "%s", "sync needs A and B");
	if (a.data_only && a.meta_only)
		die_usage(usage_sync, "%s", "--data and --meta exclude each other");
	a.a = argv[optind];
	a.b = argv[optind + 1];
	return cli_sync(&a);
}

static const char usage_status[] =
    "usage: caskfs status [--json] [--secret-file FILE] [--tls-* FILE] DATA_DIR|HOST:PORT\n"
    "\n"
    "What a node holds and how it is doing: objects, bytes and garbage, each\n"
    "segment's live ratio, the hash-tree roots, the cluster and its peers, the\n"
    "hinted-handoff queue and the namespace push backlog. A DATA_DIR must not be\n"
    "in use (ask the running node instead). A node also serves these numbers as\n"
    "Prometheus metrics: GET http://HOST:PORT/metrics (https with TLS).\n\n" CLI_TLS_USAGE
    "\n"
    "Exit status: 0, 2 bad usage, 3 unreachable or in use.\n";

static int main_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		CLI_TLS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct tls_files tls = { 0 };
	const char *secret = NULL;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cli_tls_opt(c, &tls))
			continue;
		if (c == 'j')
			json = true;
		else if (c == 'k')
			secret = optarg;
		else if (c == 'h') {
			fputs(usage_status, stdout);
			return CLI_OK;
		} else
			die_usage(usage_status, NULL, NULL);
	}
	tls_client(&tls, usage_status);
	if (argc - optind != 1)
		die_usage(usage_status, "%s", "status needs DATA_DIR or HOST:PORT");
	return cli_status(argv[optind], json, secret);
}

static const char usage_gc[] =
    "usage: caskfs gc [--dry-run] [--grace SECONDS] [--secret-file FILE] DATA_DIR|HOST:PORT\n"
    "\n"
    "Removes the chunks no file references (marked from the namespace, swept on\n"
    "this node and every peer) that are older than the grace period, then\n"
    "compacts the log. Give a mount's DATA_DIR or HOST:PORT (a node without a\n"
    "mount holds no namespace). Reports what it found and the bytes reclaimed.\n"
    "\n"
    "options:\n"
    "  --dry-run          report, remove nothing\n"
    "  --grace SECONDS    spare chunks younger than this (default 3600; keep it\n"
    "                     above 60 and above the longest a file stays open for\n"
    "                     writing on another mount)\n"
    "  --secret-file FILE authenticate to the node\n" CLI_TLS_USAGE
    "\n"
    "Exit status: 0, 2 bad usage, 3 unreachable or failed.\n";

static int main_cluster(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-wait", no_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		CLI_TLS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct tls_files tls = { 0 };
	struct cluster_args a = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cli_tls_opt(c, &tls))
			continue;
		if (c == 'w')
			a.no_wait = true;
		else if (c == 't')
			a.timeout_s = (int)parse_number(optarg, "bad timeout '%s'", usage_cluster);
		else if (c == 'k')
			a.secret_file = optarg;
		else if (c == 'h') {
			fputs(usage_cluster, stdout);
			return CLI_OK;
		} else
			die_usage(usage_cluster, NULL, NULL);
	}
	tls_client(&tls, usage_cluster);
	int rest = argc - optind;
	if (rest < 2)
		die_usage(usage_cluster, "%s", "cluster needs an operation and NODE");
	a.op = argv[optind];
	a.node = argv[optind + 1];
	bool show = strcmp(a.op, "show") == 0;
	if (!show && strcmp(a.op, "add") != 0 && strcmp(a.op, "remove") != 0)
		die_usage(usage_cluster, "unknown cluster operation '%s'", a.op);
	if (rest != (show ? 2 : 3))
		die_usage(usage_cluster, "%s", show ? "show takes NODE" : "add and remove take NODE HOST:PORT");
	a.addr = show ? NULL : argv[optind + 2];
	return cli_cluster(&a);
}

static int main_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dry-run", no_argument, NULL, 'n' },
		{ "grace", required_argument, NULL, 'g' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		CLI_TLS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct tls_files tls = { 0 };
	const char *secret = NULL;
	unsigned long long grace = 3600;
	bool dry = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cli_tls_opt(c, &tls))
			continue;
		if (c == 'n')
			dry = true;
		else if (c == 'g')
			grace = parse_number(optarg, "bad grace period '%s'", usage_gc);
		else if (c == 'k')
			secret = optarg;
		else if (c == 'h') {
			fputs(usage_gc, stdout);
			return CLI_OK;
		} else
			die_usage(usage_gc, NULL, NULL);
	}
	tls_client(&tls, usage_gc);
	if (argc - optind != 1)
		die_usage(usage_gc, "%s", "gc needs DATA_DIR or HOST:PORT");
	if (grace > 10ull * 365 * 86400)
		die_usage(usage_gc, "grace period too long: '%s'", "--grace");
	return cli_gc(argv[optind], (uint64_t)grace * 1000, dry, secret);
}

static int main_fsck(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "repair", no_argument, NULL, 'r' },
		{ "peers", required_argument, NULL, 'p' },
		{ "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		CLI_TLS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct tls_files tls = { 0 };
	struct fsck_args a = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cli_tls_opt(c, &tls))
			continue;
		if (c == 'r')
			a.repair = true;
		else if (c == 'p')
			a.peers = optarg;
		else if (c == 'k')
			a.secret_file = optarg;
		else if (c == 'h') {
			fputs(usage_fsck, stdout);
			return CLI_OK;
		} else
			die_usage(usage_fsck, NULL, NULL);
	}
	tls_client(&tls, usage_fsck);
	if (argc - optind != 1)
		die_usage(usage_fsck, "%s", "fsck needs DATA_DIR");
	a.data_dir = argv[optind];
	return cli_fsck(&a);
}

#define usage_scrub cli_usage_scrub

static int main_scrub(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "now", no_argument, NULL, 'n' },	  { "wait", no_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' }, { "secret-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },	  CLI_TLS_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct tls_files tls = { 0 };
	struct scrub_args a = { 0 };
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (cli_tls_opt(c, &tls))
			continue;
		if (c == 'n')
			a.now = true;
		else if (c == 'w')
			a.wait = true;
		else if (c == 'r')
			a.rate = parse_bytes(optarg, usage_scrub);
		else if (c == 'k')
			a.secret_file = optarg;
		else if (c == 'h') {
			fputs(usage_scrub, stdout);
			return CLI_OK;
		} else
			die_usage(usage_scrub, NULL, NULL);
	}
	tls_client(&tls, usage_scrub);
	if (argc - optind != 1)
		die_usage(usage_scrub, "%s", "scrub needs DATA_DIR or HOST:PORT");
	a.target = argv[optind];
	return cli_scrub(&a);
}

static int main_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "files", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "tree", required_argument, NULL, 't' },
		{ "only", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_args a = { .seq_bytes = (size_t)256 << 20,
				.files = 10000,
				.rounds = 4,
				.tree = "/usr/include,/usr/share/doc" };
	int c;

	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 's': {
			unsigned long long v = parse_number(optarg, "bad size '%s'", usage_bench);
			if (v == 0 || v > (1ull << 20))
				die_usage(usage_bench, "bad size '%s'", optarg);
			a.seq_bytes = (size_t)v << 20;
			break;
		}
		case 'n': {
			unsigned long long v = parse_number(optarg, "bad count '%s'", usage_bench);
			if (v == 0 || v > 10000000)
				die_usage(usage_bench, "bad count '%s'", optarg);
			a.files = (int)v;
			break;
		}
		case 'r': {
			unsigned long long v = parse_number(optarg, "bad rounds '%s'", usage_bench);
			if (v == 0 || v > FS_BENCH_MAX_ROUNDS)
				die_usage(usage_bench, "bad rounds '%s'", optarg);
			a.rounds = (int)v;
			break;
		}
		case 't':
			if (!*optarg || strlen(optarg) > 2048)
				die_usage(usage_bench, "bad tree '%s'", optarg);
			a.tree = optarg;
			break;
		case 'o':
			a.only = optarg;
			break;
		case 'h':
			fputs(usage_bench, stdout);
			return CLI_OK;
		default:
			die_usage(usage_bench, NULL, NULL);
		}
	}
	if (argc - optind != 1)
		die_usage(usage_bench, "%s", "bench needs MOUNTPOINT");
	a.mountpoint = argv[optind];
	return cli_bench(&a);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		die_usage(usage_main, NULL, NULL);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		fputs(usage_main, stdout);
		return CLI_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("caskfs %s\n", CASKFS_VERSION);
		return CLI_OK;
	}
	if (strcmp(argv[1], "kv") == 0)
		return main_kv(argc - 1, argv + 1);
	if (strcmp(argv[1], "mount") == 0)
		return main_mount(argc - 1, argv + 1);
	if (strcmp(argv[1], "serve") == 0)
		return main_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "gc") == 0)
		return main_gc(argc - 1, argv + 1);
	if (strcmp(argv[1], "status") == 0)
		return main_status(argc - 1, argv + 1);
	if (strcmp(argv[1], "sync") == 0)
		return main_sync(argc - 1, argv + 1);
	if (strcmp(argv[1], "cluster") == 0)
		return main_cluster(argc - 1, argv + 1);
	if (strcmp(argv[1], "bench") == 0)
		return main_bench(argc - 1, argv + 1);
	if (strcmp(argv[1], "fsck") == 0)
		return main_fsck(argc - 1, argv + 1);
	if (strcmp(argv[1], "scrub") == 0)
		return main_scrub(argc - 1, argv + 1);
	if (strcmp(argv[1], "hash") == 0) {
		if (argc < 3 || argv[2][0] == '-') {
			fputs("usage: caskfs hash FILE...\n\nPrints HASH  FILE for each file: the "
			      "hash a caskfs mount gives as\nuser.caskfs.hash, computed here from "
			      "the bytes (docs/FORMAT.md).\n",
			      argc < 3 ? stderr : stdout);
			return argc < 3 ? CLI_USAGE : CLI_OK;
		}
		return cli_hash(argv + 2, argc - 2);
	}
	die_usage(usage_main, "unknown command '%s'", argv[1]);
	return CLI_USAGE;
}
