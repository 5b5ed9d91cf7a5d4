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
#include <stdio.h>
#include <string.h>

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
	/* the event loop writes from a buffer that may move and retries partly */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
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
