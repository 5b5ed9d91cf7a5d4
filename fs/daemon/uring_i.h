/*
 * uring_i.h - FUSE over io_uring (uring.c), the transport session.c serves
 * requests through when the kernel allows it: per CPU a queue of ring
 * entries, each held by a thread of that CPU, so that a request is answered
 * where it was made. session.c prepares it before INIT, asks for it in
 * INIT's answer, starts it once that answer is in, and hands each request
 * it brings to libfuse; libfuse's answers come back here through the I/O
 * hook (fs_uring_current, fs_uring_reply). Protocol: linux/fuse.h
 * (FUSE_OVER_IO_URING, struct fuse_uring_*), fs/fuse/dev_uring.c.
 * Ownership: struct fs_uring is the caller's from prepare to stop.
 */
#ifndef CASKFS_FS_DAEMON_URING_I_H
#define CASKFS_FS_DAEMON_URING_I_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FS_URING_INIT_FLAG (1ULL << 41) /* FUSE_OVER_IO_URING in INIT's flags */

struct fs_uring;
struct fs_uring_ent;

/* Serves one request of a ring entry: buf holds it whole (header, the
 * operation's arguments, its payload), as read from /dev/fuse. */
typedef void (*fs_uring_dispatch_fn)(void *arg, const struct fuse_buf *buf);

/* Whether this kernel lets FUSE connections use io_uring (the fuse module's
 * enable_uring parameter). */
bool fs_uring_kernel_allows(void);

/*
 * Makes the rings and threads for every possible CPU (threads_per_queue
 * each, one for a CPU this process cannot run on; one entry of payload
 * bytes each) on /dev/fuse descriptor fd, not registered yet; requests will go to dispatch(arg). 0, or -errno (no
 * io_uring here, no memory): then nothing is left.
 */
int fs_uring_prepare(int fd, int threads_per_queue, size_t payload, fs_uring_dispatch_fn dispatch,
		     void *arg, struct fs_uring **out);
/* The payload each entry holds (what INIT's answer may allow). */
size_t fs_uring_payload(const struct fs_uring *u);
/* After INIT's answer with FS_URING_INIT_FLAG reached the kernel: every
 * entry is registered and requests start to come. */
void fs_uring_start(struct fs_uring *u);
/* Ends the threads (they notice within half a second) and frees u. NULL:
 * nothing. */
void fs_uring_stop(struct fs_uring *u);
/* Requests served through the rings so far. */
uint64_t fs_uring_served(const struct fs_uring *u);

/* The entry whose request the calling thread serves, or NULL. */
struct fs_uring_ent *fs_uring_current(void);
/* The request's unique id of e. */
uint64_t fs_uring_unique(const struct fs_uring_ent *e);
/* Where an answer of size bytes to e's request may be built so that it
 * needs no copy (its payload: the request's own payload, if any, is then
 * gone), or NULL when it does not fit. */
void *fs_uring_reply_buffer(struct fs_uring_ent *e, size_t size);
/* Takes the answer to e's request (iov[0] struct fuse_out_header, then its
 * arguments) into e: its length, or -1 with errno set. */
ssize_t fs_uring_reply(struct fs_uring_ent *e, const struct iovec *iov, int count);

#endif
