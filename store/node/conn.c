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
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_i.h"

void server_conn_close(struct loop *l, struct conn *c)
{
	epoll_ctl(l->ep, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
	atomic_fetch_sub(&l->srv->conns, 1);
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

/* Sends what it can; false when the connection failed. */
static bool flush_out(struct conn *c)
{
	while (c->out_pos < c->out_len) {
		ssize_t w = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
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

/* Reads what is there (a bounded amount per wakeup); false on end or error. */
static bool read_in(struct conn *c)
{
	for (int round = 0; round < 8; round++) {
		if (c->in_len == c->in_cap) {
			if (c->in_cap >= IN_MAX)
				return false; /* cannot happen: the parser bounds a request */
			size_t cap = c->in_cap ? c->in_cap * 2 : IN_MIN;
			if (c->need > cap)
				cap = c->need; /* the whole value at once, not by doublings */
			if (cap > IN_MAX)
				cap = IN_MAX;
			char *b = realloc(c->in, cap);
			if (!b)
				return false;
			c->in = b;
			c->in_cap = cap;
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (r > 0) {
			c->in_len += (size_t)r;
			if (c->in_len < c->in_cap)
				return true;
			continue;
		}
		if (r == 0)
			return false;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN;
	}
	return true;
}

/* Sends what it can, parses what waited for room, closes when done, and
 * sets what epoll watches for c. */
static void conn_after(struct loop *l, struct conn *c)
{
	if (!flush_out(c) || c->oom) {
		server_conn_close(l, c);
		return;
	}
	/* input left over because the output was full: parse it as output drains */
	if (c->in_len && !c->closing && !c->busy && c->out_len - c->out_pos <= OUT_HIGH) {
		process(l, c);
		if (!flush_out(c) || c->oom) {
			server_conn_close(l, c);
			return;
		}
	}
	if (c->closing && !c->busy && c->out_len == c->out_pos) {
		server_conn_close(l, c);
		return;
	}
	uint32_t want = c->out_len > c->out_pos ? EPOLLOUT : 0;
	if (!c->closing && !c->busy && c->out_len - c->out_pos <= OUT_HIGH)
		want |= EPOLLIN;
	if (want != c->events) {
		struct epoll_event e = { .events = want | EPOLLRDHUP, .data.ptr = c };
		c->events = want;
		epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &e);
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
	process(l, c);
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
	if ((ev & EPOLLIN) && !c->closing) {
		bool open = read_in(c);
		process(l, c);
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
		int n = epoll_wait(l->ep, ev, 64, -1);
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
	}
out:
	return NULL;
}
