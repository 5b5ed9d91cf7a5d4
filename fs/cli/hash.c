/*
 * hash - `caskfs hash FILE...`: the content hash of files anywhere (a local
 * disk, a backup), computed from their bytes the way a mount computes
 * user.caskfs.hash from its chunk map: each 1 MiB slot's chunk id, then
 * meta_content_hash. So scripts/tree-hash can compare a caskfs tree with
 * any other without reading the caskfs side. docs/FORMAT.md ("Content
 * hash").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_i.h"
#include "fs/daemon/chunk_i.h"

/* The content hash of the file at fd (st its stat), chunk by chunk, in
 * constant memory: each slot's id as a mount would store it, zeros left out
 * as the hash takes them. */
static int hash_fd(int fd, const struct stat *st, uint8_t *buf, uint8_t out[META_CONTENT_HASH])
{
	uint64_t size = (uint64_t)st->st_size, slots = (size + META_CHUNK_SIZE - 1) / META_CHUNK_SIZE;
	struct meta_content_hasher *h;
	uint8_t id[META_CHUNK_KEY];
	int rc = 0;

	if (size > META_FILE_MAX)
		return -EFBIG;
	if (!(h = meta_content_hash_begin(size)))
		return -ENOMEM;
	for (uint64_t i = 0; i < slots && rc == 0; i++) {
		size_t want = size - i * META_CHUNK_SIZE < META_CHUNK_SIZE
				  ? (size_t)(size - i * META_CHUNK_SIZE)
				  : META_CHUNK_SIZE;
		size_t got = 0;
		while (got < want) {
			ssize_t n = pread(fd, buf + got, want - got, (off_t)(i * META_CHUNK_SIZE + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = n < 0 ? -errno : -EIO; /* shrank under us */
				break;
			}
			got += (size_t)n;
		}
		fs_chunk_id(buf, want, id);
		if (rc == 0 && !meta_chunk_is_zero(id, (uint32_t)want))
			meta_content_hash_slot(h, (uint32_t)i, (uint32_t)want, id);
	}
	meta_content_hash_end(h, out);
	return rc;
}

int cli_hash(char **files, int n)
{
	uint8_t *buf = malloc(META_CHUNK_SIZE), h[META_CONTENT_HASH];
	int status = CLI_OK;

	if (!buf)
		return CLI_IO;
	for (int i = 0; i < n; i++) {
		struct stat st;
		int fd = open(files[i], O_RDONLY | O_CLOEXEC), rc;

		if (fd < 0 || fstat(fd, &st) < 0)
			rc = -errno;
		else
			rc = S_ISREG(st.st_mode) ? hash_fd(fd, &st, buf, h) : -EISDIR;
		if (fd >= 0)
			close(fd);
		if (rc < 0) {
			fprintf(stderr, "caskfs hash: %s: %s\n", files[i], strerror(-rc));
			status = rc == -ENOENT ? CLI_MISSING : CLI_IO;
			continue;
		}
		for (int k = 0; k < META_CONTENT_HASH; k++)
			printf("%02x", h[k]);
		printf("  %s\n", files[i]);
	}
	free(buf);
	return status;
}
