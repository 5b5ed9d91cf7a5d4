/*
 * mount - `caskfs mount DATA_DIR MOUNTPOINT`: opens the node's store and
 * namespace and serves them through FUSE until unmounted or signalled. Unless
 * -f, it forks first (the store's threads must live in the daemon) and the
 * parent waits on a pipe, so a busy mountpoint or a locked DATA_DIR still ends
 * the command with a message and a non-zero status.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon_i.h"
#include "journal_i.h"
#include "ops_i.h"

#define CACHE_BYTES (64u << 20)
#define ENTRY_TIMEOUT_S 86400.0 /* entry and attribute timeouts */

/* Tells the waiting parent how setup ended, then detaches from the terminal. */
static void report(int fd, int status, const char *log_file)
{
	unsigned char b = (unsigned char)status;
	int null;

	if (fd < 0)
		return;
	if (write(fd, &b, 1) != 1)
		perror("caskfs mount: cannot signal the parent");
	close(fd);
	if (status != 0)
		return;
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (!log_file)
			dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
	if (log_file) {
		int lf = open(log_file, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (lf >= 0) {
			dup2(lf, STDERR_FILENO);
			close(lf);
		}
	}
}

static int wait_for_child(int fd, pid_t pid)
{
	unsigned char b = CLI_IO;
	ssize_t n;

	do {
		n = read(fd, &b, 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n != 1) {
		int st;
		waitpid(pid, &st, 0);
		fprintf(stderr, "caskfs mount: the daemon ended during start-up\n");
		return CLI_IO;
	}
	if (b != 0)
		waitpid(pid, NULL, 0);
	return b;
}

static int serve(const struct mount_args *a, int ready_fd)
{
	static struct fs fs; /* the session's userdata, for as long as the process */

	fs.data_dir = a->data_dir;
	/* Every change this kernel did not make itself comes from a peer and
	 * is invalidated (invalidate.c, which also closes the race of a reply
	 * read just before such a change): the kernel may keep what it is told. */
	fs.timeout = ENTRY_TIMEOUT_S;
	fs.writeback = a->writeback;
	struct fuse_session *se = NULL;
	char opts[2048], *abs_dir = NULL;
	int rc, status = CLI_IO;

	struct store_options so = a->store;
	pthread_mutex_init(&fs.files_mu, NULL);
	pthread_mutex_init(&fs.lookups.mu, NULL);
	node_pick_id(&a->node, &so);
	node_wait_shutdown(a->data_dir);
	rc = store_open(a->data_dir, &so, &fs.store);
	if (rc < 0) {
		if (rc != -EBUSY)
			fprintf(stderr, "caskfs mount: cannot open %s: %s\n", a->data_dir,
				strerror(-rc));
		goto out;
	}
	rc = meta_open(a->data_dir, so.node_id, store_clock(fs.store), &fs.meta);
	if (rc == 0)
		rc = fs_chunk_cache_new(CACHE_BYTES, &fs.cache);
	if (rc < 0) {
		fprintf(stderr, "caskfs mount: cannot open the namespace in %s: %s\n", a->data_dir,
			strerror(-rc));
		goto out;
	}
	atomic_store(&fs.meta_synced, meta_last_txn(fs.meta)); /* meta_open synced it */
	fs.sink = (struct fs_repl_sink){ .meta = fs.meta, .changed = fs_invalidate_change, .arg = &fs };
	if ((status = node_start(fs.store, a->data_dir, &a->node, "caskfs mount", fs_node_ext_command,
				 fs_node_ext_stats, &fs, &fs.node)) != 0)
		goto out;
	/* what fsync made durable and the namespace does not hold yet */
	status = CLI_IO;
	if (fs_journal_replay(&fs) < 0)
		goto out;
	if ((rc = fs_invalidate_start(&fs)) < 0 ||
	    (rc = fs_repl_start(fs.meta, &fs.node, &a->node, &fs.repl)) < 0 ||
	    (rc = fs_ae_start(fs.store, &fs.sink, &fs.node, &a->node, &fs.ae)) < 0) {
		fprintf(stderr, "caskfs mount: cannot start namespace replication: %s\n",
			strerror(-rc));
		goto out;
	}
	status = CLI_IO;
	/* the fsname is how `caskfs bench` and `caskfs status` find DATA_DIR
	 * from the mountpoint, in whatever directory they run: absolute */
	abs_dir = realpath(a->data_dir, NULL);
	snprintf(opts, sizeof(opts), "fsname=caskfs:%s,subtype=caskfs,default_permissions%s%s%s",
		 abs_dir ? abs_dir : a->data_dir, geteuid() == 0 ? ",allow_other" : "", a->options ? "," : "",
		 a->options ? a->options : "");
	rc = fs_session_mount("caskfs", opts, &fs_ops, sizeof(fs_ops), &fs, a->mountpoint, &se);
	if (rc == -ENOMEM) {
		fprintf(stderr, "caskfs mount: out of memory\n");
		goto out;
	}
	if (rc == -EINVAL) {
		fprintf(stderr, "caskfs mount: bad FUSE options '%s'\n", opts);
		status = CLI_USAGE;
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, "caskfs mount: cannot mount on %s\n", a->mountpoint);
		goto out;
	}
	atomic_store(&fs.se, se);
	char desc[128];
	cluster_describe(fs.node.cluster, desc, sizeof(desc));
	char started[8192];
	snprintf(started, sizeof(started), "caskfs: %s mounted on %s (node %u, %s%s%s, sync %s)\n",
		 a->data_dir, a->mountpoint, so.node_id, desc, a->node.listen ? ", listening on " : "",
		 a->node.listen ? a->node.listen : "", store_sync_mode_name(so.sync));
	fputs(started, stderr);
	report(ready_fd, 0, a->log_file);
	if (ready_fd >= 0 && a->log_file)
		fputs(started, stderr); /* the log file starts with what it serves */
	if (log_setup("caskfs-mount", a->node.syslog,
		      a->node.log_level ? a->node.log_level : 6 /* LOG_INFO */) < 0)
		fprintf(stderr, "caskfs: cannot set up logging; messages stay on stderr\n");
	else if (a->node.syslog)
		fputs(started, stderr); /* the first line syslog gets */
	ready_fd = -1;
	struct fs_committer *com;
	if (fs_committer_start(&fs, &com) < 0)
		fprintf(stderr,
			"caskfs: no group-commit thread: the namespace syncs at fsync only\n");
	if (fs_purge_start(&fs) < 0)
		fprintf(stderr,
			"caskfs: no purge thread: each FORGET deletes its orphan at once\n");
	rc = fs_session_loop(se, fs.requests, a->uring);
	atomic_store(&fs.se, NULL);
	if (fs_file_commit_idle(&fs, 0, 0) > 0)
		rc = -EIO; /* said in the log, file by file */
	/* unmounted: stop answering at once, so a new mount of this DATA_DIR
	 * knows to wait for the sync below (node_wait_shutdown) */
	server_stop(fs.node.server);
	fs.node.server = NULL;
	fs_purge_stop(&fs); /* no FORGET and no mgc comes now */
	fuse_session_unmount(se);
	fs_committer_stop(com);
	status = rc == 0 ? CLI_OK : CLI_IO;
out:
	fs_session_close(se);
	free(abs_dir);
	fs_chunk_cache_free(fs.cache);
	fs_nlookup_free(&fs.lookups);
	fs_ae_stop(fs.ae);
	fs.ae = NULL;
	fs_repl_stop(fs.repl);
	fs.repl = NULL;
	fs_invalidate_stop(&fs);
	node_stop(&fs.node);
	if (fs.meta && meta_sync(fs.meta) < 0)
		status = CLI_IO;
	fs_journal_close(fs.journal);
	meta_close(fs.meta);
	if (store_close(fs.store) < 0)
		status = CLI_IO;
	report(ready_fd, status ? status : CLI_IO, NULL);
	return status;
}

int cli_mount(const struct mount_args *a)
{
	struct stat st;
	int p[2];
	pid_t pid;

	if (stat(a->mountpoint, &st) < 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "caskfs mount: %s is not a directory\n", a->mountpoint);
		return CLI_USAGE;
	}
	if (a->uring == FS_URING_ON && !fs_session_uring_allowed()) {
		fprintf(stderr, "caskfs mount: --uring on, but this kernel does not let FUSE use "
				"io_uring (/sys/module/fuse/parameters/enable_uring is not Y)\n");
		return CLI_USAGE;
	}
	if (fs_mountinfo_lookup(a->mountpoint, NULL, 0, NULL, 0)) {
		fprintf(stderr, "caskfs mount: %s is busy: something is mounted there already\n",
			a->mountpoint);
		return CLI_IO;
	}
	if (a->foreground)
		return serve(a, -1);
	if (pipe(p) < 0) {
		perror("caskfs mount: pipe");
		return CLI_IO;
	}
	pid = fork();
	if (pid < 0) {
		perror("caskfs mount: fork");
		return CLI_IO;
	}
	if (pid > 0) {
		close(p[1]);
		return wait_for_child(p[0], pid);
	}
	close(p[0]);
	setsid();
	return serve(a, p[1]); /* the daemon's status, which main exits with */
}
