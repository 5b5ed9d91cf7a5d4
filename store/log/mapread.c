/*
 * mapread - copies out of segment mappings, guarded against SIGBUS. The one
 * idea: a page that cannot be read (a media error, or a segment file
 * truncated behind our back) raises SIGBUS, which the handler turns into -EIO
 * for the reading thread instead of killing the process. A SIGBUS outside a
 * guarded copy gets the handler there was before.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

#include "hash_i.h"
#include "store_i.h"

static _Thread_local sigjmp_buf *bus_guard;
static struct sigaction bus_prev;
static pthread_mutex_t bus_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	if (bus_guard)
		siglongjmp(*bus_guard, 1);
	if ((bus_prev.sa_flags & SA_SIGINFO) && bus_prev.sa_sigaction) {
		bus_prev.sa_sigaction(sig, info, ctx);
	} else if (bus_prev.sa_handler != SIG_DFL && bus_prev.sa_handler != SIG_IGN &&
		   bus_prev.sa_handler) {
		bus_prev.sa_handler(sig);
	} else {
		/* Returning re-runs the faulting access under the default action. */
		sigaction(SIGBUS, &bus_prev, NULL);
	}
}

/* Installs the handler unless it is the current one (someone may have replaced
 * it since the last store_open); what it replaces becomes the fallback. */
void store_mapread_install(void)
{
	struct sigaction sa, cur;

	pthread_mutex_lock(&bus_mu);
	sigaction(SIGBUS, NULL, &cur);
	if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus) {
		pthread_mutex_unlock(&bus_mu);
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	/* NODEFER: we leave the handler by siglongjmp without restoring a mask. */
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &bus_prev);
	pthread_mutex_unlock(&bus_mu);
}

/* Hashing the source first leaves it in cache for the copy: measured, this
 * costs less than hashing the copy afterwards. The mapped bytes of a record
 * never change, so the hash is the copy's. */
static __attribute__((noinline)) void copy_out(const uint8_t *src, void *dst, size_t len,
					       uint64_t *hash)
{
	if (hash)
		*hash = store_hash_bulk(src, len);
	memcpy(dst, src, len);
}

int store_mapread_copy(const struct store_segment *seg, uint64_t off, void *dst, size_t len,
		       uint64_t *hash)
{
	sigjmp_buf jb;

	if (off + len > atomic_load(&seg->size) || off + len > seg->map_len)
		return -EIO;
	if (sigsetjmp(jb, 0)) {
		bus_guard = NULL;
		return -EIO;
	}
	bus_guard = &jb;
	copy_out(seg->map + off, dst, len, hash);
	bus_guard = NULL;
	return 0;
}
