/*
 * conn - the server's connections and the epoll loops (a few threads, the
 * listening socket shared with EPOLLEXCLUSIVE) that drive them. The one idea:
 * requests are parsed from a connection's input buffer and answered in order
 * into its output buffer, so pipelining is free, and memory per connection is
 * bounded: input grows only to hold one request (PROTO_VALUE_MAX plus its
 * line), and a connection whose unsent output passes OUT_HIGH is not read
 * until the client catches up. Coordinated requests wait for peers inside the
 * loop, hence several loops (docs/DESIGN-NOTES.md); decided ones (cas, incr...)
 * go to a worker (worker.c) and the connection waits, unread, for its reply.
 * Framing: docs/PROTOCOL.md.
 *
 * Under the buffers, a connection's bytes move plainly, through TLS (OpenSSL
 * on the non-blocking socket: a call that would block is retried when epoll
 * reports what it waits for), or as sealed records after the shared-secret
 * handshake (seal.h). A TLS handshake has HS_TIMEOUT_MS to finish, and a
 * loop keeps at most HS_MAX of them, dropping the oldest.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "server_i.h"

/* Sealed input: a partial request plus one opened record. */
#define IN_SEALED_MAX (IN_MAX + SEAL_PLAIN_MAX)
/* Bytes read from one TLS connection per wakeup, so others get their turn. */
#define TLS_READ_BUDGET (1u << 20)

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void hs_unlink(struct loop *l, struct conn *c)
{
	if (!c->handshaking)
		return;
	if (c->hs_prev)
		c->hs_prev->hs_next = c->hs_next;
	else
		l->hs_head = c->hs_next;
	if (c->hs_next)
		c->hs_next->hs_prev = c->hs_prev;
	else
		l->hs_tail = c->hs_prev;
	c->hs_prev = c->hs_next = NULL;
	c->handshaking = false;
	l->hs_count--;
}

static void seal_free(struct conn_seal *s)
{
	if (!s)
		return;
	seal_wipe(&s->s);
	free(s->in);
	free(s->out);
	free(s);
}

void server_conn_close(struct loop *l, struct conn *c)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	hs_unlink(l, c);
	for (struct conn **p = &l->ready; c->ready && *p; p = &(*p)->ready_next)
		if (*p == c) {
			*p = c->ready_next;
			break;
		}
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->ssl) {
		/* close_notify (or the alert of a failed handshake), once and
		 * without waiting */
		if (!c->tls_dead && SSL_is_init_finished(c->ssl))
			SSL_shutdown(c->ssl);
		tls_out_send(&c->tx, c->fd);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	free(c->tx.p);
	seal_free(c->seal);
	if (c->tls_dead) {
		/* what the client sent after its half of a failed handshake: read,
		 * so that closing sends the alert and not a reset that drops it */
		char sink[4096];
		for (int i = 0; i < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
	}
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	atomic_fetch_sub(&l->srv->conns, 1);
}

/*
 * The authentication just answered switched c to sealed records: what c->in
 * holds after pos is already sealed, and what c->out holds (the answer) goes
 * out as it is. Returns false when memory runs out.
 */
static bool seal_start(struct server *srv, struct conn *c, size_t pos)
{
	size_t rest = c->in_len - pos, pending = c->out_len - c->out_pos;
	struct conn_seal *s = calloc(1, sizeof(*s));

	c->seal_next = false;
	if (!s)
		return false;
	s->in_cap = rest > SEAL_IN_CAP ? rest : SEAL_IN_CAP;
	s->out_cap = pending > SEAL_OUT_CAP ? pending : SEAL_OUT_CAP;
	s->in = malloc(s->in_cap);
	s->out = malloc(s->out_cap);
	if (!s->in || !s->out) {
		seal_free(s);
		return false;
	}
	seal_init(&s->s, srv->key, c->cn, c->sn, 's');
	memcpy(s->in, c->in + pos, rest);
	s->in_len = rest;
	memcpy(s->out, c->out + c->out_pos, pending);
	s->out_len = pending;
	c->in_len = pos;
	c->out_pos = c->out_len = 0;
	c->seal = s;
	return true;
}

/* Parses and answers every complete request in c->in. */
static void process(struct loop *l, struct conn *c)
{
	struct server *srv = l->srv;
	size_t pos = 0;

	if (!c->started && c->in_len > 0) {
		c->started = true;
		/* memcache's binary protocol starts with this magic; like memcached,
		 * the first byte decides, and this node speaks only text */
		if ((unsigned char)c->in[0] == 0x80) {
			atomic_fetch_add(&srv->errors, 1);
			server_out_str(c, "CLIENT_ERROR the binary protocol is not supported\r\n");
			c->closing = true;
			c->in_len = 0;
			return;
		}
	}
	while (pos < c->in_len && !c->closing && !c->oom && !c->busy) {
		if (c->swallow) {
			size_t n = c->in_len - pos < c->swallow ? c->in_len - pos : c->swallow;
			pos += n;
			c->swallow -= n;
			continue;
		}
		if (c->out_len - c->out_pos > OUT_HIGH)
			break; /* the rest waits until the client reads its replies */
		struct proto_req r;
		long used = proto_parse(c->in + pos, c->in_len - pos, &r);
		if (used < 0) {
			atomic_fetch_add(&srv->errors, 1);
			server_out_str(c, "CLIENT_ERROR line too long\r\n");
			c->closing = true;
			break;
		}
		if (used == 0) {
			c->need = r.need;
			break;
		}
		if (server_runs_on_worker(srv, &r) &&
		    server_worker_submit(srv, l, c, &r, c->in + pos, (size_t)used) == 0)
			c->busy = true; /* the rest waits for its reply */
		else
			server_execute(srv, c, &r);
		pos += (size_t)used;
		if (c->seal_next) {
			if (!seal_start(srv, c, pos))
				c->oom = true;
			break;
		}
	}
	if (pos > 0) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
		if (c->in_len == 0)
			c->need = 0;
	}
	if (c->in_len == 0 && c->in_cap > KEEP_IDLE) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
}

/* Makes room in c->in for want more bytes, growing it up to limit. */
static bool in_room(struct conn *c, size_t want, size_t limit)
{
	if (c->in_cap - c->in_len >= want)
		return true;
	size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
	if (cap < c->in_len + want)
		cap = c->in_len + want;
	if (c->need > cap)
		cap = c->need; /* the whole value at once, not by doublings */
	if (cap > limit)
		cap = limit;
	if (cap < c->in_len + want)
		return false;
	char *b = realloc(c->in, cap);
	if (!b)
		return false;
	c->in = b;
	c->in_cap = cap;
	return true;
}

/* Receives into buf from the socket or through TLS: bytes (> 0), 0 at the
 * end of the stream, -EAGAIN when nothing is there now, or -errno. */
static ssize_t xrecv(struct conn *c, void *buf, size_t n)
{
	if (c->ssl) {
		int r = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
		if (r > 0)
			return r;
		switch (SSL_get_error(c->ssl, r)) {
		case SSL_ERROR_WANT_READ:
			return -EAGAIN;
		case SSL_ERROR_WANT_WRITE:
			c->tls_read_wants_out = true;
			return -EAGAIN;
		case SSL_ERROR_ZERO_RETURN:
			return 0;
		default:
			c->tls_dead = true;
			ERR_clear_error();
			return -EIO;
		}
	}
	for (;;) {
		ssize_t r = recv(c->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno != EINTR)
			return -errno;
	}
}

/* Sends from buf to the socket: bytes taken (> 0), -EAGAIN when the socket
 * takes nothing now, or -errno. */
static ssize_t xsend(struct conn *c, const void *buf, size_t n)
{
	for (;;) {
		ssize_t w = send(c->fd, buf, n, MSG_NOSIGNAL);
		if (w >= 0)
			return w;
		if (errno != EINTR)
			return -errno;
	}
}

/* Reads what is there (a bounded amount per wakeup); false on end or error. */
static bool read_in(struct conn *c)
{
	size_t got = 0;

	/* stopping before TLS says it wants the socket may leave whole records
	 * in its buffer, which epoll does not see (in_buffered()) */
	c->tls_more = c->ssl != NULL;
	for (int round = 0; c->ssl ? got < TLS_READ_BUDGET : round < 8; round++) {
		if (c->in_len == c->in_cap && !in_room(c, 1, IN_MAX))
			return true; /* a whole request is there: process() drains it */
		ssize_t r = xrecv(c, c->in + c->in_len, c->in_cap - c->in_len);
		if (r > 0) {
			c->in_len += (size_t)r;
			got += (size_t)r;
			/* a plain socket that did not fill the buffer is drained; TLS
			 * returns a record at a time, so it is read until it says so */
			if (!c->ssl && c->in_len < c->in_cap)
				return true;
			continue;
		}
		c->tls_more = false;
		return r == -EAGAIN;
	}
	return true;
}

/* Opens the complete records of c->seal->in into c->in, as far as c->in
 * has room. False when the session is broken (a bad record, no memory). */
static bool open_records(struct conn *c)
{
	struct conn_seal *s = c->seal;
	size_t pos = 0;
	bool ok = true;

	for (;;) {
		long size = seal_peek(s->in + pos, s->in_len - pos);
		if (size < 0) {
			ok = false;
			break;
		}
		if (size == 0 || pos + (size_t)size > s->in_len)
			break;
		size_t plain = (size_t)size - SEAL_HEADER - SEAL_TAG, n;
		/* process() drains c->in below IN_MAX, so a record fits after it */
		if (c->in_len + plain > IN_SEALED_MAX)
			break;
		if (!in_room(c, plain, IN_SEALED_MAX) ||
		    seal_open(&s->s.rx, s->in + pos, s->in_len - pos, (uint8_t *)c->in + c->in_len,
			      c->in_cap - c->in_len, &n) != size) {
			ok = false;
			break;
		}
		c->in_len += n;
		pos += (size_t)size;
	}
	memmove(s->in, s->in + pos, s->in_len - pos);
	s->in_len -= pos;
	return ok;
}

/* Whether c's transport holds input that epoll will not report: TLS bytes
 * read from the socket and not yet returned, or a complete sealed record.
 * (Once TLS has asked for the socket, what it holds is part of a record,
 * which only more bytes, and so epoll, can complete.) */
static bool in_buffered(struct conn *c)
{
	if (c->ssl)
		return c->tls_more && SSL_has_pending(c->ssl);
	if (c->seal) {
		long size = seal_peek(c->seal->in, c->seal->in_len);
		return size != 0 && (size < 0 || (size_t)size <= c->seal->in_len);
	}
	return false;
}

/* Reads sealed records and opens them; false on end, error or a bad record
 * (*broken then says the session failed, not just ended). */
static bool read_sealed(struct conn *c, bool *broken)
{
	struct conn_seal *s = c->seal;

	*broken = false;
	for (int round = 0; round < 8; round++) {
		if (s->in_len == s->in_cap)
			return true; /* c->in is full; process() makes room */
		ssize_t r = xrecv(c, s->in + s->in_len, s->in_cap - s->in_len);
		if (r > 0)
			s->in_len += (size_t)r;
		if (!open_records(c)) {
			*broken = true;
			return false;
		}
		if (r <= 0)
			return r == -EAGAIN;
	}
	return true;
}

/* Bytes of output not yet on the socket, sealed or not. */
static size_t out_pending(const struct conn *c)
{
	size_t n = c->out_len - c->out_pos + c->tx.len - c->tx.pos;

	if (c->seal)
		n += c->seal->out_len - c->seal->out_pos;
	return n;
}

/* Sends through TLS: records made from c->out gather in c->tx and leave in
 * large sends. True unless the connection failed. */
static bool flush_tls(struct conn *c)
{
	for (;;) {
		if (c->tx.len > c->tx.pos) {
			int rc = tls_out_send(&c->tx, c->fd);
			if (rc == -EAGAIN)
				return true; /* EPOLLOUT brings us back */
			if (rc < 0)
				return false;
		}
		size_t n = c->out_len - c->out_pos;
		if (n == 0)
			return true;
		int w = SSL_write(c->ssl, c->out + c->out_pos, n > INT_MAX ? INT_MAX : (int)n);
		if (w > 0) {
			c->out_pos += (size_t)w;
			continue;
		}
		switch (SSL_get_error(c->ssl, w)) {
		case SSL_ERROR_WANT_WRITE:
			if (c->tx.len > c->tx.pos)
				continue; /* c->tx is full: send it, then go on */
			break;
		case SSL_ERROR_WANT_READ:
			c->tls_write_wants_in = true;
			return true;
		default:
			break;
		}
		c->tls_dead = true;
		ERR_clear_error();
		return false;
	}
}

/* Sends what it can; false when the connection failed. */
static bool flush_out(struct conn *c)
{
	struct conn_seal *s = c->seal;

	if (c->ssl) {
		if (!flush_tls(c))
			return false;
		if (out_pending(c))
			return true;
	}
	for (;;) {
		size_t n = c->out_len - c->out_pos;
		const char *p = n ? c->out + c->out_pos : NULL; /* out may be NULL */
		if (s) {
			/* seal the next records once the previous ones are sent */
			if (s->out_pos == s->out_len) {
				s->out_pos = s->out_len = 0;
				while (c->out_pos < c->out_len &&
				       s->out_cap - s->out_len >= SEAL_RECORD_MAX) {
					size_t k = c->out_len - c->out_pos;
					if (k > SEAL_PLAIN_MAX)
						k = SEAL_PLAIN_MAX;
					s->out_len += seal_record(&s->s.tx, c->out + c->out_pos, k,
								  s->out + s->out_len);
					c->out_pos += k;
				}
			}
			p = (const char *)s->out + s->out_pos;
			n = s->out_len - s->out_pos;
		}
		if (n == 0)
			break;
		ssize_t w = xsend(c, p, n);
		if (w < 0)
			return w == -EAGAIN;
		if (s)
			s->out_pos += (size_t)w;
		else
			c->out_pos += (size_t)w;
	}
	c->out_pos = c->out_len = 0;
	if (c->out_cap > KEEP_IDLE) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return true;
}

/* Answers what c->in holds, opening sealed records as room is made; false
 * when a sealed session broke or memory ran out switching to one. */
static bool serve_input(struct loop *l, struct conn *c)
{
	for (;;) {
		process(l, c);
		if (c->oom)
			return false;
		if (!c->seal || c->closing)
			return true;
		/* just switched, or process() made room: open what waits */
		size_t left = c->in_len;
		if (!open_records(c)) {
			atomic_fetch_add(&l->srv->errors, 1);
			return false;
		}
		if (c->in_len == left)
			return true;
	}
}

/* Moves c's TLS handshake on; false when it failed. */
static bool handshake(struct server *srv, struct loop *l, struct conn *c)
{
	/* made at the first event: a client that sends nothing costs no session */
	if (!c->ssl) {
		c->ssl = tls_session(srv->tls, c->fd, &c->tx);
		if (!c->ssl) {
			ERR_clear_error();
			return false;
		}
		SSL_set_accept_state(c->ssl);
	}
	int r = SSL_do_handshake(c->ssl), e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
	int sent = tls_out_send(&c->tx, c->fd);
	uint32_t more = sent == -EAGAIN ? EPOLLOUT : 0;
	if (sent < 0 && sent != -EAGAIN)
		e = SSL_ERROR_SYSCALL;
	switch (e) {
	case SSL_ERROR_NONE:
		hs_unlink(l, c);
		atomic_fetch_add(&srv->tls_handshakes, 1);
		return true;
	case SSL_ERROR_WANT_READ:
		c->hs_want = EPOLLIN | more;
		return true;
	case SSL_ERROR_WANT_WRITE:
		c->hs_want = EPOLLOUT;
		return true;
	default:
		/* plaintext, garbage, a certificate from elsewhere, a reset */
		atomic_fetch_add(&srv->tls_failures, 1);
		c->tls_dead = true;
		ERR_clear_error();
		return false;
	}
}

static void watch(struct loop *l, struct conn *c, uint32_t want)
{
	if (want != c->events) {
		struct epoll_event e = { .events = want | EPOLLRDHUP, .data.ptr = c };
		c->events = want;
		epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e);
	}
}

/* Sends what it can, parses what waited for room, closes when done, and
 * sets what epoll watches for c. */
static void conn_after(struct loop *l, struct conn *c)
{
	c->tls_write_wants_in = false;
	if (!flush_out(c) || c->oom) {
		server_conn_close(l, c);
		return;
	}
	/* input left over because the output was full: parse it as output drains */
	if (c->in_len && !c->closing && !c->busy && c->out_len - c->out_pos <= OUT_HIGH) {
		if (!serve_input(l, c) || !flush_out(c) || c->oom) {
			server_conn_close(l, c);
			return;
		}
	}
	if (c->closing && !c->busy && out_pending(c) == 0) {
		server_conn_close(l, c);
		return;
	}
	uint32_t want = out_pending(c) ? EPOLLOUT : 0;
	if ((!c->closing && !c->busy && c->out_len - c->out_pos <= OUT_HIGH) ||
	    c->tls_write_wants_in)
		want |= EPOLLIN;
	if (c->tls_read_wants_out)
		want |= EPOLLOUT;
	watch(l, c, want);
	if ((want & EPOLLIN) && !c->ready && in_buffered(c)) {
		c->ready = true;
		c->ready_next = l->ready;
		l->ready = c;
	}
}

static void hs_add(struct loop *l, struct conn *c)
{
	c->handshaking = true;
	c->hs_want = EPOLLIN;
	c->hs_deadline = now_ms() + HS_TIMEOUT_MS;
	c->hs_prev = l->hs_tail;
	c->hs_next = NULL;
	if (l->hs_tail)
		l->hs_tail->hs_next = c;
	else
		l->hs_head = c;
	l->hs_tail = c;
	l->hs_count++;
}

/* Drops the handshakes past their deadline, and the oldest beyond HS_MAX.
 * Called between batches of events, so no event of this batch names them. */
static void hs_expire(struct loop *l)
{
	int64_t now = now_ms();

	while (l->hs_head && (l->hs_count > HS_MAX || l->hs_head->hs_deadline <= now)) {
		atomic_fetch_add(&l->srv->tls_dropped, 1);
		server_conn_close(l, l->hs_head);
	}
}

/* After a worker's reply was appended to c: sends, parses what waited, or
 * closes c when it hung up meanwhile. */
static void conn_resume(struct loop *l, struct conn *c)
{
	if (c->hup) {
		server_conn_close(l, c);
		return;
	}
	if (!serve_input(l, c)) {
		server_conn_close(l, c);
		return;
	}
	conn_after(l, c);
}

static void conn_event(struct loop *l, struct conn *c, uint32_t ev)
{
	if (c->busy) {
		/* a worker holds a request of it: it is not read, and not freed
		 * before the reply comes back (conn_resume) */
		if ((ev & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) || !flush_out(c)) {
			c->hup = true;
			epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
			return;
		}
		conn_after(l, c);
		return;
	}
	if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) {
		server_conn_close(l, c);
		return;
	}
	if (c->handshaking) {
		if (!handshake(l->srv, l, c)) {
			server_conn_close(l, c);
			return;
		}
		if (c->handshaking) {
			watch(l, c, c->hs_want);
			return;
		}
		ev |= EPOLLIN; /* requests may have come with the handshake's end */
	}
	bool readable = (ev & EPOLLIN) || (c->tls_read_wants_out && (ev & EPOLLOUT));
	if (readable && !c->closing) {
		bool broken = false;
		c->tls_read_wants_out = false;
		bool open = c->seal ? read_sealed(c, &broken) : read_in(c);
		if (broken) {
			atomic_fetch_add(&l->srv->errors, 1);
			server_conn_close(l, c);
			return;
		}
		if (!serve_input(l, c)) {
			server_conn_close(l, c);
			return;
		}
		if (!open)
			c->closing = true;
	}
	conn_after(l, c);
}

static void accept_all(struct loop *l, int lfd, bool trusted)
{
	struct server *srv = l->srv;

	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (atomic_load(&srv->conns) >= srv->max_conns) {
			atomic_fetch_add(&srv->rejected_conns, 1);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->fd = fd;
		c->events = EPOLLIN;
		/* the control socket is reached only through DATA_DIR's permissions */
		c->authed = srv->key == NULL || trusted;
		c->tls = srv->tls && !trusted;
		struct epoll_event e = { .events = EPOLLIN | EPOLLRDHUP, .data.ptr = c };
		if (epoll_ctl(l->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = l->conns;
		if (l->conns)
			l->conns->prev = c;
		l->conns = c;
		if (c->tls)
			hs_add(l, c);
		atomic_fetch_add(&srv->conns, 1);
		atomic_fetch_add(&srv->total_conns, 1);
	}
}

void *server_loop_main(void *arg)
{
	struct loop *l = arg;
	struct server *srv = l->srv;
	struct epoll_event ev[64];

	for (;;) {
		int timeout = -1;
		if (l->ready) {
			timeout = 0;
		} else if (l->hs_head) {
			int64_t left = l->hs_head->hs_deadline - now_ms();
			timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
		}
		int n = epoll_wait(l->ep, ev, 64, timeout);
		bool woken = false;
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (ev[i].data.ptr == &srv->lfd)
				accept_all(l, srv->lfd, false);
			else if (ev[i].data.ptr == &srv->ufd)
				accept_all(l, srv->ufd, true);
			else if (ev[i].data.ptr == &srv->stopfd)
				goto out;
			else if (ev[i].data.ptr == &l->wakefd)
				woken = true;
			else
				conn_event(l, ev[i].data.ptr, ev[i].events);
		}
		/* last: it may close connections that events above still named */
		if (woken) {
			struct conn *c;
			server_worker_woken(l);
			while ((c = server_worker_reply(l)) != NULL)
				conn_resume(l, c);
		}
		hs_expire(l);
		/* each event closes only its own connection, so the list stays sound */
		struct conn *r = l->ready;
		l->ready = NULL;
		while (r) {
			struct conn *c = r;
			r = c->ready_next;
			c->ready = false;
			conn_event(l, c, EPOLLIN);
		}
	}
out:
	return NULL;
}
