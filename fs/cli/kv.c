/*
 * kv - `caskfs kv`: object access for scripts against a DATA_DIR. One store
 * open per invocation; values stream from a file or stdin and to stdout.
 * Exit statuses are in cli_i.h and docs/USAGE.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_i.h"

static int exit_for(int err)
{
	switch (err) {
	case 0:
		return CLI_OK;
	case -ENOENT:
		return CLI_MISSING;
	case -EINVAL:
		return CLI_USAGE;
	case -EBADMSG:
		return CLI_CORRUPT;
	default:
		return CLI_IO;
	}
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int do_put(struct store *s, const struct kv_args *a)
{
	const char *name = a->file ? a->file : "stdin";
	int fd = a->file ? open(a->file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	void *val = NULL;
	size_t len = 0;
	int rc;

	if (fd < 0) {
		fprintf(stderr, "caskfs kv: cannot open %s: %s\n", a->file, strerror(errno));
		return errno == ENOENT ? CLI_USAGE : CLI_IO;
	}
	rc = cli_read_all(fd, STORE_VALUE_MAX, &val, &len);
	if (a->file)
		close(fd);
	if (rc == -EFBIG) {
		fprintf(stderr, "caskfs kv: %s: value larger than %u bytes\n", name,
			STORE_VALUE_MAX);
		return CLI_USAGE;
	}
	if (rc < 0) {
		if (rc != -ENOMEM)
			fprintf(stderr, "caskfs kv: cannot read %s: %s\n", name, strerror(-rc));
		return CLI_IO;
	}
	rc = store_put(s, a->key, strlen(a->key), val, len, NULL);
	free(val);
	if (rc < 0)
		fprintf(stderr, "caskfs kv: put %s: %s\n", a->key, strerror(-rc));
	return exit_for(rc);
}

static int do_get(struct store *s, const struct kv_args *a)
{
	void *val;
	size_t len;
	int rc = store_get(s, a->key, strlen(a->key), &val, &len, NULL);

	if (rc == -ENOENT) {
		fprintf(stderr, "caskfs kv: %s: no such key\n", a->key);
		return CLI_MISSING;
	}
	if (rc < 0) {
		fprintf(stderr, "caskfs kv: get %s: %s\n", a->key,
			rc == -EBADMSG ? "record fails its checksum" : strerror(-rc));
		return exit_for(rc);
	}
	rc = write_all(STDOUT_FILENO, val, len);
	free(val);
	if (rc < 0) {
		fprintf(stderr, "caskfs kv: cannot write to stdout: %s\n", strerror(-rc));
		return CLI_IO;
	}
	return CLI_OK;
}

static int do_del(struct store *s, const struct kv_args *a)
{
	int rc = store_delete(s, a->key, strlen(a->key), NULL);

	if (rc == -ENOENT)
		fprintf(stderr, "caskfs kv: %s: no such key\n", a->key);
	else if (rc < 0)
		fprintf(stderr, "caskfs kv: del %s: %s\n", a->key, strerror(-rc));
	return exit_for(rc);
}

static int print_key(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	(void)arg;
	(void)m;
	fwrite(key, 1, klen, stdout);
	fputc('\n', stdout);
	return ferror(stdout) ? -EIO : 0;
}

static int do_ls(struct store *s, const struct kv_args *a)
{
	const char *p = a->key ? a->key : "";
	int rc = store_scan(s, p, strlen(p), false, print_key, NULL);

	if (fflush(stdout) != 0)
		rc = -EIO;
	if (rc < 0)
		fprintf(stderr, "caskfs kv: ls: %s\n", strerror(-rc));
	return exit_for(rc);
}

static int do_stat(struct store *s, const struct kv_args *a)
{
	if (a->key) {
		struct store_meta m;
		int rc = store_stat(s, a->key, strlen(a->key), &m);

		if (rc == -ENOENT) {
			if (m.tombstone)
				fprintf(stderr,
					"caskfs kv: %s: deleted (stamp %" PRIu64 " node %u)\n",
					a->key, m.version.stamp, m.version.node);
			else
				fprintf(stderr, "caskfs kv: %s: no such key\n", a->key);
			return CLI_MISSING;
		}
		if (rc < 0) {
			fprintf(stderr, "caskfs kv: stat %s: %s\n", a->key, strerror(-rc));
			return exit_for(rc);
		}
		printf("key: %s\nsize: %u\nstored: %u\ncompressed: %s\nstamp: %" PRIu64
		       "\nnode: %u\nvalue_hash: %016" PRIx64 "\nsegment: %u\noffset: %u\n"
		       "flags: %u\nexpires: %u\n",
		       a->key, m.size, m.stored_size, m.compressed ? "yes" : "no", m.version.stamp,
		       m.version.node, m.value_hash, m.segment, m.offset, m.attr.flags,
		       m.attr.expires);
		return CLI_OK;
	}
	struct store_stats st;
	store_stats(s, &st);
	printf("node: %u\nkeys: %" PRIu64 "\ntombstones: %" PRIu64 "\nlive_bytes: %" PRIu64
	       "\ndisk_bytes: %" PRIu64 "\ngarbage_ratio: %.3f\nsegments: %" PRIu64
	       "\nkeydir_bytes: %" PRIu64 "\ntree_root: %016" PRIx64 "\n",
	       st.node_id, st.keys, st.tombstones, st.live_bytes, st.disk_bytes,
	       st.disk_bytes ? 1.0 - (double)st.live_bytes / (double)st.disk_bytes : 0.0,
	       st.segments, st.keydir_bytes, st.tree_root);
	return CLI_OK;
}

int cli_kv(const struct kv_args *a)
{
	struct store *s;
	struct stat st;
	int rc, status;

	/* HOST:PORT, unless a directory of that name exists */
	if (strchr(a->target, ':') && stat(a->target, &st) < 0)
		return cli_kv_remote(a);
	/* the DATA_DIR of a running node: ask the node */
	char control[4300];
	if (node_control_addr(a->target, control, sizeof(control))) {
		struct kv_args b = *a;
		b.target = control;
		return cli_kv_remote(&b);
	}
	rc = store_open(a->target, &a->store, &s);
	if (rc < 0) {
		if (rc != -EBUSY)
			fprintf(stderr, "caskfs kv: cannot open %s: %s\n", a->target,
				strerror(-rc));
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	switch (a->op) {
	case KV_PUT:
		status = do_put(s, a);
		break;
	case KV_GET:
		status = do_get(s, a);
		break;
	case KV_DEL:
		status = do_del(s, a);
		break;
	case KV_LS:
		status = do_ls(s, a);
		break;
	default:
		status = do_stat(s, a);
		break;
	}
	rc = store_close(s);
	if (rc < 0 && status == CLI_OK) {
		fprintf(stderr, "caskfs kv: cannot make %s durable: %s\n", a->target,
			strerror(-rc));
		status = CLI_IO;
	}
	return status;
}
