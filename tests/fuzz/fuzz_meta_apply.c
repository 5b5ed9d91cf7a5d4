/*
 * fuzz_meta_apply - libFuzzer harness for the namespace records a peer sends
 * (`mput`, docs/PROTOCOL.md): the input is split into records as the mount
 * splits an mput's data (le32 length, wire record) and each is applied to one
 * namespace that lives for the whole run, so records meet earlier ones
 * (entries of missing directories, tombstones, rescues into lost+found). The
 * sanitizers catch any out-of-bounds read or undefined behaviour in the
 * decoders and in meta_apply; the namespace must stay readable throughout.
 * Run: make fuzz (FUZZ_SECONDS=N); make test runs it briefly.
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meta/meta.h"
#include "store/endian.h"

static struct meta *m;
static struct store_clock clock_;
static char dir[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* The namespace of the run goes with the process. */
static void cleanup(void)
{
	meta_close(m);
	m = NULL;
	nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count(void *arg, const char *name, uint64_t ino, uint32_t type, uint64_t next_pos)
{
	(void)ino;
	(void)next_pos;
	(void)name;
	(void)type;
	(*(int *)arg)++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!m) {
		snprintf(dir, sizeof(dir), "/tmp/fuzz-meta-%d", (int)getpid());
		if ((mkdir(dir, 0700) < 0 && errno != EEXIST) || meta_open(dir, 3, &clock_, &m) < 0)
			abort();
		atexit(cleanup);
	}
	const uint8_t *p = data, *end = data + size;
	while (end - p >= 4) {
		uint32_t len = get_le32(p);
		if (len > (size_t)(end - p - 4))
			break;
		struct meta_change chg;
		uint8_t *copy = malloc(len ? len : 1); /* exact size: over-reads are caught */
		memcpy(copy, p + 4, len);
		int rc = meta_apply(m, copy, len, &chg);
		free(copy);
		if (rc < -200 || rc > 1)
			abort();
		p += 4 + len;
	}
	int n = 0;
	struct store_tree_node self, kids[16];
	if (meta_readdir(m, META_ROOT_INO, 0, count, &n) < 0 ||
	    meta_tree_children(m, NULL, 0, &self, kids) < 0)
		abort();
	return 0;
}
