/*
 * reply - what a connection sends back: its output buffer, which grows as
 * replies are appended and is sent as the socket takes it, and the text
 * values that extensions reply with (server_text, `get @PATH`, `mtree`).
 * The one idea: appending never fails loudly; when memory runs out the
 * buffer stops growing and oom is set, and the connection is then closed
 * (conn.c) rather than sent a reply with a hole in it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_i.h"

static bool out_reserve(struct conn *c, size_t n)
{
	if (c->out_len + n <= c->out_cap)
		return true;
	if (c->out_pos > 0) {
		memmove(c->out, c->out + c->out_pos, c->out_len - c->out_pos);
		c->out_len -= c->out_pos;
		c->out_pos = 0;
		if (c->out_len + n <= c->out_cap)
			return true;
	}
	size_t cap = c->out_cap ? c->out_cap : 4096;
	while (cap < c->out_len + n)
		cap *= 2;
	char *b = realloc(c->out, cap);
	if (!b) {
		c->oom = true;
		return false;
	}
	c->out = b;
	c->out_cap = cap;
	return true;
}

void server_out_bytes(struct conn *c, const void *p, size_t n)
{
	if (n && out_reserve(c, n)) { /* n 0: p may be NULL (an empty value) */
		memcpy(c->out + c->out_len, p, n);
		c->out_len += n;
	}
}

void server_out_str(struct conn *c, const char *s)
{
	server_out_bytes(c, s, strlen(s));
}

void server_out_fmt(struct conn *c, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		server_out_bytes(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Writes v in decimal at p; returns the digits written (at most 20). */
static size_t put_decimal(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

void server_out_value(struct conn *c, const char *key, size_t klen, uint32_t flags, size_t bytes,
		      bool with_cas, uint64_t cas)
{
	char line[6 + PROTO_KEY_MAX + 3 * 21 + 2];
	size_t n = 6;

	if (klen > PROTO_KEY_MAX)
		klen = PROTO_KEY_MAX;
	memcpy(line, "VALUE ", 6);
	memcpy(line + n, key, klen);
	n += klen;
	line[n++] = ' ';
	n += put_decimal(line + n, flags);
	line[n++] = ' ';
	n += put_decimal(line + n, bytes);
	if (with_cas) {
		line[n++] = ' ';
		n += put_decimal(line + n, cas);
	}
	line[n++] = '\r';
	line[n++] = '\n';
	server_out_bytes(c, line, n);
}

void server_out_status(struct conn *c, const struct proto_req *r, const char *line)
{
	if (!r->noreply)
		server_out_str(c, line);
}

void server_out_error(struct conn *c, int err)
{
	server_out_fmt(c, "SERVER_ERROR %s\r\n", strerror(-err));
}

void server_text_fmt(struct server_text *t, const char *fmt, ...)
{
	va_list ap;

	while (!t->oom) {
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *b = realloc(t->p, cap);
		if (!b) {
			t->oom = true;
			return;
		}
		t->p = b;
		t->cap = cap;
	}
}

void server_text_tree_node(struct server_text *t, const struct store_tree_node *self,
			   const struct store_tree_node kids[16])
{
	server_text_fmt(t, "self %016" PRIx64 " %" PRIu64 "\n", self->hash, self->count);
	for (int i = 0; i < 16; i++)
		server_text_fmt(t, "%x %016" PRIx64 " %" PRIu64 "\n", i, kids[i].hash,
				kids[i].count);
}

void server_emit(void *ctx, const void *p, size_t n)
{
	server_out_bytes(ctx, p, n);
}
