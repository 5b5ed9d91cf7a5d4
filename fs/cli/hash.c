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

/* The content hash of the file at fd (st its stat), chunk by chunk. */
static int hash_fd(int fd, const struct stat *st, uint8_t *buf, uint8_t out[META_CONTENT_HASH])
{
	struct meta_inode in = { .size = (uint64_t)st->st_size };
	int rc = 0;

	if (in.size > META_FILE_MAX)
		return -EFBIG;
	in.nchunks = meta_grid_slots(in.size);
	in.chunks = calloc(in.nchunks ? in.nchunks : 1, sizeof(*in.chunks));
	if (!in.chunks)
		return -ENOMEM;
	for (uint32_t i = 0; i < in.nchunks && rc == 0; i++) {
		size_t want = in.size - (uint64_t)i * META_CHUNK_SIZE < META_CHUNK_SIZE
				  ? (size_t)(in.size - (uint64_t)i * META_CHUNK_SIZE)
				  : META_CHUNK_SIZE;
		size_t got = 0;
		while (got < want) {
			ssize_t n = pread(fd, buf + got, want - got,
					  (off_t)((uint64_t)i * META_CHUNK_SIZE + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				rc = n < 0 ? -errno : -EIO; /* shrank under us */
				break;
			}
			got += (size_t)n;
		}
		fs_chunk_id(buf, want, in.chunks[i].key);
		in.chunks[i].len = (uint32_t)want;
	}
	if (rc == 0)
		meta_content_hash(&in, out);
	meta_inode_release(&in);
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
