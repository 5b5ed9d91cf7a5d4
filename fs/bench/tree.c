/*
 * tree - the workloads of `caskfs bench` that copy trees: a media tree
 * (photos, audio, text) copied with cp -r and rsync -a; the same photo tree
 * copied twice, the deduplication workload, whose second copy should cost
 * caskfs only metadata; and a tree of many small files (by default
 * /usr/include and /usr/share/doc) rsync'ed in, then walked with find + du
 * cold and warm, with the FUSE requests it took counted per file. Sources
 * are prepared on the native disk once per round, with new bytes each round
 * (data.c), so a round never finds the chunks of the last one.
 */
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_i.h"
#include "store/node/client.h"

#define MIB (1u << 20)

static int make_dirs(const char *root, const char *const *dirs, size_t n)
{
	char path[2 * SUB_MAX];

	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		return -errno;
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", root, dirs[i]);
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

/* Photo-like files of 20 KiB to 3 MiB at root/photos/{2023,2024} until
 * they hold about bytes: 0 or -errno. */
static int make_photos(const char *root, struct fs_bench_rng *rng, size_t bytes)
{
	static const char *const dirs[] = { "photos", "photos/2023", "photos/2024" };
	char path[2 * SUB_MAX];
	uint8_t *buf = malloc(3 * MIB);
	int rc = make_dirs(root, dirs, 3);

	if (!buf)
		return -ENOMEM;
	for (int i = 0; rc == 0 && bytes > 0; i++) {
		size_t size = 20480 + fs_bench_rng_next(rng) % (3 * MIB - 20480);
		if (size > bytes)
			size = bytes < 20480 ? 20480 : bytes;
		fs_bench_fill(rng, buf, size);
		snprintf(path, sizeof(path), "%s/photos/%s/img%04d.jpg", root,
			 i % 2 ? "2023" : "2024", i);
		rc = fs_bench_write_file(path, buf, size, size, false);
		bytes -= size < bytes ? size : bytes;
	}
	free(buf);
	return rc;
}

/* A media tree of about bytes at root: photos (60%), audio files of 8 MiB
 * (20%), compressible text of 100 B to 100 KiB in comments/ (20%). */
static int make_media(const char *root, struct fs_bench_rng *rng, size_t bytes)
{
	static const char *const dirs[] = { "audio", "text", "text/comments" };
	char path[2 * SUB_MAX];
	size_t audio = bytes / 5, text = bytes / 5;
	uint8_t *buf = malloc(8 * MIB);
	int rc = make_dirs(root, dirs, 3);

	if (!buf)
		return -ENOMEM;
	if (rc == 0)
		rc = make_photos(root, rng, bytes - audio - text);
	for (int i = 0; rc == 0 && audio > 0; i++) {
		size_t size = audio < 8 * MIB ? audio : 8 * MIB;
		fs_bench_fill(rng, buf, size);
		snprintf(path, sizeof(path), "%s/audio/track%d.ogg", root, i);
		rc = fs_bench_write_file(path, buf, size, size, false);
		audio -= size;
	}
	for (int i = 0; rc == 0 && text > 0; i++) {
		size_t size = 100 + fs_bench_rng_next(rng) % 102300;
		if (size > text)
			size = text;
		fs_bench_fill_text(rng, (char *)buf, size);
		snprintf(path, sizeof(path), "%s/text/comments/c%05d.txt", root, i);
		rc = fs_bench_write_file(path, buf, size, size, false);
		text -= size;
	}
	free(buf);
	return rc;
}

static size_t tree_bytes(const struct bench_args *a)
{
	size_t b = a->seq_bytes / 2;
	return b > 128 * MIB ? 128 * MIB : b < MIB ? MIB : b;
}

/* ---- media: cp -r and rsync -a ---- */

int fs_bench_media_prepare(const struct bench_args *a, const char *work, uint64_t seed)
{
	char src[SUB_MAX];
	struct fs_bench_rng rng;

	snprintf(src, sizeof(src), "%s/media", work);
	fs_bench_rm_rf(src);
	fs_bench_rng_seed(&rng, seed);
	return make_media(src, &rng, tree_bytes(a));
}

/* Seconds argv takes after dropping the caches, or -1. */
static double timed(char *const argv[], bool drop)
{
	if (drop)
		fs_bench_drop_caches();
	double t = fs_now_seconds();
	if (fs_bench_run(argv, NULL, 0) != 0)
		return -1;
	return fs_now_seconds() - t;
}

/* figures: seconds of cp -r, of rsync -a (each after dropping the caches) */
int fs_bench_media(const struct bench_place *p, double *out)
{
	char src[SUB_MAX], srcs[SUB_MAX], cp_dst[SUB_MAX], rs_dst[SUB_MAX];
	char *cp[] = { "cp", "-r", src, cp_dst, NULL };
	char *rsync[] = { "rsync", "-a", srcs, rs_dst, NULL };

	snprintf(src, sizeof(src), "%s/media", p->work);
	snprintf(srcs, sizeof(srcs), "%s/media/", p->work);
	snprintf(cp_dst, sizeof(cp_dst), "%s/cp", p->dir);
	snprintf(rs_dst, sizeof(rs_dst), "%s/rsync/", p->dir);
	if ((out[0] = timed(cp, true)) < 0 || (out[1] = timed(rsync, true)) < 0)
		return -EIO;
	return 0;
}

/* ---- dedup: the same photo tree twice ---- */

int fs_bench_dedup_prepare(const struct bench_args *a, const char *work, uint64_t seed)
{
	char src[SUB_MAX];
	struct fs_bench_rng rng;

	snprintf(src, sizeof(src), "%s/photos", work);
	fs_bench_rm_rf(src);
	fs_bench_rng_seed(&rng, seed);
	return make_photos(src, &rng, tree_bytes(a) / 2);
}

/* Bytes of the log segments of DATA_DIR dir. */
static uint64_t log_bytes(const char *dir)
{
	char pattern[SUB_MAX];
	uint64_t total = 0;
	struct stat st;
	glob_t g;

	snprintf(pattern, sizeof(pattern), "%s/log/*.cask", dir);
	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++)
		if (stat(g.gl_pathv[i], &st) == 0)
			total += (uint64_t)st.st_size;
	globfree(&g);
	return total;
}

static uint64_t tree_size;
static int sum_size(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path;
	(void)f;
	if (type == FTW_F)
		tree_size += (uint64_t)st->st_size;
	return 0;
}

/* figures: seconds of the second cp -r of the photo tree (the first is
 * not timed); the log's growth for it is noted on the caskfs mount */
int fs_bench_dedup(const struct bench_place *p, double *out)
{
	char src[SUB_MAX], first[SUB_MAX], second[SUB_MAX];
	char *cp1[] = { "cp", "-r", src, first, NULL };
	char *cp2[] = { "cp", "-r", src, second, NULL };
	uint64_t before = 0;

	snprintf(src, sizeof(src), "%s/photos", p->work);
	snprintf(first, sizeof(first), "%s/first", p->dir);
	snprintf(second, sizeof(second), "%s/second", p->dir);
	if (fs_bench_run(cp1, NULL, 0) != 0)
		return -EIO;
	fs_bench_drop_caches();
	/* the first copy committed (a moment after its last write, 1 s at most) */
	if (p->target == T_CASKFS) {
		sleep(2);
		before = log_bytes(p->data_dir);
	}
	if ((out[0] = timed(cp2, false)) < 0)
		return -EIO;
	if (p->target == T_CASKFS) {
		sleep(2);
		p->note->stored_bytes += log_bytes(p->data_dir) - before;
		tree_size = 0;
		nftw(src, sum_size, 16, FTW_PHYS);
		p->note->data_bytes += tree_size;
	}
	return 0;
}

/* ---- a tree of small files: rsync, find + du ---- */

static uint64_t tree_files;
static int count_file(const char *path, const struct stat *st, int type, struct FTW *f)
{
	(void)path;
	(void)f;
	if (type == FTW_F && S_ISREG(st->st_mode))
		tree_files++;
	return 0;
}

/* Regular files under the comma-separated list of directories. */
static uint64_t count_files(const char *list)
{
	char buf[SUB_MAX], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	tree_files = 0;
	for (char *d = strtok_r(buf, ",", &save); d; d = strtok_r(NULL, ",", &save))
		nftw(d, count_file, 16, FTW_PHYS);
	return tree_files;
}

static int stats_line(void *arg, const char *line, size_t len)
{
	uint64_t *out = arg;
	char name[128];
	unsigned long long v;

	(void)len;
	if (sscanf(line, "STAT caskfs_fuse_%127s %llu", name, &v) != 2)
		return 0;
	for (unsigned op = 0; op < FS_OPCODES; op++) {
		const char *n = fs_opcode_name(op);
		if (n && strcmp(n, name) == 0)
			out[op] = v;
	}
	return 0;
}

/* The FUSE requests served so far where p runs, by opcode: whether they
 * could be read (natively there are none to read). */
static bool requests(const struct bench_place *p, uint64_t out[FS_OPCODES])
{
	char addr[SUB_MAX];
	struct mc_conn *c;
	bool ok = false;

	memset(out, 0, FS_OPCODES * sizeof(*out));
	if (p->target == T_FLOOR && p->floor_requests) {
		for (int op = 0; op < FS_OPCODES; op++)
			out[op] = atomic_load(&p->floor_requests[op]);
		ok = true;
	} else if (p->target == T_CASKFS && node_control_addr(p->data_dir, addr, sizeof(addr)) &&
		   mc_connect(addr, NULL, 5000, 30000, &c) == 0) {
		ok = mc_lines(c, "stats", stats_line, out) == 0;
		mc_close(c);
	}
	return ok;
}

/* figures: seconds of rsync -a of the tree (after dropping the caches),
 * of find + du of the copy cold (after dropping them again) and warm */
int fs_bench_tree(const struct bench_place *p, double *out)
{
	char dst[SUB_MAX], list[SUB_MAX], *save = NULL;
	char *rsync[16] = { "rsync", "-a" };
	char *find[] = { "find", dst, NULL };
	char *du[] = { "du", "-s", dst, NULL };
	uint64_t before[FS_OPCODES], after[FS_OPCODES];
	int n = 2;

	snprintf(dst, sizeof(dst), "%s/", p->dir);
	snprintf(list, sizeof(list), "%s", p->a->tree);
	for (char *d = strtok_r(list, ",", &save); d && n < 14; d = strtok_r(NULL, ",", &save))
		rsync[n++] = d;
	rsync[n++] = dst;
	rsync[n] = NULL;
	uint64_t files = count_files(p->a->tree);
	fs_bench_drop_caches();
	bool counted = requests(p, before);
	if ((out[0] = timed(rsync, false)) < 0)
		return -EIO;
	if (counted && requests(p, after)) {
		for (int op = 0; op < FS_OPCODES; op++)
			p->note->requests[p->target][op] += after[op] - before[op];
		p->note->files[p->target] += files;
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			fs_bench_drop_caches();
		double t = fs_now_seconds();
		if (fs_bench_run(find, NULL, 0) != 0 || fs_bench_run(du, NULL, 0) != 0)
			return -EIO;
		out[1 + pass] = fs_now_seconds() - t;
	}
	return 0;
}
