/*
 * dirlock - one process owns a DATA_DIR: it holds an flock on DATA_DIR/LOCK and
 * writes its pid there, so a second process can say who the owner is. The
 * kernel drops the lock when the owner dies, however it dies.
 * Layout: docs/FORMAT.md ("DATA_DIR").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "store_i.h"

int store_dirlock_take(struct store *s)
{
	char path[4096], pid[32];
	ssize_t n;
	int fd, rc;

	snprintf(path, sizeof(path), "%s/LOCK", s->dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (rc == -EWOULDBLOCK) {
			n = pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? n : 0] = '\0';
			pid[strcspn(pid, "\n")] = '\0';
			store_logf(s, STORE_LOG_ERROR,
				   "DATA_DIR %s is in use by process %s (it holds %s)", s->dir,
				   pid[0] ? pid : "?", path);
			rc = -EBUSY;
		} else {
			store_logf(s, STORE_LOG_ERROR, "cannot lock %s: %s", path, strerror(-rc));
		}
		close(fd);
		return rc;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		rc = -errno;
		store_logf(s, STORE_LOG_ERROR, "cannot write %s: %s", path, strerror(-rc));
		close(fd);
		return rc;
	}
	s->lock_fd = fd;
	return 0;
}
