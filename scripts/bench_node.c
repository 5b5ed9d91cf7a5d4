/*
 * bench_node - a memcache text-protocol load generator, the same for every
 * server it measures (scripts/bench-node runs it against memcached and a
 * caskfs node in one run, with and without TLS). Each thread owns one
 * connection and keeps DEPTH requests in flight: it writes DEPTH requests,
 * then reads DEPTH replies.
 *
 *   bench_node HOST PORT get|set|fill VALUE_BYTES SECONDS CONNS DEPTH KEYS [CA CERT KEY]
 *
 * Keys are "b<VALUE_BYTES>:<n>" for n < KEYS. Every value written is unique:
 * a window of a 16 MiB random pool at an offset that moves with each
 * request, stamped with the connection and a counter. `fill` stores every
 * key once (untimed by the caller: run it before `get`), `set` overwrites
 * random keys, `get` reads random keys and checks each length. With CA,
 * CERT and KEY the connections are TLS 1.3 (the server verified against CA,
 * CERT and KEY shown to it), handshakes done before the clock starts.
 * Prints "<requests/s>" and exits non-zero on any error reply or short read.
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

#include <openssl/err.h>
#include <openssl/ssl.h>

#define POOL (16u << 20)

static const char *host;
static int port, depth, nkeys;
static size_t vsize;
static enum { OP_GET, OP_SET, OP_FILL } op;
static double seconds;
static _Atomic uint64_t done;
static _Atomic int failed;
static char *pool;
static SSL_CTX *tls;
static pthread_barrier_t ready;
static double t_start;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct conn {
	int fd;
	SSL *ssl;
	char buf[1 << 16];
	size_t pos, len;
};

static ssize_t conn_read(struct conn *c, void *p, size_t n)
{
	if (c->ssl) {
		int r = SSL_read(c->ssl, p, n > (1u << 30) ? 1 << 30 : (int)n);
		return r > 0 ? r : -1;
	}
	return read(c->fd, p, n);
}

static int conn_write(struct conn *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w;
		if (c->ssl) {
			int r = SSL_write(c->ssl, p, n > (1u << 30) ? 1 << 30 : (int)n);
			w = r > 0 ? r : -1;
		} else {
			w = write(c->fd, p, n);
		}
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fill(struct conn *r)
{
	if (r->pos == r->len)
		r->pos = r->len = 0;
	if (r->len == sizeof(r->buf)) {
		memmove(r->buf, r->buf + r->pos, r->len - r->pos);
		r->len -= r->pos;
		r->pos = 0;
	}
	ssize_t n = conn_read(r, r->buf + r->len, sizeof(r->buf) - r->len);
	if (n <= 0)
		return -1;
	r->len += (size_t)n;
	return 0;
}

/* The next line, without CRLF, copied into out. */
static int line(struct conn *r, char *out, size_t cap)
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

static int skip(struct conn *r, size_t n)
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

static int conn_open(struct conn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("bench_node: connect");
		return -1;
	}
	if (!tls)
		return 0;
	c->ssl = SSL_new(tls);
	SSL_set_fd(c->ssl, c->fd);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host);
	if (SSL_connect(c->ssl) != 1) {
		fprintf(stderr, "bench_node: TLS handshake failed: %s\n",
			ERR_error_string(ERR_get_error(), NULL));
		return -1;
	}
	return 0;
}

static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, seed = id * 7919u + 1;
	struct conn *r = calloc(1, sizeof(*r));
	size_t cap = (size_t)depth * (vsize + 128);
	char *out = malloc(cap), lbuf[512];
	uint64_t count = 0;
	int next = 0;
	bool ok = r && out && conn_open(r) == 0;

	if (!ok)
		atomic_store(&failed, 1);
	pthread_barrier_wait(&ready); /* connected */
	pthread_barrier_wait(&ready); /* t_start set */
	if (!ok)
		goto end;
	double end = t_start + seconds;
	while ((op == OP_FILL ? next < nkeys : now() < end) && !atomic_load(&failed)) {
		size_t len = 0;
		int n = 0;
		for (int d = 0; d < depth && (op != OP_FILL || next < nkeys); d++, n++) {
			int k = op == OP_FILL ? next++ : rand_r(&seed) % nkeys;
			if (op == OP_GET) {
				len += (size_t)sprintf(out + len, "get b%zu:%d\r\n", vsize, k);
				continue;
			}
			len += (size_t)sprintf(out + len, "set b%zu:%d 0 0 %zu\r\n", vsize, k, vsize);
			/* a unique value: a moving window of the pool, stamped */
			size_t off = (count * 4099 + id * 65537) % (POOL - vsize);
			memcpy(out + len, pool + off, vsize);
			char stamp[32];
			int sl = snprintf(stamp, sizeof(stamp), "%u:%lu;", id, (unsigned long)count);
			memcpy(out + len, stamp, (size_t)sl < vsize ? (size_t)sl : vsize);
			count++;
			memcpy(out + len + vsize, "\r\n", 2);
			len += vsize + 2;
		}
		if (conn_write(r, out, len) < 0) {
			atomic_store(&failed, 1);
			break;
		}
		for (int d = 0; d < n && !atomic_load(&failed); d++) {
			size_t vn;
			char key[300];
			unsigned flags;
			if (line(r, lbuf, sizeof(lbuf)) < 0)
				goto bad;
			if (op != OP_GET) {
				if (strcmp(lbuf, "STORED") != 0)
					goto bad;
				continue;
			}
			if (sscanf(lbuf, "VALUE %299s %u %zu", key, &flags, &vn) != 3 || vn != vsize ||
			    skip(r, vn + 2) < 0 || line(r, lbuf, sizeof(lbuf)) < 0 ||
			    strcmp(lbuf, "END") != 0)
				goto bad;
		}
		atomic_fetch_add(&done, (uint64_t)n);
	}
	goto end;
bad:
	fprintf(stderr, "bench_node: unexpected reply '%s'\n", lbuf);
	atomic_store(&failed, 1);
end:
	if (r && r->ssl)
		SSL_free(r->ssl);
	if (r)
		close(r->fd);
	free(r);
	free(out);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 9 && argc != 12) {
		fprintf(stderr, "usage: bench_node HOST PORT get|set|fill VALUE_BYTES SECONDS CONNS "
				"DEPTH KEYS [CA CERT KEY]\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	op = strcmp(argv[3], "get") == 0 ? OP_GET : strcmp(argv[3], "fill") == 0 ? OP_FILL : OP_SET;
	vsize = (size_t)atol(argv[4]);
	seconds = atof(argv[5]);
	int threads = atoi(argv[6]);
	depth = atoi(argv[7]);
	nkeys = atoi(argv[8]);
	if (threads < 1 || threads > 256 || depth < 1 || nkeys < 1 || vsize < 1 ||
	    vsize > POOL / 2)
		return 2;
	if (op == OP_FILL)
		threads = 1;
	if (argc == 12) {
		tls = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_min_proto_version(tls, TLS1_3_VERSION);
		if (SSL_CTX_load_verify_locations(tls, argv[9], NULL) != 1 ||
		    SSL_CTX_use_certificate_chain_file(tls, argv[10]) != 1 ||
		    SSL_CTX_use_PrivateKey_file(tls, argv[11], SSL_FILETYPE_PEM) != 1) {
			fprintf(stderr, "bench_node: cannot load the TLS files\n");
			return 2;
		}
		SSL_CTX_set_verify(tls, SSL_VERIFY_PEER, NULL);
		/* the load generator's own TLS runs on the same cores as the
		 * server: several records per read, not two reads per record */
		SSL_CTX_set_read_ahead(tls, 1);
		SSL_CTX_set_default_read_buffer_len(tls, 64 << 10);
	}
	pool = malloc(POOL);
	if (!pool)
		return 1;
	unsigned seed = 12345;
	for (size_t i = 0; i < POOL; i++)
		pool[i] = (char)rand_r(&seed);
	pthread_t t[256];
	pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
	/* every connection is open (and through its handshake) before the clock */
	pthread_barrier_wait(&ready);
	t_start = now();
	pthread_barrier_wait(&ready);
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	double el = now() - t_start;
	if (atomic_load(&failed))
		return 1;
	printf("%.0f\n", (double)atomic_load(&done) / el);
	return 0;
}
