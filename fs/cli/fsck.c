/*
 * fsck - `caskfs fsck DATA_DIR [--repair [--peers HOST:PORT,...]]`. Checks,
 * one line per problem: what opening the store had to fix (a torn tail, a
 * hint rebuilt), every record against its checksum and its segment's hint
 * file, every chunk every file names (present, long enough, readable), link
 * counts against the entries, and inodes no name leads to; exit 0 only when
 * clean. --repair rebuilds the hint files that disagree, fetches damaged or
 * missing objects from a peer with a good copy (its hash checked), rewrites
 * link counts and moves orphans to /lost+found, then checks again.
 * docs/USAGE.md ("caskfs fsck"), docs/OPERATIONS.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs/daemon/chunk_i.h"
#include "fs/daemon/daemon_i.h"
#include "store/node/cmap.h"
#include "cli_i.h"
#include "store/node/client.h"

#define MAX_PEERS 16

struct keylist {
	char (*k)[STORE_KEY_MAX + 1];
	size_t n, cap;
};

struct fsck {
	struct store *store;
	uint64_t problems, inodes, chunks, records;
	struct keylist bad_keys;	  /* damaged or missing objects to fetch */
	uint32_t bad_hints[64];		  /* segments whose hint file is wrong */
	int nbad_hints;
	struct progress bar;
	/* the buckets this node holds by its cluster map; NULL: every bucket
	 * (a DATA_DIR without one holds every chunk its files name) */
	struct cluster_bucket_set *owned;
	uint64_t elsewhere; /* chunks of buckets other nodes hold: not checked here */
};

static void add_key(struct keylist *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->k[i], key) == 0)
			return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char(*n)[STORE_KEY_MAX + 1] = realloc(l->k, cap * sizeof(*n));
		if (!n)
			return;
		l->k = n;
		l->cap = cap;
	}
	snprintf(l->k[l->n++], STORE_KEY_MAX + 1, "%s", key);
}

static void say(struct fsck *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(struct fsck *f, const char *fmt, ...)
{
	va_list ap;

	f->problems++;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* What opening the store found and fixed is a problem found. */
static void store_log(void *arg, enum store_log_level level, const char *msg)
{
	struct fsck *f = arg;

	if (level == STORE_LOG_ERROR && strstr(msg, "in use"))
		fprintf(stderr, "caskfs fsck: %s\n", msg); /* not a problem of the data */
	else if (strstr(msg, "torn"))
		/* the unacknowledged end of a write a crash interrupted: recovery,
		 * not damage (anything acknowledged that it took shows up missing) */
		printf("note: store: %s\n", msg);
	else if (level <= STORE_LOG_WARN)
		say(f, "store: %s", msg);
}

static void store_problem(void *arg, uint32_t segment, uint64_t offset, const char *what)
{
	struct fsck *f = arg;

	say(f, "segment %06u offset %" PRIu64 ": %s", segment, offset, what);
	if (strstr(what, "hint") && f->nbad_hints < 64) {
		for (int i = 0; i < f->nbad_hints; i++)
			if (f->bad_hints[i] == segment)
				return;
		f->bad_hints[f->nbad_hints++] = segment;
	}
}

static int find_damaged(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	struct fsck *f = arg;
	char k[STORE_KEY_MAX + 1];
	void *val;
	size_t vlen;

	(void)m;
	if (store_get(f->store, key, klen, &val, &vlen, NULL) == -EBADMSG) {
		snprintf(k, sizeof(k), "%.*s", (int)klen, (const char *)key);
		say(f, "object %s: its newest record is damaged", k);
		add_key(&f->bad_keys, k);
	} else {
		free(val);
	}
	return 0;
}

static int check_inode(void *arg, const struct meta_inode *in)
{
	struct fsck *f = arg;

	f->inodes++;
	progress_step(&f->bar, f->inodes);
	if (!S_ISREG(in->mode))
		return 0;
	/* the map's order and its slots inside the size are checked as the
	 * record is read: a record that breaks them is reported as damaged */
	for (uint32_t n = 0; n < in->nchunks; n++) {
		char key[FS_CHUNK_KEY_LEN + 1];
		struct store_meta m;
		uint32_t i = in->chunks[n].idx;
		int rc;

		if (meta_chunk_reserved(&in->chunks[n]))
			continue;
		fs_chunk_key(in->chunks[n].key, key);
		uint32_t b = cluster_bucket(key, FS_CHUNK_KEY_LEN);
		if (f->owned && !(f->owned->bits[b >> 6] >> (b & 63) & 1)) {
			f->elsewhere++;
			continue;
		}
		f->chunks++;
		rc = store_stat(f->store, key, FS_CHUNK_KEY_LEN, &m);
		if (rc == -ENOENT) {
			say(f, "inode %" PRIu64 ": chunk %u (%s) is missing", in->ino, i, key);
			add_key(&f->bad_keys, key);
		} else if (rc < 0) {
			say(f, "inode %" PRIu64 ": chunk %u (%s) cannot be read: %s", in->ino, i, key,
			    strerror(-rc));
			add_key(&f->bad_keys, key);
		} else if (m.size < in->chunks[n].len) {
			say(f, "inode %" PRIu64 ": chunk %u (%s) holds %u bytes, the map says %u",
			    in->ino, i, key, m.size, in->chunks[n].len);
		}
	}
	return 0;
}

static void meta_problem(void *arg, uint64_t ino, const char *what)
{
	say(arg, "inode %" PRIu64 ": %s", ino, what);
}

/* One pass of every check. */
static int check(struct fsck *f, const char *dir, bool repair_meta, uint64_t *meta_fixed)
{
	struct store_options o;
	struct meta *meta = NULL;
	uint64_t bad = 0, mp = 0;
	int rc;

	store_options_init(&o);
	o.no_background = true;
	o.log = store_log;
	o.log_arg = f;
	rc = store_open(dir, &o, &f->store);
	if (rc < 0) {
		if (rc != -EBUSY)
			fprintf(stderr, "caskfs fsck: cannot open %s: %s\n", dir, strerror(-rc));
		return rc;
	}
	f->elsewhere = 0;
	/* with a cluster map, this node holds only its buckets' chunks */
	struct cmap *map = malloc(sizeof(*map));
	struct cmap_local local;
	if (!f->owned && map && cmap_file_load(dir, map, &local) == 0 && local.self[0] &&
	    (f->owned = malloc(sizeof(*f->owned))) &&
	    cluster_bucket_set_of(map, (int)local.replicas, CLUSTER_SET_OWNED, local.self,
				  local.self, f->owned) < 0) {
		free(f->owned);
		f->owned = NULL;
	}
	free(map);
	progress_start(&f->bar, "fsck: records", 0);
	rc = store_verify(f->store, store_problem, f, &f->records, &bad);
	progress_end(&f->bar);
	if (rc == 0 && bad)
		rc = store_scan(f->store, NULL, 0, false, find_damaged, f);
	if (rc == 0)
		rc = fs_datadir_open_meta(dir, f->store, &meta);
	if (meta) {
		struct meta_stats ms;
		uint64_t pending = 0;
		if (rc == 0 && fs_journal_pending(dir, meta, &pending) == 0 && pending)
			printf("fsync journal: %" PRIu64 " records not yet in the namespace "
			       "(the next mount replays them)\n",
			       pending);
		if (rc == 0 && meta_stats(meta, &ms) == 0)
			progress_start(&f->bar, "fsck: files", ms.inodes);
		if (rc == 0)
			rc = meta_scan_inodes(meta, check_inode, f);
		progress_end(&f->bar);
		if (rc == 0)
			rc = meta_verify(meta, repair_meta, meta_problem, f, &mp, meta_fixed);
		meta_close(meta);
	}
	return rc;
}

/* Fetches key from the first peer with a good copy and writes it back. */
static bool fetch(struct fsck *f, struct mc_conn **peers, int npeers, const char *key)
{
	size_t klen = strlen(key);

	for (int i = 0; i < npeers; i++) {
		struct store_meta m;
		void *val;
		size_t vlen;
		if (!peers[i] || mc_xget(peers[i], key, klen, &val, &vlen, &m) != 0)
			continue;
		bool good = m.tombstone || XXH3_64bits(val, vlen) == m.value_hash;
		uint8_t id[META_CHUNK_KEY];
		char want[FS_CHUNK_KEY_LEN + 1];
		if (good && !m.tombstone && klen == FS_CHUNK_KEY_LEN && key[0] == 'c') {
			fs_chunk_id(val, vlen, id); /* a chunk's name is its content's hash */
			fs_chunk_key(id, want);
			good = strcmp(want, key) == 0;
		}
		int rc = good ? store_repair_attr(f->store, key, klen, val, vlen, &m.version,
						  m.tombstone, &m.attr)
			      : -EBADMSG;
		free(val);
		if (rc >= 0) {
			printf("repaired: %s from %s\n", key, mc_addr(peers[i]));
			return true;
		}
	}
	printf("cannot repair %s: no peer holds a good copy\n", key);
	return false;
}

int cli_fsck(const struct fsck_args *a)
{
	struct fsck f = { 0 };
	uint64_t meta_fixed = 0;
	int rc = check(&f, a->data_dir, false, &meta_fixed);

	if (rc < 0) {
		store_close(f.store);
		if (rc != -EBUSY)
			fprintf(stderr, "caskfs fsck: %s: %s\n", a->data_dir, strerror(-rc));
		return CLI_IO;
	}
	printf("fsck %s: %" PRIu64 " records, %" PRIu64 " inodes, %" PRIu64
	       " chunk references: %s (%" PRIu64 " problems)\n",
	       a->data_dir, f.records, f.inodes, f.chunks, f.problems ? "NOT CLEAN" : "clean",
	       f.problems);
	if (f.elsewhere)
		printf("  %" PRIu64 " chunk references are to buckets other nodes hold (by "
		       "DATA_DIR/cluster.map): checked there\n",
		       f.elsewhere);
	if (!f.problems || !a->repair) {
		store_close(f.store);
		free(f.bad_keys.k);
		free(f.owned);
		return f.problems ? CLI_MISSING : CLI_OK;
	}

	/* ---- repair ---- */
	struct mc_conn *peers[MAX_PEERS] = { NULL };
	int npeers = 0;
	struct auth_key key;
	char err[512];
	if (a->secret_file && auth_load(a->secret_file, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs fsck: %s\n", err);
		store_close(f.store);
		return CLI_USAGE;
	}
	for (const char *s = a->peers; s && *s && npeers < MAX_PEERS;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		char addr[300];
		snprintf(addr, sizeof(addr), "%.*s", (int)len, s);
		if (len && mc_connect(addr, a->secret_file ? &key : NULL, 2000, 30000,
				      &peers[npeers]) == 0)
			npeers++;
		else if (len)
			printf("peer %s is unreachable\n", addr);
		s += len + (comma ? 1 : 0);
	}
	size_t fetched = 0;
	for (size_t i = 0; i < f.bad_keys.n; i++)
		fetched += fetch(&f, peers, npeers, f.bad_keys.k[i]);
	for (int i = 0; i < npeers; i++)
		mc_close(peers[i]);
	/* the damaged records are superseded now; compaction leaves them behind */
	if (fetched && (rc = store_roll(f.store)) == 0 && (rc = store_compact(f.store, true)) >= 0)
		printf("repaired: damaged records compacted away (%d segments rewritten)\n", rc);
	store_close(f.store);
	f.store = NULL;
	/* hints that disagree are rebuilt from their segment at the next open */
	for (int i = 0; i < f.nbad_hints; i++) {
		char path[4300];
		snprintf(path, sizeof(path), "%s/log/%06u.hint", a->data_dir, f.bad_hints[i]);
		if (unlink(path) == 0 || errno == ENOENT)
			printf("repaired: hint of segment %06u rebuilt from the segment\n",
			       f.bad_hints[i]);
	}
	/* the namespace's own repairs, then everything once more */
	struct fsck g = { 0 };
	rc = check(&g, a->data_dir, true, &meta_fixed);
	store_close(g.store);
	if (meta_fixed)
		printf("repaired: %" PRIu64 " namespace problems (link counts, orphans to "
		       "/lost+found)\n",
		       meta_fixed);
	struct fsck h = { 0 };
	if (rc == 0)
		rc = check(&h, a->data_dir, false, &meta_fixed);
	store_close(h.store);
	free(f.bad_keys.k);
	free(f.owned);
	free(g.bad_keys.k);
	free(h.bad_keys.k);
	if (rc < 0) {
		fprintf(stderr, "caskfs fsck: %s: %s\n", a->data_dir, strerror(-rc));
		return CLI_IO;
	}
	printf("after repair: %s (%" PRIu64 " problems)\n", h.problems ? "NOT CLEAN" : "clean",
	       h.problems);
	return h.problems ? CLI_MISSING : CLI_OK;
}
