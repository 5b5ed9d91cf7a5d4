/*
 * node - what mount and serve share to be a node of a cluster: the quorum
 * client over the local store and, when --listen is given, the protocol
 * server (docs/PROTOCOL.md), which also answers on DATA_DIR/control.sock so
 * the commands find a running node by its DATA_DIR (docs/USAGE.md, "The
 * control socket").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "store/node/client.h"
#include "common_i.h"

/* The scrubber's check: a chunk's bytes must hash to the id its key names
 * (docs/FORMAT.md, "Chunks"); other objects have only their checksum. */
static int scrub_check(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	static const char digits[] = "0123456789abcdef";
	const char *k = key;
	XXH128_canonical_t c;

	(void)arg;
	if (klen != 34 || k[0] != 'c' || k[1] != '/')
		return 0;
	XXH128_canonicalFromHash(&c, XXH3_128bits(val, vlen));
	for (int i = 0; i < 16; i++)
		if (k[2 + 2 * i] != digits[c.digest[i] >> 4] ||
		    k[3 + 2 * i] != digits[c.digest[i] & 15])
			return -EBADMSG;
	return 0;
}

static int scrub_repair(void *arg, const void *key, size_t klen, const struct store_version *v)
{
	struct node *n = arg;

	return cluster_repair(n->cluster, key, klen, v, scrub_check, NULL);
}

/* Starts the node's scrubber (store/log/scrub.c) unless its rate is 0. */
static void start_scrub(struct node *n, const struct node_args *a, const char *prefix)
{
	struct store_scrub_options o = {
		.rate = a->scrub_rate_given ? a->scrub_rate : NODE_SCRUB_RATE,
		.interval_s = a->scrub_interval_s,
		.check = scrub_check,
		.repair = scrub_repair,
		.arg = n,
	};
	int rc = o.rate ? store_scrub_start(n->store, &o) : 0;

	if (rc < 0)
		fprintf(stderr, "%s: no scrubber: %s\n", prefix, strerror(-rc));
}

void node_pick_id(const struct node_args *a, struct store_options *store)
{
	if (a->node_id_given || !a->listen || !a->peers)
		return;
	store->node_id = (uint32_t)(XXH3_64bits(a->listen, strlen(a->listen)) % 65535) + 1;
}

int node_start(struct store *s, const char *data_dir, const struct node_args *a,
	       const char *prefix, server_ext_fn ext, server_stats_fn stats_ext, void *ext_arg,
	       struct node *out)
{
	struct cluster_options co = {
		.self = a->listen,
		.peers = a->peers,
		.replicas = a->replicas,
		.write_quorum = a->write_quorum,
		.read_quorum = a->read_quorum,
		.io_ms = a->timeout_ms,
		.connect_ms = a->timeout_ms ? (a->timeout_ms + 1) / 2 : 0,
		.data_dir = data_dir,
	};
	char err[512], desc[128];
	int rc;

	memset(out, 0, sizeof(*out));
	out->store = s;
	if (a->peers && !a->listen) {
		fprintf(stderr, "%s: --peers needs --listen (the address the peers know this "
				"node by)\n",
			prefix);
		return CLI_USAGE;
	}
	if (a->secret_file) {
		if (auth_load(a->secret_file, &out->key, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s\n", prefix, err);
			return CLI_USAGE;
		}
		out->have_key = true;
		co.key = &out->key;
	}
	/* one identity for the port and for every connection to a peer */
	if (tls_files_given(&a->tls) && mc_tls_init(&a->tls, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", prefix, err);
		return CLI_USAGE;
	}
	rc = cluster_open(s, &co, &out->cluster);
	if (rc < 0) {
		fprintf(stderr, "%s: cannot start the quorum client: %s\n", prefix, strerror(-rc));
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	/* every node also answers on DATA_DIR/control.sock, so status, sync and
	 * gc can be given the DATA_DIR of a running node */
	char control[4200];
	snprintf(control, sizeof(control), "%s/control.sock", data_dir);
	{
		struct server_options so = {
			.listen = a->listen,
			.control = control,
			.threads = a->listen ? a->threads : 2,
			.key = co.key,
			.tls = a->tls,
			.ext = ext,
			.stats_ext = stats_ext,
			.ext_arg = ext_arg,
			.no_expiry = a->no_expiry,
			.allow_flush = a->allow_flush,
		};
		rc = server_start(s, out->cluster, &so, &out->server);
		if (rc < 0) {
			cluster_close(out->cluster);
			out->cluster = NULL;
			return rc == -EINVAL || rc == -EPERM ? CLI_USAGE : CLI_IO;
		}
	}
	start_scrub(out, a, prefix);
	cluster_describe(out->cluster, desc, sizeof(desc));
	struct store_stats st;
	store_stats(s, &st);
	fprintf(stderr, "%s: node %u, %s%s%s%s%s\n", prefix, st.node_id, desc,
		a->listen ? ", listening on " : "", a->listen ? a->listen : "",
		!a->tls.cert ? "" : a->tls.ca ? " (mutual TLS)" : " (TLS)",
		out->have_key ? " (peers authenticate)" : "");
	return 0;
}

void node_stop(struct node *n)
{
	store_scrub_stop(n->store); /* its repairs go through the cluster */
	server_stop(n->server);
	n->server = NULL;
	cluster_close(n->cluster);
	n->cluster = NULL;
}

static void add_peer(void *arg, const char *addr, bool self, bool up, uint64_t hints)
{
	struct node_peers *out = arg;

	(void)up;
	(void)hints;
	if (!self && out->n < CLUSTER_MAX_NODES)
		snprintf(out->addr[out->n++], sizeof(out->addr[0]), "%s", addr);
}

void node_peers_list(struct cluster *c, struct node_peers *out)
{
	out->n = 0;
	cluster_peers(c, add_peer, out);
}

bool node_control_addr(const char *dir, char *out, size_t cap)
{
	char path[4200];
	struct stat st;
	struct mc_conn *c;

	snprintf(path, sizeof(path), "%s/control.sock", dir);
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	snprintf(out, cap, "unix:%s", path);
	/* a socket left by a node that was killed: nobody answers */
	if (mc_connect(out, NULL, 1000, 1000, &c) < 0)
		return false;
	mc_close(c);
	return true;
}

void node_wait_shutdown(const char *dir)
{
	char path[4200], control[4300];
	int fd;

	snprintf(path, sizeof(path), "%s/LOCK", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* held, and its node no longer answers: it is on its way out (unmounted
	 * a moment ago, syncing). A node that goes on answering for 200 ms is
	 * running: busy (a mount stops answering as soon as its FUSE loop ends,
	 * which is a moment after the unmount). */
	int answered = 0;
	for (int i = 0; i < 100 && answered < 4 && flock(fd, LOCK_EX | LOCK_NB) < 0 &&
			errno == EWOULDBLOCK;
	     i++) {
		answered = node_control_addr(dir, control, sizeof(control)) ? answered + 1 : 0;
		usleep(50000);
	}
	close(fd); /* releases the lock if it was taken: store_open takes it for good */
}
