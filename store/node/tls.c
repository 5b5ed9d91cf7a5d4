/*
 * tls - OpenSSL contexts for the node port and for connections to nodes
 * (tls.h). The one idea: every choice is made here once, in the context
 * (TLS 1.3 only, verification modes, no session tickets, partial writes from
 * a moving buffer for the event loop), so the server's loop (conn.c) and the
 * blocking client (client.c) only move bytes. Documented in docs/PROTOCOL.md
 * ("TLS") and docs/OPERATIONS.md.
 */
#include "tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

bool tls_files_given(const struct tls_files *f)
{
	return f && (f->cert || f->key || f->ca);
}

const char *tls_last_error(char *buf, size_t cap)
{
	unsigned long e = ERR_get_error();

	if (cap == 0)
		return buf;
	buf[0] = 0;
	if (e)
		ERR_error_string_n(e, buf, cap);
	ERR_clear_error();
	return buf;
}

static int fail(char *err, size_t errcap, int rc, const char *what, const char *file)
{
	char why[256];

	tls_last_error(why, sizeof(why));
	snprintf(err, errcap, "%s%s%s%s%s", what, file ? " " : "", file ? file : "",
		 why[0] ? ": " : "", why);
	return rc;
}

/* What both ends share: TLS 1.3, this end's certificate and key when given. */
static int common(SSL_CTX *ctx, const struct tls_files *f, char *err, size_t errcap)
{
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION))
		return fail(err, errcap, -EINVAL, "cannot require TLS 1.3", NULL);
	/* the event loop writes from a buffer that may move and retries partly;
	 * idle sessions give their buffers back */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
				  SSL_MODE_RELEASE_BUFFERS);
	/* several records per recv(), not a header and a body each */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 64 << 10);
	if (!f->cert != !f->key) {
		snprintf(err, errcap, "--tls-cert and --tls-key go together");
		return -EINVAL;
	}
	if (f->cert && SSL_CTX_use_certificate_chain_file(ctx, f->cert) != 1)
		return fail(err, errcap, -EINVAL, "cannot use the certificate in", f->cert);
	if (f->key && SSL_CTX_use_PrivateKey_file(ctx, f->key, SSL_FILETYPE_PEM) != 1)
		return fail(err, errcap, -EINVAL, "cannot use the private key in", f->key);
	if (f->key && SSL_CTX_check_private_key(ctx) != 1)
		return fail(err, errcap, -EINVAL,
			    "the private key does not match the certificate in", f->cert);
	return 0;
}

int tls_server_ctx(const struct tls_files *f, SSL_CTX **out, char *err, size_t errcap)
{
	SSL_CTX *ctx;
	int rc;

	*out = NULL;
	if (!f->cert || !f->key) {
		snprintf(err, errcap, "a TLS server needs --tls-cert and --tls-key");
		return -EINVAL;
	}
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return fail(err, errcap, -ENOMEM, "cannot create a TLS context", NULL);
	if ((rc = common(ctx, f, err, errcap)) < 0)
		goto bad;
	/* peers keep their connections: resumption would only cost memory */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (f->ca) {
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(f->ca);
		if (!names || SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1) {
			sk_X509_NAME_pop_free(names, X509_NAME_free);
			rc =
			    fail(err, errcap, -EINVAL, "cannot load the CA certificates in", f->ca);
			goto bad;
		}
		SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	*out = ctx;
	return 0;
bad:
	SSL_CTX_free(ctx);
	return rc;
}

int tls_client_ctx(const struct tls_files *f, SSL_CTX **out, char *err, size_t errcap)
{
	SSL_CTX *ctx;
	int rc;

	*out = NULL;
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		return fail(err, errcap, -ENOMEM, "cannot create a TLS context", NULL);
	if ((rc = common(ctx, f, err, errcap)) < 0)
		goto bad;
	if (f->ca ? SSL_CTX_load_verify_locations(ctx, f->ca, NULL) != 1
		  : SSL_CTX_set_default_verify_paths(ctx) != 1) {
		rc = fail(err, errcap, -EINVAL, "cannot load the CA certificates in",
			  f->ca ? f->ca : "the system's store");
		goto bad;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	*out = ctx;
	return 0;
bad:
	SSL_CTX_free(ctx);
	return rc;
}

void tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

bool tls_ctx_mutual(SSL_CTX *ctx)
{
	return ctx && (SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT);
}

/* ---- the write side of a session: records gathered in a struct tls_out ---- */

#define TLS_OUT_SMALL (32u << 10)

static int out_write(BIO *b, const char *data, int n)
{
	struct tls_out *o = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (n <= 0)
		return 0;
	if (o->pos == o->len)
		o->pos = o->len = 0;
	if (o->cap - o->len < (size_t)n) {
		/* full: the caller sends what is there, then OpenSSL retries */
		if (o->len - o->pos + (size_t)n > TLS_OUT_MAX && o->len > o->pos) {
			BIO_set_retry_write(b);
			return -1;
		}
		if (o->pos > 0) {
			memmove(o->p, o->p + o->pos, o->len - o->pos);
			o->len -= o->pos;
			o->pos = 0;
		}
		/* small answers take a small buffer; a large one gets room for all
		 * it may gather at once, not a series of doublings */
		size_t need = o->len + (size_t)n;
		size_t cap = need <= TLS_OUT_SMALL ? TLS_OUT_SMALL : TLS_OUT_MAX + TLS_OUT_SMALL;
		if (cap < need)
			cap = need;
		if (cap > o->cap) {
			char *p = realloc(o->p, cap);
			if (!p)
				return -1;
			o->p = p;
			o->cap = cap;
		}
	}
	memcpy(o->p + o->len, data, (size_t)n);
	o->len += (size_t)n;
	return n;
}

static long out_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_out *o = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1; /* the caller sends after each call into OpenSSL */
	case BIO_CTRL_WPENDING:
	case BIO_CTRL_PENDING:
		return o ? (long)(o->len - o->pos) : 0;
	default:
		return 0;
	}
}

static BIO_METHOD *out_method;
static pthread_once_t out_once = PTHREAD_ONCE_INIT;

static void out_method_init(void)
{
	BIO_METHOD *m =
	    BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "caskfs records out");

	if (m && BIO_meth_set_write(m, out_write) == 1 && BIO_meth_set_ctrl(m, out_ctrl) == 1)
		out_method = m;
	else
		BIO_meth_free(m);
}

SSL *tls_session(SSL_CTX *ctx, int fd, struct tls_out *out)
{
	SSL *ssl;
	BIO *rb, *wb;

	pthread_once(&out_once, out_method_init);
	if (!out_method || !(ssl = SSL_new(ctx)))
		return NULL;
	rb = BIO_new_socket(fd, BIO_NOCLOSE);
	wb = BIO_new(out_method);
	if (!rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		SSL_free(ssl);
		return NULL;
	}
	BIO_set_data(wb, out);
	BIO_set_init(wb, 1);
	SSL_set_bio(ssl, rb, wb); /* the session owns both */
	return ssl;
}

int tls_out_send(struct tls_out *out, int fd)
{
	while (out->pos < out->len) {
		ssize_t w = send(fd, out->p + out->pos, out->len - out->pos, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -EAGAIN : -errno;
		}
		out->pos += (size_t)w;
	}
	free(out->p);
	out->p = NULL;
	out->pos = out->len = out->cap = 0;
	return 0;
}
