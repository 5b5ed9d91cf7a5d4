/*
 * uring - FUSE over io_uring: the kernel hands each request to a ring entry
 * of the queue of the CPU that made it, and an entry is held by a thread
 * pinned to that CPU, so the request is served where it was made instead of
 * waking a thread on the other CPU (a same-CPU round trip costs a fraction
 * of a cross-CPU one on the development VM: docs/BENCHMARKS.md).
 *
 * Each thread owns one io_uring (SQE128) and one entry: a header buffer
 * (struct fuse_uring_req_header: the request's fuse_in_header, its
 * operation's fixed arguments, and the payload length) and a payload
 * buffer. It registers the entry (FUSE_IO_URING_CMD_REGISTER), then each
 * completion is a request: rebuilt whole in front of its payload (as a read
 * of /dev/fuse would give it), served, answered into the entry and sent with
 * FUSE_IO_URING_CMD_COMMIT_AND_FETCH, which also asks for the next one.
 * FORGET, INTERRUPT and notifications still go through /dev/fuse, so the
 * loop of session.c goes on reading it. Protocol: linux/fuse.h of 6.14+;
 * the kernel side: fs/fuse/dev_uring.c.
 */
#define FUSE_USE_VERSION 34

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "uring_i.h"

/* The io_uring side of the protocol (linux/fuse.h 7.42+; Debian's headers
 * are older). */
#define URING_CMD_REGISTER 1
#define URING_CMD_COMMIT_AND_FETCH 2
#define URING_OP_IN_SZ 128

struct uring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id; /* the request's unique, echoed in the commit */
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct uring_req_header {
	char in_out[128]; /* struct fuse_in_header in, struct fuse_out_header out */
	char op_in[URING_OP_IN_SZ];
	struct uring_ent_in_out ent;
};

struct uring_cmd_req { /* in the 80-byte command area of a 128-byte SQE */
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

#define URING_PAD 4096 /* room for the header and arguments before the payload */
#define WAIT_NS 500000000L

struct fs_uring_ent {
	struct uring_req_header *hdr; /* iov[0] */
	uint8_t *area;		      /* URING_PAD bytes, then the payload (iov[1]) */
	uint8_t *payload;
	struct iovec iov[2];
	uint64_t commit_id;
	uint64_t unique;
	bool replied;
};

struct uring_thread {
	struct fs_uring *u;
	int qid;
	pthread_t thread;
	bool started;
	struct io_uring ring;
	struct fs_uring_ent ent;
};

enum { PHASE_SETUP, PHASE_GO, PHASE_STOP };

struct fs_uring {
	int fd;
	size_t payload;
	fs_uring_dispatch_fn dispatch;
	void *arg;
	int nthreads;
	struct uring_thread *threads;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int phase;	   /* protected by mu */
	int ready, failed; /* threads whose ring is made / could not be: protected by mu */
	_Atomic bool stop;
	_Atomic uint64_t served;
};

static _Thread_local struct fs_uring_ent *current_ent;

bool fs_uring_kernel_allows(void)
{
	char c = 'N';
	int fd = open("/sys/module/fuse/parameters/enable_uring", O_RDONLY);

	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = 'N';
	close(fd);
	return c == 'Y' || c == 'y' || c == '1';
}

/* CPUs the kernel may have: 0 to the last of /sys/devices/system/cpu/possible. */
static int possible_cpus(void)
{
	char buf[256];
	int fd = open("/sys/devices/system/cpu/possible", O_RDONLY), n = 0;
	ssize_t len = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return (int)sysconf(_SC_NPROCESSORS_CONF);
	buf[len] = '\0';
	for (char *p = buf; *p;) { /* "0-1", "0,2-5": the last number ends the list */
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		n = (int)v + 1;
		p = *end ? end + 1 : end;
	}
	return n > 0 ? n : 1;
}

static void prep_cmd(struct uring_thread *t, unsigned op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
	struct uring_cmd_req *req;

	/* one entry per ring, one command in flight: there is always an SQE */
	io_uring_prep_rw(IORING_OP_URING_CMD, sqe, t->u->fd,
			 op == URING_CMD_REGISTER ? t->ent.iov : NULL,
			 op == URING_CMD_REGISTER ? 2 : 0, 0);
	sqe->cmd_op = op;
	memset(sqe->cmd, 0, 80);
	req = (struct uring_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)t->qid;
	req->commit_id = op == URING_CMD_COMMIT_AND_FETCH ? t->ent.commit_id : 0;
	io_uring_sqe_set_data(sqe, &t->ent);
}

/* Answers the entry's request with error err (no payload). */
static void reply_error(struct fs_uring_ent *e, int err)
{
	struct fuse_out_header out = { .len = sizeof(out), .error = -err, .unique = e->unique };

	memcpy(e->hdr->in_out, &out, sizeof(out));
	e->hdr->ent.payload_sz = 0;
	e->replied = true;
}

/* Serves the request the kernel put in t's entry. */
static void serve(struct uring_thread *t)
{
	struct fs_uring_ent *e = &t->ent;
	struct fuse_in_header in;
	uint32_t psz = e->hdr->ent.payload_sz;

	memcpy(&in, e->hdr->in_out, sizeof(in));
	e->commit_id = e->hdr->ent.commit_id;
	e->unique = in.unique;
	e->replied = false;
	/* the operation's fixed arguments are whatever the length leaves */
	if (in.len < sizeof(in) + (uint64_t)psz || in.len - sizeof(in) - psz > URING_OP_IN_SZ ||
	    psz > t->u->payload) {
		fprintf(stderr, "caskfs: io_uring request %llu of bad length %u (payload %u)\n",
			(unsigned long long)in.unique, in.len, psz);
		reply_error(e, EIO);
		return;
	}
	size_t op = in.len - sizeof(in) - psz;
	uint8_t *start = e->payload - op - sizeof(in);
	memcpy(start, &in, sizeof(in));
	memcpy(start + sizeof(in), e->hdr->op_in, op);
	struct fuse_buf buf = { .size = in.len, .mem = start };
	current_ent = e;
	t->u->dispatch(t->u->arg, &buf);
	current_ent = NULL;
	atomic_fetch_add_explicit(&t->u->served, 1, memory_order_relaxed);
	if (!e->replied) /* every request served here expects an answer */
		reply_error(e, EIO);
}

/* Makes t's ring and entry, in t's thread (the ring's only submitter). */
static int thread_setup(struct uring_thread *t)
{
	static const unsigned tries[] = { IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
					      IORING_SETUP_DEFER_TASKRUN,
					  IORING_SETUP_SQE128 | IORING_SETUP_COOP_TASKRUN,
					  IORING_SETUP_SQE128 };
	cpu_set_t cpus;
	int rc = -EINVAL;

	CPU_ZERO(&cpus);
	CPU_SET(t->qid, &cpus);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus); /* best effort */
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]) && rc < 0; i++) {
		struct io_uring_params p = { .flags = tries[i] };
		rc = io_uring_queue_init_params(4, &t->ring, &p);
	}
	if (rc < 0)
		return rc;
	if (posix_memalign((void **)&t->ent.hdr, 4096, sizeof(*t->ent.hdr)) != 0 ||
	    !(t->ent.area = malloc(URING_PAD + t->u->payload))) {
		free(t->ent.hdr);
		t->ent.hdr = NULL;
		io_uring_queue_exit(&t->ring);
		return -ENOMEM;
	}
	memset(t->ent.hdr, 0, sizeof(*t->ent.hdr));
	t->ent.payload = t->ent.area + URING_PAD;
	t->ent.iov[0] = (struct iovec){ .iov_base = t->ent.hdr, .iov_len = sizeof(*t->ent.hdr) };
	t->ent.iov[1] = (struct iovec){ .iov_base = t->ent.payload, .iov_len = t->u->payload };
	return 0;
}

static void *thread_main(void *arg)
{
	struct uring_thread *t = arg;
	struct fs_uring *u = t->u;
	int rc = thread_setup(t);
	unsigned last = URING_CMD_REGISTER;

	pthread_mutex_lock(&u->mu);
	if (rc < 0)
		u->failed++;
	else
		u->ready++;
	pthread_cond_broadcast(&u->cv);
	while (rc == 0 && u->phase == PHASE_SETUP)
		pthread_cond_wait(&u->cv, &u->mu);
	bool stopped = u->phase == PHASE_STOP;
	pthread_mutex_unlock(&u->mu);
	if (rc < 0)
		return NULL; /* thread_setup left nothing */
	if (!stopped)
		prep_cmd(t, URING_CMD_REGISTER);
	while (!stopped && !atomic_load(&u->stop)) {
		struct __kernel_timespec ts = { .tv_nsec = WAIT_NS };
		struct io_uring_cqe *cqe = NULL;
		rc = io_uring_submit_and_wait_timeout(&t->ring, &cqe, 1, &ts, NULL);
		/* liburing 2.3 may return having submitted, with no completion yet */
		if (rc == -ETIME || rc == -EINTR || (rc >= 0 && !cqe))
			continue;
		if (rc < 0) {
			fprintf(stderr, "caskfs: io_uring queue %d: %s\n", t->qid, strerror(-rc));
			break;
		}
		int res = cqe->res;
		io_uring_cqe_seen(&t->ring, cqe);
		if (res == -EINTR || res == -EAGAIN) {
			prep_cmd(t, last);
			continue;
		}
		if (res < 0) { /* ENOTCONN: unmounted; the kernel says why once */
			if (res != -ENOTCONN)
				fprintf(stderr, "caskfs: io_uring queue %d: %s\n", t->qid,
					strerror(-res));
			break;
		}
		serve(t);
		last = URING_CMD_COMMIT_AND_FETCH;
		prep_cmd(t, last);
	}
	io_uring_queue_exit(&t->ring);
	free(t->ent.hdr);
	free(t->ent.area);
	return NULL;
}

int fs_uring_prepare(int fd, int threads_per_queue, size_t payload, fs_uring_dispatch_fn dispatch,
		     void *arg, struct fs_uring **out)
{
	struct fs_uring *u = calloc(1, sizeof(*u));
	int queues = possible_cpus(), rc = 0;

	*out = NULL;
	if (!u)
		return -ENOMEM;
	u->fd = fd;
	u->payload = payload;
	u->dispatch = dispatch;
	u->arg = arg;
	/* a queue of a CPU this process cannot run on (offline, or outside its
	 * affinity) must still be registered, but gets one thread */
	cpu_set_t mine;
	if (sched_getaffinity(0, sizeof(mine), &mine) < 0)
		CPU_ZERO(&mine);
	for (int q = 0; q < queues; q++)
		u->nthreads += CPU_ISSET(q, &mine) || CPU_COUNT(&mine) == 0 ? threads_per_queue : 1;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->cv, NULL);
	if (!(u->threads = calloc((size_t)u->nthreads, sizeof(*u->threads)))) {
		fs_uring_stop(u);
		return -ENOMEM;
	}
	for (int i = 0, q = 0, k = 0; i < u->nthreads; i++) {
		struct uring_thread *t = &u->threads[i];
		int per = CPU_ISSET(q, &mine) || CPU_COUNT(&mine) == 0 ? threads_per_queue : 1;
		t->u = u;
		t->qid = q;
		if (++k == per) {
			q++;
			k = 0;
		}
		if ((rc = -pthread_create(&t->thread, NULL, thread_main, t)) < 0)
			break;
		t->started = true;
	}
	pthread_mutex_lock(&u->mu);
	while (rc == 0 && u->ready + u->failed < u->nthreads)
		pthread_cond_wait(&u->cv, &u->mu);
	if (rc == 0 && u->failed)
		rc = -EOPNOTSUPP; /* no io_uring here (or no memory for it) */
	pthread_mutex_unlock(&u->mu);
	if (rc < 0) {
		fs_uring_stop(u);
		return rc;
	}
	*out = u;
	return 0;
}

size_t fs_uring_payload(const struct fs_uring *u)
{
	return u->payload;
}

void fs_uring_start(struct fs_uring *u)
{
	pthread_mutex_lock(&u->mu);
	if (u->phase == PHASE_SETUP)
		u->phase = PHASE_GO;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
}

void fs_uring_stop(struct fs_uring *u)
{
	if (!u)
		return;
	atomic_store(&u->stop, true);
	pthread_mutex_lock(&u->mu);
	u->phase = PHASE_STOP;
	pthread_cond_broadcast(&u->cv);
	pthread_mutex_unlock(&u->mu);
	for (int i = 0; u->threads && i < u->nthreads; i++)
		if (u->threads[i].started)
			pthread_join(u->threads[i].thread, NULL);
	free(u->threads);
	pthread_cond_destroy(&u->cv);
	pthread_mutex_destroy(&u->mu);
	free(u);
}

uint64_t fs_uring_served(const struct fs_uring *u)
{
	return u ? atomic_load_explicit(&u->served, memory_order_relaxed) : 0;
}

struct fs_uring_ent *fs_uring_current(void)
{
	return current_ent;
}

uint64_t fs_uring_unique(const struct fs_uring_ent *e)
{
	return e->unique;
}

ssize_t fs_uring_reply(struct fs_uring_ent *e, const struct iovec *iov, int count)
{
	struct fuse_out_header out;
	size_t total = 0, at = 0;

	if (count < 1 || iov[0].iov_len < sizeof(out)) {
		errno = EINVAL;
		return -1;
	}
	memcpy(&out, iov[0].iov_base, sizeof(out));
	for (int i = 1; i < count; i++)
		total += iov[i].iov_len;
	if (total > e->iov[1].iov_len) {
		fprintf(stderr, "caskfs: an answer of %zu bytes does not fit an io_uring entry\n",
			total);
		reply_error(e, EIO);
		return (ssize_t)(sizeof(out) + total);
	}
	for (int i = 1; i < count; i++) { /* the answer may come from the payload itself */
		if (iov[i].iov_base != e->payload + at)
			memmove(e->payload + at, iov[i].iov_base, iov[i].iov_len);
		at += iov[i].iov_len;
	}
	out.len = (uint32_t)(sizeof(out) + total);
	memcpy(e->hdr->in_out, &out, sizeof(out));
	e->hdr->ent.payload_sz = (uint32_t)total;
	e->replied = true;
	return (ssize_t)out.len;
}

void *fs_uring_reply_buffer(struct fs_uring_ent *e, size_t size)
{
	return size <= e->iov[1].iov_len ? e->payload : NULL;
}
