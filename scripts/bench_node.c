/*
 * bench_node - a memcache text-protocol load generator, the same for every
 * server it measures (scripts/bench-node runs it against memcached and a
 * caskfs node in one run). Each thread owns one connection and keeps DEPTH
 * requests in flight: it writes DEPTH requests, then reads DEPTH replies.
 *
 *   bench_node HOST PORT get|set VALUE_BYTES SECONDS THREADS DEPTH KEYS
 *
 * Keys are "bench:<n>" for n < KEYS; `set` writes random bytes; `get` first
 * stores every key once (untimed), then reads them. Prints "<requests/s>" and
 * exits non-zero on any error reply or short read.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *host;
static int port, depth, nkeys;
static size_t vsize;
static bool is_get;
static double seconds;
static _Atomic uint64_t done;
static _Atomic int failed;
static int fill_keys; /* when set: store keys 0..fill_keys-1 once, in order */

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct reader {
	int fd;
	char buf[1 << 16];
	size_t pos, len;
};

static int fill(struct reader *r)
{
	if (r->pos == r->len)
		r->pos = r->len = 0;
	if (r->len == sizeof(r->buf)) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	ssize_t n = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
	if (n <= 0)
		return -1;
	r->len += (size_t)n;
	return 0;
}

/* The next line, without CRLF, copied into out. */
static int line(struct reader *r, char *out, size_t cap)
{
	for (;;) {
		char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
		if (nl) {
			size_t n = (size_t)(nl - (r->buf + r->pos));
			if (n >= cap)
				return -1;
			memcpy(out, r->buf + r->pos, n);
			out[n > 0 && out[n - 1] == '\r' ? n - 1 : n] = 0;
			r->pos += n + 1;
			return 0;
		}
		if (fill(r) < 0)
			return -1;
	}
}

static int skip(struct reader *r, size_t n)
{
	while (n) {
		if (r->pos == r->len && fill(r) < 0)
			return -1;
		size_t k = r->len - r->pos < n ? r->len - r->pos : n;
		r->pos += k;
		n -= k;
	}
	return 0;
}

static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct reader *r = calloc(1, sizeof(*r));
	size_t cap = (size_t)depth * (vsize + 128);
	char *out = malloc(cap), *val = malloc(vsize + 2), lbuf[512];
	int one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	r->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(r->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("connect");
		atomic_store(&failed, 1);
		return NULL;
	}
	for (size_t i = 0; i < vsize; i++)
		val[i] = (char)rand_r(&seed);
	double end = now() + seconds;
	int next = 0;
	while (now() < end && !atomic_load(&failed) && (!fill_keys || next < fill_keys)) {
		size_t len = 0;
		for (int d = 0; d < depth; d++) {
			int k = fill_keys ? next++ : rand_r(&seed) % nkeys;
			if (is_get) {
				len += (size_t)sprintf(out + len, "get bench:%d\r\n", k);
			} else {
				len += (size_t)sprintf(out + len, "set bench:%d 0 0 %zu\r\n", k,
						       vsize);
				memcpy(out + len, val, vsize);
				memcpy(out + len + vsize, "\r\n", 2);
				len += vsize + 2;
			}
		}
		for (size_t off = 0; off < len;) {
			ssize_t w = write(r->fd, out + off, len - off);
			if (w <= 0) {
				atomic_store(&failed, 1);
				break;
			}
			off += (size_t)w;
		}
		for (int d = 0; d < depth && !atomic_load(&failed); d++) {
			size_t n;
			char key[300];
			unsigned flags;
			if (line(r, lbuf, sizeof(lbuf)) < 0)
				goto bad;
			if (!is_get) {
				if (strcmp(lbuf, "STORED") != 0)
					goto bad;
				continue;
			}
			if (sscanf(lbuf, "VALUE %299s %u %zu", key, &flags, &n) != 3 || n != vsize ||
			    skip(r, n + 2) < 0 || line(r, lbuf, sizeof(lbuf)) < 0 ||
			    strcmp(lbuf, "END") != 0)
				goto bad;
		}
		atomic_fetch_add(&done, (uint64_t)depth);
	}
	close(r->fd);
	free(r);
	free(out);
	free(val);
	return NULL;
bad:
	fprintf(stderr, "bench_node: unexpected reply '%s'\n", lbuf);
	atomic_store(&failed, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr, "usage: bench_node HOST PORT get|set VALUE_BYTES SECONDS THREADS "
				"DEPTH KEYS\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	is_get = strcmp(argv[3], "get") == 0;
	vsize = (size_t)atol(argv[4]);
	seconds = atof(argv[5]);
	int threads = atoi(argv[6]);
	depth = atoi(argv[7]);
	nkeys = atoi(argv[8]);
	if (threads < 1 || threads > 256 || depth < 1 || nkeys < 1)
		return 2;
	pthread_t t[256];
	if (is_get) {
		/* every key exists before the timed reads */
		int saved_depth = depth, saved_keys = nkeys;
		double saved_seconds = seconds;
		is_get = false;
		depth = 1;
		seconds = 1e9;
		fill_keys = saved_keys;
		worker((void *)(uintptr_t)1000);
		is_get = true;
		depth = saved_depth;
		seconds = saved_seconds;
		fill_keys = 0;
		atomic_store(&done, 0);
		if (atomic_load(&failed))
			return 1;
	}
	double t0 = now();
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double el = now() - t0;
	if (atomic_load(&failed))
		return 1;
	printf("%.0f\n", (double)atomic_load(&done) / el);
	return 0;
}
