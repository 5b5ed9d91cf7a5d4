/*
 * session - a FUSE session as the mount and the bench's null filesystem
 * (fs/bench/floor.c) both run one: mounted, its connection negotiated, and
 * served by one request loop, whose workers each wait in poll() on the
 * session's descriptor and read one request when it is readable, as many
 * of them as requests are waiting on peers; and the names of the FUSE
 * opcodes the loop counts for `stats`. libfuse reads and writes the
 * descriptor through our own I/O hooks (fuse_session_custom_io): they see
 * INIT go by and complete its answer with what libfuse 3.14 cannot ask for
 * (FUSE_HANDLE_KILLPRIV_V2) and the readahead the kernel will not take from
 * it (widen_readahead), and mark each request with what its handler
 * needs to know and libfuse does not pass on (a write that must clear
 * setuid, a change from a peer during it). Measurements: docs/BENCHMARKS.md;
 * the opcodes and INIT's flags: linux/fuse.h.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "meta/meta.h"
#include "session_i.h"
#include "uring_i.h"

/* The mount point, resolved before the mount covers it (resolving it
 * afterwards would ask this very session), for widen_readahead. */
static char mounted_on[PATH_MAX];

int fs_session_mount(const char *name, const char *opts, const struct fuse_lowlevel_ops *ops,
		     size_t ops_size, void *userdata, const char *mountpoint,
		     struct fuse_session **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_session *se;
	int rc = 0;

	*out = NULL;
	if (!realpath(mountpoint, mounted_on))
		mounted_on[0] = '\0';
	if (fuse_opt_add_arg(&args, name) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, opts)) {
		fuse_opt_free_args(&args);
		return -ENOMEM;
	}
	se = fuse_session_new(&args, ops, ops_size, userdata);
	if (!se)
		rc = -EINVAL;
	else if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mountpoint) != 0)
		rc = -EIO;
	if (rc < 0)
		fs_session_close(se);
	else
		*out = se;
	fuse_opt_free_args(&args);
	return rc;
}

void fs_session_close(struct fuse_session *se)
{
	if (!se)
		return;
	fuse_remove_signal_handlers(se);
	fuse_session_destroy(se);
}

/* Whether the kernel sends no OPENDIR once one is answered ENOSYS. */
static _Atomic bool no_opendir;

bool fs_session_no_opendir(void)
{
	return atomic_load(&no_opendir);
}

bool fs_session_init_conn(struct fuse_conn_info *conn, bool writeback)
{
	bool no_open = (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) != 0;

	/* a directory then needs no OPENDIR and RELEASEDIR round trips at every
	 * open (find and du open each one), and its listing stays cached */
	atomic_store(&no_opendir, (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) != 0);

	/* The first KILLPRIV makes the daemon clear setuid on every write,
	 * whoever writes; the second (asked for in INIT's answer, io_writev)
	 * says when: the daemon does it (fs/daemon/killpriv.c), and the kernel
	 * stops asking for security.capability before each write. */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;

	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want &= ~FUSE_CAP_SPLICE_READ;
	/* cached pages stay until this mount or a replicated change drops them
	 * (fs_op_open): no attribute round trip at every open */
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* no OPEN carries O_TRUNC to us: the kernel sends it as a SETATTR */
	if (no_open)
		conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* Off unless asked for: with it every close drops the inode's block
	 * count, so nginx's fstat after each open costs a GETATTR round trip
	 * (0.38x of native against 1.0x); see docs/DESIGN-NOTES.md. */
	if (writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = META_CHUNK_SIZE; /* a request is at most one chunk */
	conn->max_readahead = META_CHUNK_SIZE;
	return no_open;
}

/* ---- our I/O under libfuse ---- */

/* One session per process (the daemon, the null filesystem's child). */
static struct {
	_Atomic uint64_t init_unique; /* INIT's request, until it is answered */
	uint64_t offered;	      /* the kernel's INIT flags, all 64 */
	_Atomic bool killpriv_v2;     /* the kernel took FUSE_HANDLE_KILLPRIV_V2 */
	struct fuse_session *se;
	_Atomic uint64_t *requests;
	struct fs_uring *uring; /* prepared before INIT, or NULL */
	bool uring_asked;	/* INIT's answer asked for it: start it once that is in */
	_Atomic bool uring_on;	/* started */
} sio;

/* A change from a peer (fs_session_note_change) bumps it. */
static _Atomic uint64_t change_seq;

/* The request the calling thread serves. */
static _Thread_local struct {
	uint64_t change_seq; /* when it was read */
	bool kill_suidgid;   /* a write from a caller without CAP_FSETID */
} current;

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;

	(void)userdata;
	if (n >= (ssize_t)(sizeof(*in) + 16) && in->opcode == FUSE_INIT) {
		const struct fuse_init_in *arg = (const void *)(in + 1);
		uint64_t flags = arg->flags;
		if ((flags & FUSE_INIT_EXT) && n >= (ssize_t)(sizeof(*in) + sizeof(*arg)))
			flags |= (uint64_t)arg->flags2 << 32;
		sio.offered = flags;
		atomic_store(&sio.init_unique, in->unique);
	}
	return n;
}

/* INIT's answer (iov[1], libfuse's struct fuse_init_out) with what libfuse
 * 3.14 has no capability for. */
static void complete_init(struct iovec *iov, int count)
{
	struct fuse_init_out *out = iov[1].iov_base;

	if (count < 2 || iov[1].iov_len < offsetof(struct fuse_init_out, flags2) + 4)
		return;
	if (sio.offered & FUSE_HANDLE_KILLPRIV_V2) {
		out->flags = (out->flags & ~FUSE_HANDLE_KILLPRIV) | FUSE_HANDLE_KILLPRIV_V2;
		atomic_store(&sio.killpriv_v2, true);
	}
	/* FUSE over io_uring, when prepared, offered, and a request fits an entry */
	size_t page = (size_t)sysconf(_SC_PAGESIZE), need = out->max_write;
	if ((size_t)out->max_pages * page > need)
		need = (size_t)out->max_pages * page;
	if (sio.uring && (sio.offered & FS_URING_INIT_FLAG) && (sio.offered & FUSE_INIT_EXT) &&
	    need <= fs_uring_payload(sio.uring)) {
		out->flags |= FUSE_INIT_EXT;
		out->flags2 |= (uint32_t)(FS_URING_INIT_FLAG >> 32);
		sio.uring_asked = true;
	}
}

/*
 * The kernel caps a FUSE mount's readahead at its device's default, 128 KiB,
 * whatever INIT's max_readahead says: a sequential read then arrives as
 * 128 KiB READs, eight round trips per 1 MiB chunk. Its bdi's read_ahead_kb
 * (writable by root only; without it the 128 KiB stays) lets the kernel
 * send READs of max_readahead, one per chunk. The bdi is named by the
 * mount's device number, field 3 of its line in /proc/self/mountinfo (the
 * last one at the mount point is ours).
 */
static void widen_readahead(unsigned max_readahead)
{
	char line[8192], dev[32] = "", path[96];
	FILE *f;

	if (!mounted_on[0] || !(f = fopen("/proc/self/mountinfo", "r")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char d[32], point[PATH_MAX];
		if (sscanf(line, "%*s %*s %31s %*s %4095s", d, point) == 2 &&
		    strcmp(point, mounted_on) == 0)
			memcpy(dev, d, sizeof(dev));
	}
	fclose(f);
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	if (dev[0] && (f = fopen(path, "w"))) {
		fprintf(f, "%u\n", max_readahead / 1024);
		fclose(f);
	}
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	uint64_t init = atomic_load(&sio.init_unique);
	struct fs_uring_ent *ent = fs_uring_current();
	ssize_t n;

	(void)userdata;
	if (iov[0].iov_len < sizeof(*oh))
		return writev(fd, iov, count);
	/* the answer to a request that came through a ring goes back there */
	if (ent && oh->unique == fs_uring_unique(ent))
		return fs_uring_reply(ent, iov, count);
	if (!init || oh->unique != init)
		return writev(fd, iov, count);
	if (oh->error == 0)
		complete_init(iov, count);
	atomic_store(&sio.init_unique, 0);
	n = writev(fd, iov, count);
	/* after the kernel applied INIT's answer, which lowers it again */
	if (oh->error == 0 && n >= 0 && count >= 2 &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, max_readahead) + 4)
		widen_readahead(((const struct fuse_init_out *)iov[1].iov_base)->max_readahead);
	/* the kernel took the answer (it is initialized): the rings register */
	if (sio.uring_asked && n >= 0) {
		fs_uring_start(sio.uring);
		atomic_store(&sio.uring_on, true);
	}
	return n;
}

static const struct fuse_custom_io session_io = { .read = io_read, .writev = io_writev };

void fs_session_note_change(void)
{
	atomic_fetch_add(&change_seq, 1);
}

bool fs_session_request_raced(void)
{
	return atomic_load(&change_seq) != current.change_seq;
}

bool fs_session_request_kills_suidgid(void)
{
	return current.kill_suidgid;
}

bool fs_session_killpriv_v2(void)
{
	return atomic_load(&sio.killpriv_v2);
}

void *fs_session_reply_buffer(size_t size)
{
	struct fs_uring_ent *e = fs_uring_current();

	return e ? fs_uring_reply_buffer(e, size) : NULL;
}

bool fs_session_uring(uint64_t *served)
{
	if (served)
		*served = atomic_load(&sio.uring_on) ? fs_uring_served(sio.uring) : 0;
	return atomic_load(&sio.uring_on);
}

/* Serves one request read into buf: counted, marked, handled. */
static void session_process(struct fuse_session *se, const struct fuse_buf *buf,
			    _Atomic uint64_t *requests)
{
	const struct fuse_in_header *in = buf->mem;

	current.change_seq = atomic_load(&change_seq);
	current.kill_suidgid = false;
	if (!(buf->flags & FUSE_BUF_IS_FD) && buf->size >= sizeof(*in)) {
		if (requests && in->opcode < FS_OPCODES)
			atomic_fetch_add_explicit(&requests[in->opcode], 1, memory_order_relaxed);
		if (in->opcode == FUSE_WRITE &&
		    buf->size >= sizeof(*in) + sizeof(struct fuse_write_in)) {
			const struct fuse_write_in *w = (const void *)(in + 1);
			current.kill_suidgid = (w->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
		}
	}
	fuse_session_process_buf(se, buf);
}

static void uring_dispatch(void *arg, const struct fuse_buf *buf)
{
	(void)arg;
	session_process(sio.se, buf, sio.requests);
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
 * the extra ones end when idle again. Once requests come through io_uring,
 * /dev/fuse carries only FORGETs (and INTERRUPTs): two waiters are enough
 * there (one serves, the other waits, so none starts per request), and
 * each FORGET woke all four (poll() wakes every waiter).
 */
#define LOOP_THREADS 4
#define LOOP_THREADS_URING 2
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

/* How many workers wait on /dev/fuse when none is busy. */
static int loop_idle_target(void)
{
	return atomic_load(&sio.uring_on) ? LOOP_THREADS_URING : LOOP_THREADS;
}

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
			pthread_mutex_lock(&l->mu);
			if (l->threads - l->busy > loop_idle_target()) {
				l->threads--;
				retired = true;
			}
			pthread_mutex_unlock(&l->mu);
			if (!retired)
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
		pthread_mutex_lock(&l->mu);
		if (++l->busy == l->threads && l->threads < LOOP_MAX_THREADS)
			loop_spawn(l);
		pthread_mutex_unlock(&l->mu);
		buf.size = (size_t)res;
		session_process(l->se, &buf, l->requests);
		pthread_mutex_lock(&l->mu);
		l->busy--;
		/* counted out at once, so workers ending together never leave
		 * fewer than LOOP_THREADS */
		if (l->threads - l->busy > loop_idle_target()) {
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

/* Threads of each CPU's ring queue: a request that waits (on peers, on a
 * sync) leaves its CPU the others. */
#define URING_THREADS_PER_QUEUE 4

int fs_session_loop(struct fuse_session *se, _Atomic uint64_t *requests, enum fs_uring_mode uring)
{
	struct loop l = { .se = se,
			  .requests = requests,
			  .mu = PTHREAD_MUTEX_INITIALIZER,
			  .done = PTHREAD_COND_INITIALIZER };
	int fd = fuse_session_fd(se);
	int flags = fcntl(fd, F_GETFL);
	int rc;

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -errno;
	if ((rc = fuse_session_custom_io(se, &session_io, fd)) < 0)
		return rc;
	sio.se = se;
	sio.requests = requests;
	/* rings are made before INIT: once INIT's answer asks for them, every
	 * request waits until they are registered */
	if (uring != FS_URING_OFF && fs_uring_kernel_allows()) {
		rc = fs_uring_prepare(fd, URING_THREADS_PER_QUEUE, META_CHUNK_SIZE, uring_dispatch,
				      NULL, &sio.uring);
		if (rc < 0)
			fprintf(stderr, "caskfs: no FUSE over io_uring (%s): requests go through "
					"/dev/fuse\n",
				strerror(-rc));
	}
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
	atomic_store(&sio.uring_on, false);
	fs_uring_stop(sio.uring);
	sio.uring = NULL;
	return l.error;
}

bool fs_session_uring_allowed(void)
{
	return fs_uring_kernel_allows();
}
