/*
 * cli_i.h - the subcommands of the caskfs binary. fs/main.c parses argv and
 * calls these with parsed arguments; each returns the process exit status
 * (see docs/USAGE.md) and prints its own errors to stderr.
 */
#ifndef CASKFS_FS_CLI_I_H
#define CASKFS_FS_CLI_I_H

#include <stdbool.h>

#include "../store/store.h"

/* Exit statuses shared by the subcommands. */
enum cli_exit {
	CLI_OK = 0,
	CLI_MISSING = 1, /* the key (or file) does not exist */
	CLI_USAGE = 2,	 /* bad arguments */
	CLI_IO = 3,	 /* I/O error, DATA_DIR busy, out of memory */
	CLI_CORRUPT = 4, /* a record failed its checksum */
};

enum kv_op { KV_PUT, KV_GET, KV_DEL, KV_LS, KV_STAT };

struct kv_args {
	const char *target; /* DATA_DIR */
	enum kv_op op;
	const char *key;  /* NULL for ls without prefix and stat without key */
	const char *file; /* put: value file, NULL for stdin */
	struct store_options store;
};

int cli_kv(const struct kv_args *a);

struct mount_args {
	const char *data_dir;
	const char *mountpoint;
	bool foreground;
	const char *options;  /* extra -o options for FUSE, or NULL */
	const char *log_file; /* where a backgrounded daemon writes; NULL: /dev/null */
	bool writeback;	      /* the kernel's writeback cache */
	struct store_options store;
};

int cli_mount(const struct mount_args *a);

struct bench_args {
	const char *mountpoint;
	size_t seq_bytes; /* sequential workload size */
	int files;	  /* small files created */
};

int cli_bench(const struct bench_args *a);

/* Whether something is mounted at path (resolved); fills its file system
 * type and source when asked (type or source may be NULL). */
bool fs_mountinfo_lookup(const char *path, char *type, size_t tcap, char *source, size_t scap);

/* Checks DATA_DIR read-only; CLI_OK when clean, CLI_MISSING (1) with problems. */
int cli_fsck(const char *data_dir);

#endif
