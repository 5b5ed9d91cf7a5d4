/*
 * kv_remote - `caskfs kv HOST:PORT ...`: the same operations against a node
 * over the node protocol. put, get and del are coordinated by that node (so
 * they are replicated); stat KEY and ls describe that node's own records, which
 * is how a test or an operator checks where copies are.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/node/client.h"
#include "cli_i.h"

#define CONNECT_MS 2000
#define IO_MS 30000
/* What this command reads of a value before it refuses it (the node itself
 * refuses one over PROTO_VALUE_MAX). */
#define REMOTE_VALUE_MAX (2 * (size_t)STORE_VALUE_MAX - 1)

static int print_ls(void *arg, const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	bool tomb = len >= 2 && line[len - 1] == 'T' && line[len - 2] == ' ';

	(void)arg;
	if (!tomb)
		printf("%.*s\n", (int)(sp ? (size_t)(sp - line) : len), line);
	return 0;
}

static int print_stat_line(void *arg, const char *line, size_t len)
{
	(void)arg;
	if (len > 5 && memcmp(line, "STAT ", 5) == 0)
		printf("%.*s\n", (int)(len - 5), line + 5);
	return 0;
}

/* stat KEY: the node's own record, from `get ?KEY`. */
static int stat_key(struct mc_conn *c, const char *key)
{
	char k[STORE_KEY_MAX + 2], state[16];
	void *val;
	size_t len;
	uint64_t stamp, hash;
	unsigned node, size, flags = 0, expires = 0;
	int rc;

	snprintf(k, sizeof(k), "?%s", key);
	rc = mc_get(c, k, &val, &len);
	if (rc == -ENOENT) {
		fprintf(stderr, "caskfs kv: %s: no such key on %s\n", key, mc_addr(c));
		return CLI_MISSING;
	}
	if (rc < 0)
		return rc;
	char text[256];
	snprintf(text, sizeof(text), "%.*s", (int)(len < 255 ? len : 255), (char *)val);
	free(val);
	/* STAMP NODE HASH SIZE [FLAGS EXPIRES] live|tombstone (nodes before
	 * format version 2 leave out the two) */
	if (sscanf(text, "%" SCNu64 " %u %" SCNx64 " %u %u %u %15s", &stamp, &node, &hash, &size,
		   &flags, &expires, state) != 7 &&
	    sscanf(text, "%" SCNu64 " %u %" SCNx64 " %u %15s", &stamp, &node, &hash, &size,
		   state) != 5)
		return -EPROTO;
	if (strcmp(state, "live") != 0) {
		fprintf(stderr, "caskfs kv: %s: deleted on %s (stamp %" PRIu64 " node %u)\n", key,
			mc_addr(c), stamp, node);
		return CLI_MISSING;
	}
	printf("key: %s\nnode_addr: %s\nsize: %u\nstamp: %" PRIu64 "\nnode: %u\nvalue_hash: "
	       "%016" PRIx64 "\nflags: %u\nexpires: %u\n",
	       key, mc_addr(c), size, stamp, node, hash, flags, expires);
	return CLI_OK;
}

static int run(struct mc_conn *c, const struct kv_args *a)
{
	void *val;
	size_t len;
	int rc;

	switch (a->op) {
	case KV_PUT: {
		int fd = a->file ? open(a->file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
		if (fd < 0) {
			fprintf(stderr, "caskfs kv: cannot open %s: %s\n", a->file, strerror(errno));
			return CLI_USAGE;
		}
		rc = cli_read_all(fd, REMOTE_VALUE_MAX, &val, &len);
		if (a->file)
			close(fd);
		if (rc < 0) {
			fprintf(stderr, "caskfs kv: cannot read the value: %s\n", strerror(-rc));
			return rc == -EFBIG ? CLI_USAGE : CLI_IO;
		}
		rc = mc_set(c, a->key, val, len);
		free(val);
		return rc;
	}
	case KV_GET:
		rc = mc_get(c, a->key, &val, &len);
		if (rc == -ENOENT) {
			fprintf(stderr, "caskfs kv: %s: no such key\n", a->key);
			return CLI_MISSING;
		}
		if (rc < 0)
			return rc;
		rc = fwrite(val, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -EIO;
		free(val);
		return rc;
	case KV_DEL:
		rc = mc_delete(c, a->key);
		if (rc == -ENOENT) {
			fprintf(stderr, "caskfs kv: %s: no such key\n", a->key);
			return CLI_MISSING;
		}
		return rc;
	case KV_LS: {
		char cmd[STORE_KEY_MAX + 8];
		snprintf(cmd, sizeof(cmd), "xls%s%s", a->key ? " " : "", a->key ? a->key : "");
		return mc_lines(c, cmd, print_ls, NULL);
	}
	default:
		if (a->key)
			return stat_key(c, a->key);
		return mc_lines(c, "stats", print_stat_line, NULL);
	}
}

int cli_kv_remote(const struct kv_args *a)
{
	struct auth_key key;
	struct mc_conn *c;
	char err[512];
	int rc;

	if (a->secret_file && auth_load(a->secret_file, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs kv: %s\n", err);
		return CLI_USAGE;
	}
	rc = mc_connect(a->target, a->secret_file ? &key : NULL, CONNECT_MS, IO_MS, &c);
	if (rc < 0) {
		fprintf(stderr, "caskfs kv: cannot reach %s: %s\n", a->target,
			rc == -EACCES ? "authentication failed" : strerror(-rc));
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	rc = run(c, a);
	mc_close(c);
	if (rc < 0) {
		fprintf(stderr, "caskfs kv: %s: %s\n", a->target, strerror(-rc));
		return CLI_IO;
	}
	return rc;
}
