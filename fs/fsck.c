/*
 * fsck - `caskfs fsck DATA_DIR`: checks a node's data without changing it.
 * Every record of every segment against its checksum, then every inode of the
 * namespace: each chunk it names must be in the store with the length the
 * grid says, and the grid must fit the file's size. One line per problem;
 * exit 0 only when clean. (Repairs, hints and link counts: issue 7.)
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "chunk_i.h"
#include "cli_i.h"

struct fsck {
	struct store *store;
	uint64_t problems, inodes, chunks;
};

static void store_problem(void *arg, uint32_t segment, uint64_t offset, const char *what)
{
	struct fsck *f = arg;

	f->problems++;
	printf("segment %06u offset %" PRIu64 ": %s\n", segment, offset, what);
}

static int check_inode(void *arg, const struct meta_inode *in)
{
	struct fsck *f = arg;
	uint32_t slots = meta_grid_slots(in->size);

	f->inodes++;
	if (!S_ISREG(in->mode))
		return 0;
	if (in->nchunks != slots) {
		f->problems++;
		printf("inode %" PRIu64 ": %u chunk slots for %" PRIu64 " bytes (want %u)\n",
		       in->ino, in->nchunks, in->size, slots);
	}
	for (uint32_t i = 0; i < in->nchunks; i++) {
		char key[FS_CHUNK_KEY_LEN + 1];
		struct store_meta m;
		int rc;

		if (fs_chunk_is_hole(in->chunks[i].key))
			continue;
		f->chunks++;
		fs_chunk_key(in->chunks[i].key, key);
		rc = store_stat(f->store, key, FS_CHUNK_KEY_LEN, &m);
		if (rc == -ENOENT) {
			f->problems++;
			printf("inode %" PRIu64 ": chunk %u (%s) is missing\n", in->ino, i, key);
		} else if (rc < 0) {
			f->problems++;
			printf("inode %" PRIu64 ": chunk %u (%s) cannot be read: %s\n", in->ino, i,
			       key, strerror(-rc));
		} else if (m.size < in->chunks[i].len) {
			f->problems++;
			printf("inode %" PRIu64
			       ": chunk %u (%s) holds %u bytes, the grid says %u\n",
			       in->ino, i, key, m.size, in->chunks[i].len);
		}
	}
	return 0;
}

int cli_fsck(const char *data_dir)
{
	struct store_options o;
	struct fsck f = { 0 };
	struct meta *meta = NULL;
	uint64_t records = 0, bad = 0;
	int rc;

	store_options_init(&o);
	o.no_background = true;
	rc = store_open(data_dir, &o, &f.store);
	if (rc < 0) {
		if (rc != -EBUSY)
			fprintf(stderr, "caskfs fsck: cannot open %s: %s\n", data_dir,
				strerror(-rc));
		return CLI_IO;
	}
	rc = store_verify(f.store, store_problem, &f, &records, &bad);
	if (rc == 0)
		rc = meta_open(data_dir, o.node_id, store_clock(f.store), &meta);
	if (rc == 0)
		rc = meta_scan_inodes(meta, check_inode, &f);
	meta_close(meta);
	store_close(f.store);
	if (rc < 0) {
		fprintf(stderr, "caskfs fsck: %s: %s\n", data_dir, strerror(-rc));
		return CLI_IO;
	}
	printf("fsck %s: %" PRIu64 " records, %" PRIu64 " inodes, %" PRIu64
	       " chunk references: %s (%" PRIu64 " problems)\n",
	       data_dir, records, f.inodes, f.chunks, f.problems ? "NOT CLEAN" : "clean",
	       f.problems);
	return f.problems ? CLI_MISSING : CLI_OK;
}
