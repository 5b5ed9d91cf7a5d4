/*
 * read_all - all of a descriptor read into memory, up to a bound: the value
 * `caskfs kv put` stores, from a file or from stdin (a pipe has no size to
 * ask for, so the buffer doubles as it fills).
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli_i.h"

int cli_read_all(int fd, size_t max, void **out, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (n == cap) {
			if (n > max) {
				free(buf);
				return -EFBIG;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int rc = -errno;
			free(buf);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return -EFBIG;
	}
	*out = buf;
	*len = n;
	return 0;
}
