/*
 * fuzz_store_open - libFuzzer harness for everything that decodes untrusted
 * bytes at open: the segment scan (record headers, lengths, checksums, the
 * torn-tail cut) and hint files. The first input byte picks the mode:
 *   even: the rest is the body of the active segment (after a valid header);
 *   odd:  the next two bytes give a split; the rest is the body of sealed
 *         segment 1 and the bytes of its hint file.
 * Each input opens a store, lists and reads every key, and closes it; the
 * sanitizers catch any out-of-bounds read, leak or undefined behaviour.
 * Run: make fuzz (FUZZ_SECONDS=N).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

static char dir[256], logdir[300];

static void quiet(void *arg, enum store_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

static void put_file(const char *name, const uint8_t *head, size_t hlen, const uint8_t *body,
		     size_t blen)
{
	char path[400];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", logdir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		abort();
	if ((hlen && write(fd, head, hlen) != (ssize_t)hlen) ||
	    (blen && write(fd, body, blen) != (ssize_t)blen))
		abort();
	close(fd);
}

static int read_each(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	struct store *s = arg;
	struct store_meta st;
	void *v;
	size_t vl;

	(void)m;
	if (store_get(s, key, klen, &v, &vl, NULL) == 0)
		free(v);
	store_stat(s, key, klen, &st);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t seg1[16] = { 'C', 'A', 'S', 'K', 'S', 'E', 'G', 0,
					  1,   0,   0,	 0,   1,   0,	0,   0 };
	static const uint8_t seg2[16] = { 'C', 'A', 'S', 'K', 'S', 'E', 'G', 0,
					  1,   0,   0,	 0,   2,   0,	0,   0 };
	struct store_options o;
	struct store *s;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/dev/shm/caskfs-fuzz-%d", (int)getpid());
		snprintf(logdir, sizeof(logdir), "%s/log", dir);
		mkdir(dir, 0755);
		mkdir(logdir, 0755);
	}
	if (size < 1)
		return 0;
	uint8_t h1[16], h2[16];
	memcpy(h1, seg1, sizeof(h1));
	memcpy(h2, seg2, sizeof(h2));
	h1[8] = h2[8] = data[0] & 2 ? 2 : 1;
	if (data[0] % 2 == 0) {
		put_file("000001.cask", h1, sizeof(h1), data + 1, size - 1);
	} else {
		if (size < 3)
			return 0;
		size_t split = ((size_t)data[1] << 8 | data[2]) % (size - 2);
		put_file("000001.cask", h1, sizeof(h1), data + 3, split);
		put_file("000001.hint", NULL, 0, data + 3 + split, size - 3 - split);
		put_file("000002.cask", h2, sizeof(h2), NULL, 0);
	}
	store_options_init(&o);
	o.no_background = true;
	o.sync = STORE_SYNC_NONE;
	o.log = quiet;
	if (store_open(dir, &o, &s) == 0) {
		store_scan(s, "", 0, true, read_each, s);
		store_put(s, "after", 5, "x", 1, NULL);
		store_expire(s);
		store_close(s);
	}
	DIR *d = opendir(logdir);
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	return 0;
}
