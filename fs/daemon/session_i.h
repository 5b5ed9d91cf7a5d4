/*
 * session_i.h - a FUSE session as the mount (mount.c, ops.c) and the bench's
 * null filesystem (fs/bench/floor.c) both run one: mounted the same way,
 * the connection negotiated the same way, served by the same request loop
 * (session.c). The ops table and the userdata given to fs_session_mount
 * are the caller's and must outlive the session.
 */
#ifndef CASKFS_FS_DAEMON_SESSION_I_H
#define CASKFS_FS_DAEMON_SESSION_I_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FS_OPCODES 64 /* FUSE opcodes counted: 1 to 63 */

/*
 * A session of ops (userdata for its requests) named name, with the mount
 * options opts (-o), mounted on mountpoint, with libfuse's handlers of
 * SIGINT, SIGTERM and SIGHUP (they end the loop). 0 and *out, or -ENOMEM (no
 * memory for the arguments), -EINVAL (libfuse refused opts), -EIO (not
 * mounted); on error *out is NULL and nothing is left to close.
 */
int fs_session_mount(const char *name, const char *opts, const struct fuse_lowlevel_ops *ops,
		     size_t ops_size, void *userdata, const char *mountpoint,
		     struct fuse_session **out);
/* Removes the signal handlers and destroys se (unmounted already, or never
 * mounted); NULL is nothing. */
void fs_session_close(struct fuse_session *se);

/* What INIT asks of the kernel for caskfs (and so for the null filesystem
 * too); writeback: the kernel's writeback cache. Returns whether the kernel
 * sends no OPEN for files (FUSE_CAP_NO_OPEN_SUPPORT). */
bool fs_session_init_conn(struct fuse_conn_info *conn, bool writeback);
/* Whether the kernel stops sending OPENDIR (and RELEASEDIR) once one is
 * answered ENOSYS, keeping directory listings cached then
 * (FUSE_CAP_NO_OPENDIR_SUPPORT, known after INIT). */
bool fs_session_no_opendir(void);

/* How requests travel: through /dev/fuse only, or also through io_uring
 * rings where the kernel allows (uring.c); ON is AUTO whose caller checked
 * that it does (fs_session_uring_allowed). */
enum fs_uring_mode { FS_URING_OFF, FS_URING_AUTO, FS_URING_ON };
/* Whether this kernel lets FUSE use io_uring (the fuse module's enable_uring). */
bool fs_session_uring_allowed(void);

/* Serves se's requests until it is unmounted or told to exit: 0, or the
 * first read error as -errno. Counts each request by opcode into
 * requests[FS_OPCODES] unless that is NULL. */
int fs_session_loop(struct fuse_session *se, _Atomic uint64_t *requests, enum fs_uring_mode uring);
/* For the request the calling thread serves: a buffer of size bytes to
 * build its answer in that fuse_reply_buf then sends without copying (the
 * ring entry's payload; the request's own payload is overwritten), or NULL
 * (a request from /dev/fuse, or too large). Valid until the reply. */
void *fs_session_reply_buffer(size_t size);
/* Whether requests now come through io_uring; served (may be NULL) gets
 * how many did. */
bool fs_session_uring(uint64_t *served);
/* A change from a peer was applied: requests being served now may have
 * read the state before it (fs_session_request_raced). */
void fs_session_note_change(void);
/* For the request the calling thread serves: whether a change from a peer
 * was applied since it was read (its reply must not be cached long); and
 * whether it is a write by a caller without CAP_FSETID, which must clear
 * setuid and setgid (FUSE_WRITE_KILL_SUIDGID). */
bool fs_session_request_raced(void);
bool fs_session_request_kills_suidgid(void);
/* Whether the kernel took FUSE_HANDLE_KILLPRIV_V2: the daemon clears
 * setuid and setgid on write, truncate and chown (killpriv.c). */
bool fs_session_killpriv_v2(void);
/* The lower-case name of FUSE opcode op ("lookup", "batch_forget"), or NULL. */
const char *fs_opcode_name(unsigned op);

#endif
