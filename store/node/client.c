/*
 * client - the blocking node-protocol client. The socket is non-blocking and
 * every wait is a poll() with the connection's deadline, so a dead or stuck
 * peer costs at most the timeout, never a hung thread. Under the protocol the
 * bytes go plainly, through TLS (the process's client context, mc_tls_init()),
 * or, after a shared-secret handshake without TLS, as sealed records
 * (seal.h). Every request and reply: docs/PROTOCOL.md.
 */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <limits.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "proto.h"
#include "seal.h"
#include "tls.h"

/* Small pieces of a request are gathered into one TLS record up to this. */
#define TLS_GATHER 16384

/* Sealed records received and not yet opened, and one opened record. */
struct mc_sealed {
	struct seal s;
	uint8_t wire[2 * SEAL_RECORD_MAX]; /* [wpos, wlen) received */
	size_t wpos, wlen;
	uint8_t plain[SEAL_PLAIN_MAX]; /* [ppos, plen) opened, not yet read */
	size_t ppos, plen;
	uint8_t tx[SEAL_PLAIN_MAX]; /* plaintext gathered for the next record */
	size_t txlen;
	uint8_t rec[SEAL_RECORD_MAX]; /* the record being sent */
};

struct mc_conn {
	int fd;
	int io_ms;
	uint64_t sent, received; /* bytes of the protocol, before TLS or sealing */
	char *buf; /* received bytes [pos, len) not yet consumed */
	size_t pos, len, cap;
	SSL *ssl;		  /* TLS, or NULL */
	struct tls_out tx;	  /* TLS: records made, not yet sent */
	struct mc_sealed *sealed; /* sealed with the secret, or NULL */
	char *gather;		  /* TLS: TLS_GATHER bytes for small pieces */
	char addr[300];
};

/* The process's TLS client context: set before threads connect
 * (mc_tls_init()), only read afterwards. */
static SSL_CTX *client_tls;

int mc_tls_init(const struct tls_files *f, char *err, size_t errcap)
{
	SSL_CTX *ctx = NULL;
	int rc;

	if (tls_files_given(f) && (rc = tls_client_ctx(f, &ctx, err, errcap)) < 0)
		return rc;
	tls_ctx_free(client_tls);
	client_tls = ctx;
	return 0;
}

bool mc_tls_enabled(void)
{
	return client_tls != NULL;
}

int mc_split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
	const char *colon = strrchr(addr, ':');
	const char *h = addr;
	size_t hl;

	if (!colon || colon[1] == 0 || strlen(colon + 1) >= pcap)
		return -EINVAL;
	hl = (size_t)(colon - addr);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap)
		return -EINVAL;
	for (const char *p = colon + 1; *p; p++)
		if (*p < '0' || *p > '9')
			return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	strcpy(port, colon + 1);
	return 0;
}

/* Waits for events on fd for at most ms; -ETIMEDOUT when nothing came. */
static int wait_fd(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n == 0 ? -ETIMEDOUT : 0;
}

static int connect_one(const struct addrinfo *ai, int ms)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	int one = 1, err = 0, rc;
	socklen_t el = sizeof(err);

	if (fd < 0)
		return -errno;
	if (ai->ai_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			rc = -errno;
			close(fd);
			return rc;
		}
		rc = wait_fd(fd, POLLOUT, ms);
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			rc = -errno;
		if (rc == 0 && err)
			rc = -err;
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	return fd;
}

/* ---- the transport: plain, TLS or sealed ---- */

/* After an SSL call that returned r: waits for what it asked for (0: call
 * again), or fails: -ECONNRESET at the end, -EACCES when a certificate was
 * refused (by either end), -EPROTO for other TLS failures (both logged with
 * OpenSSL's reason), -ETIMEDOUT, -errno. */
/* Sends the records TLS has made. */
static int tx_flush(struct mc_conn *c)
{
	int rc;

	while ((rc = tls_out_send(&c->tx, c->fd)) == -EAGAIN)
		if ((rc = wait_fd(c->fd, POLLOUT, c->io_ms)) < 0)
			return rc;
	return rc;
}

static int tls_wait(struct mc_conn *c, int r)
{
	int e = SSL_get_error(c->ssl, r), rc;
	char why[256];

	switch (e) {
	case SSL_ERROR_WANT_READ:
		/* what it made first (a handshake's flight) goes out before */
		if ((rc = tx_flush(c)) < 0)
			return rc;
		return wait_fd(c->fd, POLLIN, c->io_ms);
	case SSL_ERROR_WANT_WRITE:
		return tx_flush(c); /* the records gathered are at their limit */
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		rc = errno && errno != EAGAIN ? -errno : -ECONNRESET;
		ERR_clear_error();
		return rc;
	default:
		break;
	}
	long verify = SSL_get_verify_result(c->ssl);
	int reason = ERR_GET_REASON(ERR_peek_error());
	bool cert = verify != X509_V_OK || reason == SSL_R_CERTIFICATE_VERIFY_FAILED ||
		    reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED ||
		    reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA ||
		    reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
		    reason == SSL_R_TLSV1_ALERT_ACCESS_DENIED;
	if (verify != X509_V_OK)
		snprintf(why, sizeof(why), "the node's certificate is refused: %s",
			 X509_verify_cert_error_string(verify));
	else
		tls_last_error(why, sizeof(why));
	ERR_clear_error();
	fprintf(stderr, "caskfs: %s: TLS: %s\n", c->addr, why);
	return cert ? -EACCES : -EPROTO;
}

/* Writes all n bytes at p to the socket or through TLS, or fails. */
static int write_all(struct mc_conn *c, const void *p, size_t n)
{
	const char *b = p;
	int rc;

	while (n > 0) {
		if (c->ssl) {
			int w = SSL_write(c->ssl, b, n > INT_MAX ? INT_MAX : (int)n);
			if (w > 0) {
				b += w;
				n -= (size_t)w;
			} else if ((rc = tls_wait(c, w)) < 0) {
				return rc;
			}
			if (n == 0)
				return tx_flush(c);
			continue;
		}
		ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
		if (w > 0) {
			b += w;
			n -= (size_t)w;
		} else if (w < 0 && errno != EINTR) {
			if (errno != EAGAIN)
				return -errno;
			if ((rc = wait_fd(c->fd, POLLOUT, c->io_ms)) < 0)
				return rc;
		}
	}
	return 0;
}

/* Receives at most cap bytes from the socket or through TLS, waiting up to
 * io_ms each time none are there: how many (> 0), -ECONNRESET at the end of
 * the stream, -ETIMEDOUT, or -errno. */
static ssize_t read_some(struct mc_conn *c, void *dst, size_t cap)
{
	int rc;

	for (;;) {
		if (c->ssl) {
			int r = SSL_read(c->ssl, dst, cap > INT_MAX ? INT_MAX : (int)cap);
			if (r > 0)
				return r;
			if ((rc = tls_wait(c, r)) < 0)
				return rc;
			continue;
		}
		ssize_t r = recv(c->fd, dst, cap, 0);
		if (r > 0)
			return r;
		if (r == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if ((rc = wait_fd(c->fd, POLLIN, c->io_ms)) < 0)
			return rc;
	}
}

/* Seals what is gathered into one record and sends it. */
static int sealed_flush(struct mc_conn *c)
{
	struct mc_sealed *s = c->sealed;

	if (s->txlen == 0)
		return 0;
	size_t n = seal_record(&s->s.tx, s->tx, s->txlen, s->rec);
	s->txlen = 0;
	return write_all(c, s->rec, n);
}

/* Sends the n bytes at p as sealed records, gathering small pieces. */
static int sealed_send(struct mc_conn *c, const char *p, size_t n)
{
	struct mc_sealed *s = c->sealed;
	int rc;

	while (n > 0) {
		if (s->txlen == 0 && n >= SEAL_PLAIN_MAX) {
			/* a whole record's worth: sealed from the caller's bytes */
			size_t len = seal_record(&s->s.tx, p, SEAL_PLAIN_MAX, s->rec);
			if ((rc = write_all(c, s->rec, len)) < 0)
				return rc;
			p += SEAL_PLAIN_MAX;
			n -= SEAL_PLAIN_MAX;
			continue;
		}
		size_t k = SEAL_PLAIN_MAX - s->txlen < n ? SEAL_PLAIN_MAX - s->txlen : n;
		memcpy(s->tx + s->txlen, p, k);
		s->txlen += k;
		p += k;
		n -= k;
		if (s->txlen == SEAL_PLAIN_MAX && (rc = sealed_flush(c)) < 0)
			return rc;
	}
	return 0;
}

/* Receives up to cap bytes of plaintext from sealed records into dst. */
static ssize_t sealed_recv(struct mc_conn *c, void *dst, size_t cap)
{
	struct mc_sealed *s = c->sealed;

	for (;;) {
		if (s->ppos < s->plen) {
			size_t k = s->plen - s->ppos < cap ? s->plen - s->ppos : cap;
			memcpy(dst, s->plain + s->ppos, k);
			s->ppos += k;
			return (ssize_t)k;
		}
		long size = seal_peek(s->wire + s->wpos, s->wlen - s->wpos);
		if (size < 0)
			return -EPROTO;
		if (size > 0 && (size_t)size <= s->wlen - s->wpos) {
			size_t plain = (size_t)size - SEAL_HEADER - SEAL_TAG, n;
			/* straight into the caller's buffer when it has room */
			bool direct = cap >= plain;
			if (seal_open(&s->s.rx, s->wire + s->wpos, s->wlen - s->wpos,
				      direct ? dst : s->plain, direct ? cap : sizeof(s->plain),
				      &n) != size)
				return -EPROTO;
			s->wpos += (size_t)size;
			if (direct)
				return (ssize_t)n;
			s->ppos = 0;
			s->plen = n;
			continue;
		}
		if (s->wpos > 0) {
			memmove(s->wire, s->wire + s->wpos, s->wlen - s->wpos);
			s->wlen -= s->wpos;
			s->wpos = 0;
		}
		ssize_t r = read_some(c, s->wire + s->wlen, sizeof(s->wire) - s->wlen);
		if (r < 0)
			return r;
		s->wlen += (size_t)r;
	}
}

/* Receives at most cap bytes of the protocol into dst (see read_some()). */
static ssize_t recv_some(struct mc_conn *c, void *dst, size_t cap)
{
	ssize_t r = c->sealed ? sealed_recv(c, dst, cap) : read_some(c, dst, cap);

	if (r > 0)
		c->received += (uint64_t)r;
	return r;
}

/* Sends iov through TLS, small pieces gathered into one record. */
static int tls_send(struct mc_conn *c, const struct iovec *iov, int n)
{
	size_t used = 0;
	int rc;

	if (!c->gather && !(c->gather = malloc(TLS_GATHER)))
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const char *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;
		if (len == 0)
			continue; /* an empty value's base may be NULL */
		if (len > TLS_GATHER - used) {
			if (used && (rc = write_all(c, c->gather, used)) < 0)
				return rc;
			used = 0;
		}
		if (len >= TLS_GATHER) {
			if ((rc = write_all(c, p, len)) < 0)
				return rc;
			continue;
		}
		memcpy(c->gather + used, p, len);
		used += len;
	}
	return used ? write_all(c, c->gather, used) : 0;
}

int mc_send(struct mc_conn *c, const struct iovec *iov, int n)
{
	struct iovec v[8];
	int rc;

	if (n > 8)
		return -EINVAL;
	for (int i = 0; i < n; i++)
		c->sent += iov[i].iov_len;
	if (c->ssl)
		return tls_send(c, iov, n);
	if (c->sealed) {
		for (int i = 0; i < n; i++)
			if ((rc = sealed_send(c, iov[i].iov_base, iov[i].iov_len)) < 0)
				return rc;
		return sealed_flush(c);
	}
	memcpy(v, iov, sizeof(*v) * (size_t)n);
	struct iovec *p = v;
	while (n > 0) {
		struct msghdr m = { .msg_iov = p, .msg_iovlen = (size_t)n };
		ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if ((rc = wait_fd(c->fd, POLLOUT, c->io_ms)) < 0)
				return rc;
			continue;
		}
		while (n > 0 && (size_t)w >= p->iov_len) {
			w -= (ssize_t)p->iov_len;
			p++;
			n--;
		}
		if (n > 0) {
			p->iov_base = (char *)p->iov_base + w;
			p->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* ---- connecting ---- */

/* Sends iov and reads the one line of the reply (see mc_line()). */
static int request(struct mc_conn *c, const struct iovec *iov, int n, char **line, size_t *len)
{
	int rc = mc_send(c, iov, n);

	return rc < 0 ? rc : mc_line(c, line, len);
}

/* Sends one command line, CRLF added. */
static int send_cmd(struct mc_conn *c, const char *cmd)
{
	struct iovec iov[2] = { { (void *)cmd, strlen(cmd) }, { "\r\n", 2 } };

	return mc_send(c, iov, 2);
}

/* Reads the next line of a reply that ends in "END": 1 with the line (see
 * mc_line()), 0 at END, or -errno. */
static int reply_line(struct mc_conn *c, char **line, size_t *len)
{
	int rc = mc_line(c, line, len);

	return rc < 0 ? rc : strcmp(*line, "END") != 0;
}

/* The challenge-response; on success cn and sn hold both nonces. */
static int authenticate(struct mc_conn *c, const struct auth_key *key, uint8_t cn[AUTH_NONCE],
			uint8_t sn[AUTH_NONCE])
{
	uint8_t proof[AUTH_PROOF];
	char cnhex[2 * AUTH_NONCE + 1], phex[2 * AUTH_PROOF + 1], cmd[160];
	char *line;
	size_t len;
	int rc;

	auth_nonce(cn);
	auth_hex(cn, AUTH_NONCE, cnhex);
	snprintf(cmd, sizeof(cmd), "auth %s\r\n", cnhex);
	struct iovec iov = { cmd, strlen(cmd) };
	if ((rc = request(c, &iov, 1, &line, &len)) < 0)
		return rc;
	if (len != 6 + 2 * AUTH_NONCE || memcmp(line, "NONCE ", 6) != 0 ||
	    !auth_unhex(line + 6, 2 * AUTH_NONCE, sn, AUTH_NONCE))
		return -EACCES;
	auth_proof(key, 'c', cn, sn, proof);
	auth_hex(proof, sizeof(proof), phex);
	snprintf(cmd, sizeof(cmd), "auth %s %s\r\n", cnhex, phex);
	iov = (struct iovec){ cmd, strlen(cmd) };
	if ((rc = request(c, &iov, 1, &line, &len)) < 0)
		return rc;
	/* the server proves it holds the secret too */
	if (len != 3 + 2 * AUTH_PROOF || memcmp(line, "OK ", 3) != 0 ||
	    !auth_unhex(line + 3, 2 * AUTH_PROOF, proof, sizeof(proof)) ||
	    !auth_check(key, 's', cn, sn, proof))
		return -EACCES;
	return 0;
}

/* After the challenge-response without TLS every later byte is sealed;
 * what the buffer holds beyond the answer came sealed already. */
static int seal_session(struct mc_conn *c, const struct auth_key *key, const uint8_t *cn,
			const uint8_t *sn)
{
	struct mc_sealed *s;
	size_t rest = c->len - c->pos;

	if (rest > sizeof(s->wire))
		return -EPROTO;
	if (!(s = calloc(1, sizeof(*s))))
		return -ENOMEM;
	seal_init(&s->s, key, cn, sn, 'c');
	memcpy(s->wire, c->buf + c->pos, rest);
	s->wlen = rest;
	c->pos = c->len = 0;
	c->sealed = s;
	return 0;
}

/* The TLS handshake on c's socket, the server verified as host. */
static int tls_start(struct mc_conn *c, const char *host)
{
	unsigned char ip[16];
	int rc, r;

	c->ssl = tls_session(client_tls, c->fd, &c->tx);
	if (!c->ssl) {
		ERR_clear_error();
		return -ENOMEM;
	}
	/* the certificate must name the address dialled: an IP SAN for an
	 * address, a DNS SAN (and SNI) for a name */
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1
		    ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1
		    : SSL_set1_host(c->ssl, host) != 1 ||
			  SSL_set_tlsext_host_name(c->ssl, host) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	SSL_set_connect_state(c->ssl);
	while ((r = SSL_do_handshake(c->ssl)) != 1)
		if ((rc = tls_wait(c, r)) < 0)
			return rc == -ECONNRESET ? -EPROTO : rc;
	return tx_flush(c); /* the client's last flight */
}

int mc_connect(const char *addr, const struct auth_key *key, int connect_ms, int io_ms,
	       struct mc_conn **out)
{
	char host[256], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	struct mc_conn *c;
	int fd = -ECONNREFUSED, rc;
	bool unix_socket = strncmp(addr, "unix:", 5) == 0;

	*out = NULL;
	if (unix_socket) {
		struct sockaddr_un ua = { .sun_family = AF_UNIX };
		struct addrinfo ai = { .ai_family = AF_UNIX, .ai_socktype = SOCK_STREAM,
				       .ai_addr = (struct sockaddr *)&ua, .ai_addrlen = sizeof(ua) };
		if (strlen(addr + 5) >= sizeof(ua.sun_path))
			return -ENAMETOOLONG;
		strcpy(ua.sun_path, addr + 5);
		fd = connect_one(&ai, connect_ms);
		key = NULL; /* the control socket trusts whoever can open it */
		goto connected;
	}
	if (mc_split_addr(addr, host, sizeof(host), port, sizeof(port)) < 0)
		return -EINVAL;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0)
		return -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next)
		if ((fd = connect_one(ai, connect_ms)) >= 0)
			break;
	freeaddrinfo(res);
connected:
	if (fd < 0)
		return fd;
	c = calloc(1, sizeof(*c));
	if (c) {
		c->cap = 16384;
		c->buf = malloc(c->cap);
	}
	if (!c || !c->buf) {
		free(c);
		close(fd);
		return -ENOMEM;
	}
	c->fd = fd;
	c->io_ms = io_ms;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (client_tls && !unix_socket && (rc = tls_start(c, host)) < 0) {
		mc_close(c);
		return rc;
	}
	uint8_t cn[AUTH_NONCE], sn[AUTH_NONCE];
	if (key && ((rc = authenticate(c, key, cn, sn)) < 0 ||
		    (!c->ssl && (rc = seal_session(c, key, cn, sn)) < 0))) {
		mc_close(c);
		return rc;
	}
	*out = c;
	return 0;
}

void mc_close(struct mc_conn *c)
{
	if (!c)
		return;
	if (c->ssl) {
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	free(c->tx.p);
	if (c->sealed) {
		seal_wipe(&c->sealed->s);
		free(c->sealed);
	}
	close(c->fd);
	free(c->gather);
	free(c->buf);
	free(c);
}

const char *mc_addr(const struct mc_conn *c)
{
	return c->addr;
}

/* Reads more bytes into the buffer; 0, -ECONNRESET at end of stream, or -errno. */
static int fill(struct mc_conn *c)
{
	ssize_t r;

	if (c->pos > 0 && c->pos == c->len)
		c->pos = c->len = 0;
	if (c->len == c->cap) {
		if (c->pos > 0) {
			memmove(c->buf, c->buf + c->pos, c->len - c->pos);
			c->len -= c->pos;
			c->pos = 0;
		} else {
			size_t cap = c->cap * 2;
			char *b = realloc(c->buf, cap);
			if (!b)
				return -ENOMEM;
			c->buf = b;
			c->cap = cap;
		}
	}
	r = recv_some(c, c->buf + c->len, c->cap - c->len);
	if (r < 0)
		return (int)r;
	c->len += (size_t)r;
	return 0;
}

int mc_line(struct mc_conn *c, char **line, size_t *len)
{
	size_t scanned = 0;
	int rc;

	for (;;) {
		char *s = c->buf + c->pos;
		char *nl = c->len > c->pos + scanned
				   ? memchr(s + scanned, '\n', c->len - c->pos - scanned)
				   : NULL;
		if (nl) {
			size_t n = (size_t)(nl - s);
			c->pos += n + 1;
			if (n > 0 && s[n - 1] == '\r')
				n--;
			s[n] = 0;
			*line = s;
			*len = n;
			return 0;
		}
		scanned = c->len - c->pos;
		if (scanned > PROTO_LINE_MAX)
			return -EPROTO;
		if ((rc = fill(c)) < 0)
			return rc;
	}
}

int mc_block(struct mc_conn *c, void *dst, size_t n)
{
	char crlf[2];
	size_t have = c->len - c->pos;
	int rc;

	if (have > n)
		have = n;
	memcpy(dst, c->buf + c->pos, have);
	c->pos += have;
	while (have < n) {
		ssize_t r = recv_some(c, (char *)dst + have, n - have);
		if (r < 0)
			return (int)r;
		have += (size_t)r;
	}
	for (int i = 0; i < 2; i++) {
		if (c->pos == c->len && (rc = fill(c)) < 0)
			return rc;
		crlf[i] = c->buf[c->pos++];
	}
	return crlf[0] == '\r' && crlf[1] == '\n' ? 0 : -EPROTO;
}

int mc_xset_send(struct mc_conn *c, const void *key, size_t klen, const void *val, size_t vlen,
		 const struct store_version *v, bool tombstone)
{
	char head[64], tail[64];
	int tl = snprintf(tail, sizeof(tail), " %" PRIu64 " %" PRIu32 " %zu%s\r\n", v->stamp,
			  v->node, tombstone ? (size_t)0 : vlen, tombstone ? " T" : "");
	struct iovec iov[5] = {
		{ head, (size_t)snprintf(head, sizeof(head), "xset ") },
		{ (void *)key, klen },
		{ tail, (size_t)tl },
		{ (void *)val, tombstone ? 0 : vlen },
		{ "\r\n", 2 },
	};
	return mc_send(c, iov, 5);
}

int mc_xset_recv(struct mc_conn *c, char *err, size_t errcap)
{
	char *line;
	size_t len;
	int rc = mc_line(c, &line, &len);

	if (rc < 0)
		return rc;
	if (strcmp(line, "STORED") == 0)
		return 0;
	if (strcmp(line, "NOT_STORED") == 0)
		return STORE_STALE;
	snprintf(err, errcap, "%s", line);
	return strncmp(line, "SERVER_ERROR", 12) == 0 ? -EIO : -EPROTO;
}

/* Parses "XVALUE KEY STAMP NODE BYTES HASH [T]". */
static int parse_xvalue(const char *line, struct store_meta *m, size_t *bytes)
{
	char key[PROTO_KEY_MAX + 1], t[2] = "";
	uint64_t stamp, hash;
	unsigned node;
	size_t n;

	memset(m, 0, sizeof(*m));
	int got = sscanf(line, "XVALUE %250s %" SCNu64 " %u %zu %" SCNx64 " %1s", key, &stamp,
			 &node, &n, &hash, t);
	if (got < 5 || n > PROTO_VALUE_MAX)
		return -EPROTO;
	m->version.stamp = stamp;
	m->version.node = node;
	m->value_hash = hash;
	m->size = (uint32_t)n;
	m->tombstone = t[0] == 'T';
	*bytes = n;
	return 0;
}

int mc_xget(struct mc_conn *c, const void *key, size_t klen, void **val, size_t *vlen,
	    struct store_meta *meta)
{
	struct iovec iov[3] = { { "xget ", 5 }, { (void *)key, klen }, { "\r\n", 2 } };
	bool found = false;
	char *line;
	size_t len, n;
	int rc;

	if (val)
		*val = NULL;
	if ((rc = mc_send(c, iov, 3)) < 0)
		return rc;
	while ((rc = reply_line(c, &line, &len)) > 0) {
		if (found || strncmp(line, "XVALUE ", 7) != 0 || parse_xvalue(line, meta, &n) < 0) {
			rc = -EPROTO;
			break;
		}
		void *buf = malloc(n ? n : 1);
		if (!buf) {
			rc = -ENOMEM;
			break;
		}
		if ((rc = mc_block(c, buf, n)) < 0) {
			free(buf);
			break;
		}
		found = true;
		if (val) {
			*val = buf;
			*vlen = n;
		} else {
			free(buf);
		}
	}
	if (rc < 0) {
		if (val) {
			free(*val);
			*val = NULL;
		}
		return rc;
	}
	return found ? 0 : -ENOENT;
}

int mc_set(struct mc_conn *c, const char *key, const void *val, size_t vlen)
{
	char head[PROTO_KEY_MAX + 64];
	char *line;
	size_t len;
	int rc;

	snprintf(head, sizeof(head), "set %s 0 0 %zu\r\n", key, vlen);
	struct iovec iov[3] = { { head, strlen(head) }, { (void *)val, vlen }, { "\r\n", 2 } };
	if ((rc = request(c, iov, 3, &line, &len)) < 0)
		return rc;
	if (strcmp(line, "STORED") == 0)
		return 0;
	fprintf(stderr, "caskfs: %s: set %s: %s\n", c->addr, key, line);
	return -EIO;
}

int mc_get(struct mc_conn *c, const char *key, void **val, size_t *vlen)
{
	char cmd[PROTO_KEY_MAX + 16];

	snprintf(cmd, sizeof(cmd), "get %s", key);
	return mc_fetch(c, cmd, val, vlen);
}

void mc_traffic(const struct mc_conn *c, uint64_t *sent, uint64_t *received)
{
	*sent = c->sent;
	*received = c->received;
}

int mc_fetch(struct mc_conn *c, const char *cmd, void **val, size_t *vlen)
{
	char k[1024];
	const char *key = cmd;
	char *line;
	size_t len, n;
	unsigned flags;
	int rc;

	*val = NULL;
	if ((rc = send_cmd(c, cmd)) < 0)
		return rc;
	while ((rc = reply_line(c, &line, &len)) > 0) {
		if (*val || len >= sizeof(k) ||
		    sscanf(line, "VALUE %1000s %u %zu", k, &flags, &n) != 3 || n > PROTO_VALUE_MAX) {
			if (strncmp(line, "SERVER_ERROR", 12) == 0) {
				fprintf(stderr, "caskfs: %s: get %s: %s\n", c->addr, key, line);
				rc = -EIO;
			} else {
				rc = -EPROTO;
			}
			break;
		}
		if (!(*val = malloc(n ? n : 1))) {
			rc = -ENOMEM;
			break;
		}
		*vlen = n;
		if ((rc = mc_block(c, *val, n)) < 0)
			break;
	}
	if (rc < 0) {
		free(*val);
		*val = NULL;
		return rc;
	}
	return *val ? 0 : -ENOENT;
}

int mc_delete(struct mc_conn *c, const char *key)
{
	char cmd[PROTO_KEY_MAX + 16];
	char *line;
	size_t len;
	int rc;

	snprintf(cmd, sizeof(cmd), "delete %s\r\n", key);
	struct iovec iov = { cmd, strlen(cmd) };
	if ((rc = request(c, &iov, 1, &line, &len)) < 0)
		return rc;
	if (strcmp(line, "DELETED") == 0)
		return 0;
	if (strcmp(line, "NOT_FOUND") == 0)
		return -ENOENT;
	fprintf(stderr, "caskfs: %s: delete %s: %s\n", c->addr, key, line);
	return -EIO;
}

int mc_lines(struct mc_conn *c, const char *cmd, mc_line_fn fn, void *arg)
{
	char *line;
	size_t len;
	int rc, failed = 0;

	if ((rc = send_cmd(c, cmd)) < 0)
		return rc;
	while ((rc = reply_line(c, &line, &len)) > 0) {
		if (strcmp(line, "ERROR") == 0 || strncmp(line, "CLIENT_ERROR", 12) == 0 ||
		    strncmp(line, "SERVER_ERROR", 12) == 0) {
			fprintf(stderr, "caskfs: %s: %s: %s\n", c->addr, cmd, line);
			return -EIO;
		}
		if (!failed)
			failed = fn(arg, line, len);
	}
	return rc < 0 ? rc : failed;
}
