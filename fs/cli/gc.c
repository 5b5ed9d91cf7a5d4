/*
 * gc - `caskfs gc DATA_DIR|HOST:PORT`: asks the running node (by its
 * control socket or its address) to collect with `mgc`, or collects a
 * DATA_DIR not in use itself (fs_gc, fs/daemon/gc.c), and prints what was
 * found and reclaimed. docs/OPERATIONS.md ("Garbage collection").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_i.h"
#include "fs/daemon/daemon_i.h"
#include "store/node/client.h"

static int gc_line(void *arg, const char *line, size_t len)
{
	struct fs_gc_result *r = arg;
	char name[64];
	uint64_t v;

	(void)len;
	if (sscanf(line, "STAT %63s %" SCNu64, name, &v) != 2)
		return 0;
	struct {
		const char *n;
		uint64_t *p;
	} f[] = { { "referenced", &r->referenced },
		  { "chunks", &r->chunks },
		  { "young", &r->young },
		  { "garbage", &r->garbage },
		  { "garbage_bytes", &r->garbage_bytes },
		  { "deleted", &r->deleted },
		  { "segments_compacted", &r->segments_compacted },
		  { "reclaimed_bytes", &r->reclaimed_bytes },
		  { "peers_missed", &r->peers_missed } };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (strcmp(name, f[i].n) == 0)
			*f[i].p = v;
	return 0;
}

int cli_gc(const char *target, uint64_t grace_ms, bool dry_run, const char *secret)
{
	struct fs_gc_result r;
	char control[4300], err[512];
	const char *addr = NULL;
	struct auth_key key;
	struct stat st;
	int rc;

	if (secret && auth_load(secret, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs gc: %s\n", err);
		return CLI_USAGE;
	}
	bool is_dir = stat(target, &st) == 0 && S_ISDIR(st.st_mode);
	if (is_dir && node_control_addr(target, control, sizeof(control)))
		addr = control;
	else if (!is_dir && strchr(target, ':'))
		addr = target;
	if (addr) {
		struct mc_conn *c;
		char cmd[64];
		rc = mc_connect(addr, secret ? &key : NULL, 2000, 3600 * 1000, &c);
		if (rc < 0) {
			fprintf(stderr, "caskfs gc: cannot reach %s: %s\n", target, strerror(-rc));
			return CLI_IO;
		}
		snprintf(cmd, sizeof(cmd), "mgc %" PRIu64 "%s", grace_ms, dry_run ? " dry" : "");
		memset(&r, 0, sizeof(r));
		rc = mc_lines(c, cmd, gc_line, &r);
		mc_close(c);
		if (rc < 0) {
			fprintf(stderr,
				"caskfs gc: %s could not collect (a node without a "
				"namespace cannot: run gc on a mount)\n",
				target);
			return CLI_IO;
		}
	} else if (is_dir) {
		struct store_options o;
		struct store *s;
		struct meta *m = NULL;
		struct cluster *c = NULL;
		struct cluster_options co = { 0 };
		store_options_init(&o);
		o.no_background = true;
		if ((rc = store_open(target, &o, &s)) < 0)
			return CLI_IO;
		rc = fs_datadir_open_meta(target, s, &m);
		if (rc == 0 && !m) {
			fprintf(stderr,
				"caskfs gc: %s holds no namespace: nothing says which chunks "
				"are live (run gc on a mount)\n",
				target);
			store_close(s);
			return CLI_USAGE;
		}
		uint64_t pending = 0;
		if (rc == 0)
			rc = fs_journal_pending(target, m, &pending);
		if (rc == 0 && pending) {
			fprintf(stderr,
				"caskfs gc: %s: its fsync journal holds %" PRIu64
				" records the namespace does not yet (a mount that "
				"ended without committing them): mount it once, which "
				"replays them, then run gc\n",
				target, pending);
			meta_close(m);
			store_close(s);
			return CLI_IO;
		}
		if (rc == 0)
			rc = cluster_open(s, &co, &c);
		if (rc == 0)
			rc = fs_gc(s, m, c, NULL, NULL, grace_ms, dry_run, &r);
		cluster_close(c);
		meta_close(m);
		int cr = store_close(s);
		if (rc == 0)
			rc = cr;
		if (rc < 0) {
			fprintf(stderr, "caskfs gc: %s: %s\n", target, strerror(-rc));
			return CLI_IO;
		}
	} else {
		fprintf(stderr, "caskfs gc: %s is neither a directory nor HOST:PORT\n", target);
		return CLI_USAGE;
	}
	printf("%" PRIu64 " chunks, %" PRIu64 " referenced by files, %" PRIu64
	       " younger than the grace period\n",
	       r.chunks, r.referenced, r.young);
	printf("%" PRIu64 " unreferenced (%" PRIu64 " bytes here)%s, %" PRIu64 " removed\n",
	       r.garbage, r.garbage_bytes, dry_run ? " would be removed" : "", r.deleted);
	if (!dry_run)
		printf("compaction: %" PRIu64 " segments rewritten, %" PRIu64 " bytes reclaimed\n",
		       r.segments_compacted, r.reclaimed_bytes);
	if (r.peers_missed)
		printf("%" PRIu64 " peers could not be swept; run gc again later\n",
		       r.peers_missed);
	return CLI_OK;
}
