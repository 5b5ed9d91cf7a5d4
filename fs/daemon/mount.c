/*
 * mount - `caskfs mount DATA_DIR MOUNTPOINT`: opens the node's store and
 * namespace and serves them through FUSE until unmounted or signalled. Unless
 * -f, it forks first (the store's threads must live in the daemon) and the
 * parent waits on a pipe, so a busy mountpoint or a locked DATA_DIR still ends
 * the command with a message and a non-zero status.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon_i.h"
#include "ops_i.h"

#define CACHE_BYTES (64u << 20)

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

#define GROUP_COMMIT_MS 50
/* Buffered writes of a file are committed once it has had no write for
 * COMMIT_IDLE_MS, or COMMIT_MAX_AGE_MS after the first of them (file.c). */
#define COMMIT_IDLE_MS 100
#define COMMIT_MAX_AGE_MS 1000

struct committer {
	struct fs *fs;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

/*
 * Every GROUP_COMMIT_MS: commit the buffered writes of files left alone
 * (fs_file_commit_idle); then group commit of the namespace: when LMDB
 * committed anything since the last round, fsync the log and then LMDB. The
 * log goes first, so no durable metadata names a chunk that is not durable.
 */
static void *committer_main(void *arg)
{
	struct committer *c = arg;
	uint64_t synced = meta_last_txn(c->fs->meta);

	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += GROUP_COMMIT_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		pthread_mutex_unlock(&c->mu);
		fs_file_commit_idle(c->fs, COMMIT_IDLE_MS, COMMIT_MAX_AGE_MS);
		pthread_mutex_lock(&c->mu);
		uint64_t last = meta_last_txn(c->fs->meta);
		if (last == synced)
			continue;
		pthread_mutex_unlock(&c->mu);
		if (store_sync(c->fs->store) == 0 && cluster_sync(c->fs->node.cluster) == 0 &&
		    meta_sync(c->fs->meta) == 0)
			synced = last;
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

/* FUSE opcodes by number (linux/fuse.h), for the request counts in stats. */
static const char *const opcode_names[FS_OPCODES] = {
	[1] = "lookup",		[2] = "forget",		[3] = "getattr",
	[4] = "setattr",	[5] = "readlink",	[6] = "symlink",
	[8] = "mknod",		[9] = "mkdir",		[10] = "unlink",
	[11] = "rmdir",		[12] = "rename",	[13] = "link",
	[14] = "open",		[15] = "read",		[16] = "write",
	[17] = "statfs",	[18] = "release",	[20] = "fsync",
	[21] = "setxattr",	[22] = "getxattr",	[23] = "listxattr",
	[24] = "removexattr",	[25] = "flush",		[26] = "init",
	[27] = "opendir",	[28] = "readdir",	[29] = "releasedir",
	[30] = "fsyncdir",	[31] = "getlk",		[32] = "setlk",
	[33] = "setlkw",	[34] = "access",	[35] = "create",
	[36] = "interrupt",	[37] = "bmap",		[38] = "destroy",
	[39] = "ioctl",		[40] = "poll",		[41] = "notify_reply",
	[42] = "batch_forget",	[43] = "fallocate",	[44] = "readdirplus",
	[45] = "rename2",	[46] = "lseek",		[47] = "copy_file_range",
	[48] = "setupmapping",	[49] = "removemapping", [50] = "syncfs",
	[51] = "tmpfile",	[52] = "statx",
};

const char *fs_opcode_name(unsigned op)
{
	return op < FS_OPCODES ? opcode_names[op] : NULL;
}

/*
 * The FUSE request loop. Each worker waits in poll() on the session's
 * descriptor (non-blocking) and reads one request when it is readable.
 * Measured against libfuse's multi-threaded loop (workers blocked in read())
 * on the 2-core development VM: 15-40% more creates and stats per second
 * (docs/BENCHMARKS.md). LOOP_THREADS wait; when all of them are busy
 * (requests that wait on peers) another starts, up to LOOP_MAX_THREADS, and
 * the extra ones end when idle again.
 */
#define LOOP_THREADS 4
#define LOOP_MAX_THREADS 32

struct loop {
	struct fuse_session *se;
	_Atomic uint64_t *requests; /* by opcode, or NULL */
	pthread_mutex_t mu;
	pthread_cond_t done;
	/* protected by mu: workers serving (threads), of which busy are in a
	 * request, and running (live: also those on their way out) */
	int threads, busy, live;
	int error;	   /* the first read error other than unmount, or 0 */
};

static void *loop_worker(void *arg);

/* With l->mu held. */
static void loop_spawn(struct loop *l)
{
	pthread_t t;
	pthread_attr_t attr;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, loop_worker, l) == 0) {
		l->threads++;
		l->live++;
	}
	pthread_attr_destroy(&attr);
}

static void *loop_worker(void *arg)
{
	struct loop *l = arg;
	struct fuse_buf buf = { 0 };
	struct pollfd p = { .fd = fuse_session_fd(l->se), .events = POLLIN };
	bool retired = false;

	while (!retired && !fuse_session_exited(l->se)) {
		int res = fuse_session_receive_buf(l->se, &buf);
		if (res == -EAGAIN || res == -EINTR) {
			poll(&p, 1, 250); /* 250 ms: a signal's exit is seen soon */
			continue;
		}
		if (res <= 0) { /* 0: unmounted */
			if (res < 0) {
				pthread_mutex_lock(&l->mu);
				if (!l->error)
					l->error = res;
				pthread_mutex_unlock(&l->mu);
			}
			fuse_session_exit(l->se);
			break;
		}
		if (l->requests && !(buf.flags & FUSE_BUF_IS_FD) && res >= 8) {
			/* struct fuse_in_header: len, then the opcode (host order) */
			uint32_t op;
			memcpy(&op, (const char *)buf.mem + 4, sizeof(op));
			if (op < FS_OPCODES)
				atomic_fetch_add_explicit(&l->requests[op], 1, memory_order_relaxed);
		}
		pthread_mutex_lock(&l->mu);
		if (++l->busy == l->threads && l->threads < LOOP_MAX_THREADS)
			loop_spawn(l);
		pthread_mutex_unlock(&l->mu);
		fuse_session_process_buf(l->se, &buf);
		pthread_mutex_lock(&l->mu);
		l->busy--;
		/* counted out at once, so workers ending together never leave
		 * fewer than LOOP_THREADS */
		if (l->threads - l->busy > LOOP_THREADS) {
			l->threads--;
			retired = true;
		}
		pthread_mutex_unlock(&l->mu);
	}
	free(buf.mem);
	pthread_mutex_lock(&l->mu);
	if (!retired)
		l->threads--;
	l->live--;
	pthread_cond_signal(&l->done);
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

int fs_session_loop(struct fuse_session *se, _Atomic uint64_t *requests)
{
	struct loop l = { .se = se,
			  .requests = requests,
			  .mu = PTHREAD_MUTEX_INITIALIZER,
			  .done = PTHREAD_COND_INITIALIZER };
	int fd = fuse_session_fd(se);
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	pthread_mutex_lock(&l.mu);
	for (int i = 0; i < LOOP_THREADS; i++)
		loop_spawn(&l);
	if (l.live == 0) {
		pthread_mutex_unlock(&l.mu);
		return -EAGAIN;
	}
	while (l.live > 0)
		pthread_cond_wait(&l.done, &l.mu);
	pthread_mutex_unlock(&l.mu);
	return l.error;
}

static int serve(const struct mount_args *a, int ready_fd)
{
	static struct fs fs; /* the session's userdata, for as long as the process */

	fs.data_dir = a->data_dir;
	/* Changes from elsewhere invalidate what the kernel holds (invalidate.c),
	 * but a LOOKUP answered just before a change arrives creates its inode
	 * after the invalidation found none: the timeout bounds that. With 60 s,
	 * tests/test_replication.py saw two mounts disagree for a minute. */
	fs.timeout = 1.0;
	fs.writeback = a->writeback;
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
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
	fs.sink = (struct fs_repl_sink){ .meta = fs.meta, .changed = fs_invalidate_change, .arg = &fs };
	if ((status = node_start(fs.store, a->data_dir, &a->node, "caskfs mount", fs_node_ext_command,
				 fs_node_ext_stats, &fs, &fs.node)) != 0)
		goto out;
	if ((rc = fs_repl_start(fs.meta, &fs.node, &a->node, &fs.repl)) < 0 ||
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
	if (fuse_opt_add_arg(&args, "caskfs") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts)) {
		fprintf(stderr, "caskfs mount: out of memory\n");
		goto out;
	}
	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), &fs);
	if (!se) {
		fprintf(stderr, "caskfs mount: bad FUSE options '%s'\n", opts);
		status = CLI_USAGE;
		goto out;
	}
	if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, a->mountpoint) != 0) {
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
	struct committer com = { .fs = &fs,
				 .mu = PTHREAD_MUTEX_INITIALIZER,
				 .cv = PTHREAD_COND_INITIALIZER };
	pthread_t com_thread;
	bool com_running = pthread_create(&com_thread, NULL, committer_main, &com) == 0;
	if (!com_running)
		fprintf(stderr,
			"caskfs: no group-commit thread: the namespace syncs at fsync only\n");
	rc = fs_session_loop(se, fs.requests);
	atomic_store(&fs.se, NULL);
	if (fs_file_commit_idle(&fs, 0, 0) > 0)
		rc = -EIO; /* said in the log, file by file */
	/* unmounted: stop answering at once, so a new mount of this DATA_DIR
	 * knows to wait for the sync below (node_wait_shutdown) */
	server_stop(fs.node.server);
	fs.node.server = NULL;
	fuse_session_unmount(se);
	if (com_running) {
		pthread_mutex_lock(&com.mu);
		com.stop = true;
		pthread_cond_signal(&com.cv);
		pthread_mutex_unlock(&com.mu);
		pthread_join(com_thread, NULL);
	}
	status = rc == 0 ? CLI_OK : CLI_IO;
out:
	if (se) {
		fuse_remove_signal_handlers(se);
		fuse_session_destroy(se);
	}
	fuse_opt_free_args(&args);
	free(abs_dir);
	fs_chunk_cache_free(fs.cache);
	fs_nlookup_free(&fs.lookups);
	fs_ae_stop(fs.ae);
	fs.ae = NULL;
	fs_repl_stop(fs.repl);
	fs.repl = NULL;
	node_stop(&fs.node);
	if (fs.meta && meta_sync(fs.meta) < 0)
		status = CLI_IO;
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
	exit(serve(a, p[1]));
}
