/*
 * io - whole reads and writes at an offset: a short pread or pwrite is not
 * an error, only a reason to go on from where it stopped. The engine's files
 * (segments, hint files) are written and read through these and nothing else.
 */
#include <errno.h>
#include <unistd.h>

#include "store_i.h"

void store_iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

int store_pwritev_full(int fd, struct iovec *iov, int cnt, off_t off)
{
	while (cnt > 0) {
		ssize_t n = pwritev(fd, iov, cnt, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		off += n;
		store_iov_advance(&iov, &cnt, (size_t)n);
	}
	return 0;
}

int store_write_full(int fd, const void *buf, size_t len, off_t off)
{
	struct iovec iov = { (void *)buf, len };

	return store_pwritev_full(fd, &iov, 1, off);
}

ssize_t store_read_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, off + (off_t)done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}
