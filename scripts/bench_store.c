/*
 * bench_store - the store against LMDB, RocksDB (when built with HAVE_ROCKSDB)
 * and a raw sequential file write, in one run on one disk. Puts then random
 * gets of 1 KiB, 16 KiB, 256 KiB and 1 MiB values (one sync at the end for
 * every engine); durable puts, each fsynced before it returns; then the open
 * time of a store of 1 million objects and the keydir's memory per object. Prints ratios
 * against the references measured in the same run; never pass/fail.
 * Run through scripts/bench-store; results go into docs/BENCHMARKS.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

#include "store/store.h"

#define POOL_SIZE (64u << 20)
#define ROUNDS 3

static uint8_t *pool;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

/* Value i of size v: a slice of the random pool (incompressible, like photos). */
static const uint8_t *value(size_t i, size_t v)
{
	return pool + (i * 7919u * 64u) % (POOL_SIZE - v);
}

static int key(char *buf, size_t i)
{
	return sprintf(buf, "obj/%012zu", i);
}

static void rm_rf(const char *path)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		fprintf(stderr, "bench: cannot remove %s\n", path);
	/* The disk is mounted with discard: let the deletion's trims finish now,
	 * not inside the next engine's fsync. */
	sync();
}

struct result {
	double put_s, get_s;
	size_t gets;
};

static size_t gets_for(size_t n)
{
	return n < 20000 ? 20000 : n;
}

static double raw_write(const char *dir, size_t n, size_t v)
{
	char path[4096];
	double t0;
	int fd;

	snprintf(path, sizeof(path), "%s/raw.bin", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		if (write(fd, value(i, v), v) != (ssize_t)v) {
			perror("raw write");
			exit(1);
		}
	}
	fsync(fd);
	double t = now() - t0;
	close(fd);
	unlink(path);
	sync();
	return t;
}

static struct result bench_store(const char *dir, size_t n, size_t v)
{
	struct store_options o;
	struct store *s;
	struct result r = { 0 };
	char path[4096], k[64];
	uint64_t rng = 1;
	uint8_t *out = malloc(v);

	snprintf(path, sizeof(path), "%s/store", dir);
	store_options_init(&o);
	o.sync = STORE_SYNC_NONE;
	o.no_background = true;
	if (store_open(path, &o, &s) != 0)
		exit(1);
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		int kl = key(k, i);
		if (store_put(s, k, (size_t)kl, value(i, v), v, NULL) != 0) {
			fprintf(stderr, "store put failed\n");
			exit(1);
		}
	}
	store_sync(s);
	r.put_s = now() - t0;
	r.gets = gets_for(n);
	t0 = now();
	for (size_t g = 0; g < r.gets; g++) {
		size_t vl;
		int kl = key(k, rnd(&rng) % n);
		if (store_read(s, k, (size_t)kl, out, v, &vl, NULL) != 0 || vl != v) {
			fprintf(stderr, "store get failed\n");
			exit(1);
		}
	}
	r.get_s = now() - t0;
	store_close(s);
	free(out);
	rm_rf(path);
	return r;
}

static void lmdb_check(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "lmdb %s: %s\n", what, mdb_strerror(rc));
		exit(1);
	}
}

static struct result bench_lmdb(const char *dir, size_t n, size_t v)
{
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	struct result r = { 0 };
	char path[4096], k[64];
	uint64_t rng = 1;
	uint8_t *out = malloc(v);

	snprintf(path, sizeof(path), "%s/lmdb", dir);
	mkdir(path, 0755);
	lmdb_check(mdb_env_create(&env), "create");
	lmdb_check(mdb_env_set_mapsize(env, (size_t)n * (v + 4096) * 2 + (64u << 20)), "mapsize");
	lmdb_check(mdb_env_open(env, path, MDB_NOSYNC, 0644), "open");
	lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi");
	lmdb_check(mdb_txn_commit(txn), "commit");
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		int kl = key(k, i);
		MDB_val mk = { (size_t)kl, k }, mv = { v, (void *)value(i, v) };
		lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "begin");
		lmdb_check(mdb_put(txn, dbi, &mk, &mv, 0), "put");
		lmdb_check(mdb_txn_commit(txn), "commit");
	}
	lmdb_check(mdb_env_sync(env, 1), "sync");
	r.put_s = now() - t0;
	r.gets = gets_for(n);
	t0 = now();
	for (size_t g = 0; g < r.gets; g++) {
		int kl = key(k, rnd(&rng) % n);
		MDB_val mk = { (size_t)kl, k }, mv;
		lmdb_check(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), "begin");
		lmdb_check(mdb_get(txn, dbi, &mk, &mv), "get");
		memcpy(out, mv.mv_data, mv.mv_size);
		mdb_txn_abort(txn);
	}
	r.get_s = now() - t0;
	mdb_env_close(env);
	free(out);
	rm_rf(path);
	return r;
}

#ifdef HAVE_ROCKSDB
static struct result bench_rocksdb(const char *dir, size_t n, size_t v)
{
	struct result r = { 0 };
	char path[4096], k[64], *err = NULL;
	uint64_t rng = 1;
	rocksdb_options_t *opt = rocksdb_options_create();
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();

	snprintf(path, sizeof(path), "%s/rocksdb", dir);
	rocksdb_options_set_create_if_missing(opt, 1);
	rocksdb_options_increase_parallelism(opt, 2);
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_t *db = rocksdb_open(opt, path, &err);
	if (err) {
		fprintf(stderr, "rocksdb open: %s\n", err);
		exit(1);
	}
	double t0 = now();
	for (size_t i = 0; i < n; i++) {
		int kl = key(k, i);
		rocksdb_put(db, wo, k, (size_t)kl, (const char *)value(i, v), v, &err);
		if (err) {
			fprintf(stderr, "rocksdb put: %s\n", err);
			exit(1);
		}
	}
	rocksdb_flush(db, fo, &err); /* one sync at the end, like the others */
	r.put_s = now() - t0;
	r.gets = gets_for(n);
	t0 = now();
	for (size_t g = 0; g < r.gets; g++) {
		size_t vl;
		int kl = key(k, rnd(&rng) % n);
		char *val = rocksdb_get(db, ro, k, (size_t)kl, &vl, &err);
		if (err || !val || vl != v) {
			fprintf(stderr, "rocksdb get failed\n");
			exit(1);
		}
		rocksdb_free(val);
	}
	r.get_s = now() - t0;
	rocksdb_close(db);
	rocksdb_options_destroy(opt);
	rocksdb_writeoptions_destroy(wo);
	rocksdb_readoptions_destroy(ro);
	rocksdb_flushoptions_destroy(fo);
	rm_rf(path);
	return r;
}
#endif

/*
 * Durable puts: each acknowledged only once on disk. The store in `always`
 * mode (one fsync per put, shared between concurrent puts) against LMDB as it
 * runs by default (a synchronous commit per transaction).
 */
static void bench_durable(const char *dir, size_t count, size_t v)
{
	struct store_options o;
	struct store *s;
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	char path[4096], k[64];
	double t0, ts, tl;

	snprintf(path, sizeof(path), "%s/durable-store", dir);
	store_options_init(&o);
	o.sync = STORE_SYNC_ALWAYS;
	o.no_background = true;
	if (store_open(path, &o, &s) != 0)
		exit(1);
	t0 = now();
	for (size_t i = 0; i < count; i++) {
		int kl = key(k, i);
		if (store_put(s, k, (size_t)kl, value(i, v), v, NULL) != 0)
			exit(1);
	}
	ts = now() - t0;
	store_close(s);
	rm_rf(path);

	snprintf(path, sizeof(path), "%s/durable-lmdb", dir);
	mkdir(path, 0755);
	lmdb_check(mdb_env_create(&env), "create");
	lmdb_check(mdb_env_set_mapsize(env, count * (v + 4096) * 2 + (64u << 20)), "mapsize");
	lmdb_check(mdb_env_open(env, path, 0, 0644), "open");
	lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &dbi), "dbi");
	lmdb_check(mdb_txn_commit(txn), "commit");
	t0 = now();
	for (size_t i = 0; i < count; i++) {
		int kl = key(k, i);
		MDB_val mk = { (size_t)kl, k }, mv = { v, (void *)value(i, v) };
		lmdb_check(mdb_txn_begin(env, NULL, 0, &txn), "begin");
		lmdb_check(mdb_put(txn, dbi, &mk, &mv, 0), "put");
		lmdb_check(mdb_txn_commit(txn), "commit");
	}
	tl = now() - t0;
	mdb_env_close(env);
	rm_rf(path);
	printf(
	    "durable %-8zu caskfs(always) %8.0f put/s   lmdb(default) %8.0f put/s   ratio %5.2f\n",
	    v, (double)count / ts, (double)count / tl, tl / ts);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

static void bench_open(const char *dir, size_t objects)
{
	struct store_options o;
	struct store *s;
	struct store_stats st;
	char path[4096], k[64];
	uint8_t val[32];
	double best = 1e9;

	snprintf(path, sizeof(path), "%s/open", dir);
	store_options_init(&o);
	o.sync = STORE_SYNC_NONE;
	o.no_background = true;
	o.segment_size = 16u << 20;
	if (store_open(path, &o, &s) != 0)
		exit(1);
	for (size_t i = 0; i < objects; i++) {
		int kl = key(k, i);
		memcpy(val, value(i, sizeof(val)), sizeof(val));
		if (store_put(s, k, (size_t)kl, val, sizeof(val), NULL) != 0)
			exit(1);
	}
	store_close(s);
	sync();
	for (int rep = 0; rep < 3; rep++) {
		long before = rss_kib();
		double t0 = now();
		if (store_open(path, &o, &s) != 0)
			exit(1);
		double t = now() - t0;
		long after = rss_kib();
		store_stats(s, &st);
		if (t < best)
			best = t;
		if (rep == 0) {
			printf("open:  %zu objects (keys of %d bytes, %" PRIu64 " segments): ",
			       objects, key(k, 0), st.segments);
			printf("keydir %.1f bytes/object (%.1f + key); process RSS grew %.1f "
			       "bytes/object\n",
			       (double)st.keydir_bytes / (double)st.keys,
			       (double)st.keydir_bytes / (double)st.keys - key(k, 0),
			       (double)(after - before) * 1024.0 / (double)st.keys);
		}
		store_close(s);
	}
	printf("open:  best of 3 opens from hint files: %.3f s\n", best);
	rm_rf(path);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/tmp/caskfs-bench";
	size_t total = argc > 2 ? strtoull(argv[2], NULL, 10) << 20 : (size_t)2 << 30;
	size_t open_objects = argc > 3 ? strtoull(argv[3], NULL, 10) : 1000000;
	static const size_t sizes[] = { 1024, 16384, 262144, 1048576 };
	uint64_t rng = 42;

	pool = malloc(POOL_SIZE);
	for (size_t i = 0; i < POOL_SIZE / 8; i++) {
		uint64_t x = rnd(&rng);
		memcpy(pool + i * 8, &x, 8);
	}
	mkdir(dir, 0755);
	printf("bench-store: %s, %zu MiB per value size, %zu MiB in all per engine; "
	       "best of %d rounds\n",
	       dir, total / 4 >> 20, total >> 20, ROUNDS);
	printf("%-8s %-8s %10s %10s %10s %8s %8s %10s %10s %8s\n", "value", "engine", "put MB/s",
	       "put op/s", "get op/s", "put/raw", "put/lmdb", "get MB/s", "", "get/lmdb");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t v = sizes[si], n = total / 4 / v;
		double mb = (double)n * (double)v / 1e6, raw = 1e30;
		struct {
			const char *name;
			struct result r;
		} rows[3] = { { "caskfs", { 1e30, 1e30, 0 } },
			      { "lmdb", { 1e30, 1e30, 0 } },
			      { "rocksdb", { 1e30, 1e30, 0 } } };
		int nrows = 2;
#ifdef HAVE_ROCKSDB
		nrows = 3;
#endif
		/* The disk's speed drifts: rotate the order, keep each engine's best. */
		for (int round = 0; round < ROUNDS; round++) {
			for (int j = 0; j <= nrows; j++) {
				int e = (j + round) % (nrows + 1);
				struct result r;

				if (e == nrows) {
					double t = raw_write(dir, n, v);
					raw = t < raw ? t : raw;
					continue;
				}
				r = e == 0 ? bench_store(dir, n, v) : bench_lmdb(dir, n, v);
#ifdef HAVE_ROCKSDB
				if (e == 2)
					r = bench_rocksdb(dir, n, v);
#endif
				if (r.put_s < rows[e].r.put_s)
					rows[e].r.put_s = r.put_s;
				if (r.get_s < rows[e].r.get_s)
					rows[e].r.get_s = r.get_s;
				rows[e].r.gets = r.gets;
			}
		}
		struct result rl = rows[1].r;
		printf("%-8zu %-8s %10.0f\n", v, "raw", mb / raw);
		for (int i = 0; i < nrows; i++) {
			struct result r = rows[i].r;
			printf("%-8zu %-8s %10.0f %10.0f %10.0f %8.2f %8.2f %10.0f %10s %8.2f\n", v,
			       rows[i].name, mb / r.put_s, (double)n / r.put_s,
			       (double)r.gets / r.get_s, (mb / r.put_s) / (mb / raw),
			       rl.put_s / r.put_s, (double)r.gets * (double)v / 1e6 / r.get_s, "",
			       ((double)r.gets / r.get_s) / ((double)rl.gets / rl.get_s));
		}
		fflush(stdout);
	}
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
		bench_durable(dir, 2000, sizes[si]);
	bench_open(dir, open_objects);
	rm_rf(dir);
	free(pool);
	return 0;
}
