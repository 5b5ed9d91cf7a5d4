/*
 * channel - how the bytes of a client connection (client.c) move: plainly on
 * the socket, through TLS with the process's client context (mc_tls_init()),
 * or, after a shared-secret handshake without TLS, as sealed records
 * (seal.h). The one idea: the protocol above sees one byte stream in each
 * direction whichever it is, and every wait is a poll() bounded by the
 * connection's io_ms. TLS's records gather in c->tx and leave in one send;
 * small pieces of a request are gathered into one record. docs/PROTOCOL.md,
 * "Security of the transport".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "client_i.h"

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

int mc_wait_fd(int fd, short events, int ms)
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

/* After an SSL call that returned r: waits for what it asked for (0: call
 * again), or fails: -ECONNRESET at the end, -EACCES when a certificate was
 * refused (by either end), -EPROTO for other TLS failures (both logged with
 * OpenSSL's reason), -ETIMEDOUT, -errno. */
/* Sends the records TLS has made. */
static int tx_flush(struct mc_conn *c)
{
	int rc;

	while ((rc = tls_out_send(&c->tx, c->fd)) == -EAGAIN)
		if ((rc = mc_wait_fd(c->fd, POLLOUT, c->io_ms)) < 0)
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
		return mc_wait_fd(c->fd, POLLIN, c->io_ms);
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
			if ((rc = mc_wait_fd(c->fd, POLLOUT, c->io_ms)) < 0)
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
		if ((rc = mc_wait_fd(c->fd, POLLIN, c->io_ms)) < 0)
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

ssize_t mc_recv_some(struct mc_conn *c, void *dst, size_t cap)
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
			if ((rc = mc_wait_fd(c->fd, POLLOUT, c->io_ms)) < 0)
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

int mc_channel_seal(struct mc_conn *c, const struct auth_key *key, const uint8_t *cn,
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

int mc_channel_tls(struct mc_conn *c, const char *host)
{
	unsigned char ip[16];
	int rc, r;

	if (!client_tls)
		return 0;
	c->ssl = tls_session(client_tls, c->fd, &c->tx);
	if (!c->ssl) {
		ERR_clear_error();
		return -ENOMEM;
	}
	/* the certificate must name the address dialled: an IP SAN for an
	 * address, a DNS SAN (and SNI) for a name */
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1
		? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1
		: SSL_set1_host(c->ssl, host) != 1 || SSL_set_tlsext_host_name(c->ssl, host) != 1) {
		ERR_clear_error();
		return -EINVAL;
	}
	SSL_set_connect_state(c->ssl);
	while ((r = SSL_do_handshake(c->ssl)) != 1)
		if ((rc = tls_wait(c, r)) < 0)
			return rc == -ECONNRESET ? -EPROTO : rc;
	return tx_flush(c); /* the client's last flight */
}

void mc_channel_free(struct mc_conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	free(c->tx.p);
	if (c->sealed) {
		seal_wipe(&c->sealed->s);
		free(c->sealed);
	}
	free(c->gather);
}
