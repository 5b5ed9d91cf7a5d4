/*
 * client - the blocking node-protocol client. The socket is non-blocking and
 * every wait is a poll() with the connection's deadline, so a dead or stuck
 * peer costs at most the timeout, never a hung thread. Under the protocol the
 * bytes go plainly, through TLS, or as sealed records: channel.c. Every
 * request and reply: docs/PROTOCOL.md.
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
#include <sys/un.h>
#include <unistd.h>

#include "client_i.h"
#include "proto.h"

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
		rc = mc_wait_fd(fd, POLLOUT, ms);
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
	if (!unix_socket && (rc = mc_channel_tls(c, host)) < 0) {
		mc_close(c);
		return rc;
	}
	uint8_t cn[AUTH_NONCE], sn[AUTH_NONCE];
	if (key && ((rc = authenticate(c, key, cn, sn)) < 0 ||
		    (!c->ssl && (rc = mc_channel_seal(c, key, cn, sn)) < 0))) {
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
	mc_channel_free(c);
	close(c->fd);
	free(c->buf);
	free(c);
}

bool mc_idle_ok(struct mc_conn *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN | POLLRDHUP };

	if (c->pos != c->len)
		return false;
	return poll(&p, 1, 0) == 0;
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
	r = mc_recv_some(c, c->buf + c->len, c->cap - c->len);
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
		ssize_t r = mc_recv_some(c, (char *)dst + have, n - have);
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
		 const struct store_version *v, bool tombstone, const struct store_attr *attr)
{
	char head[64], tail[96];
	int tl = snprintf(tail, sizeof(tail), " %" PRIu64 " %" PRIu32 " %zu%s", v->stamp, v->node,
			  tombstone ? (size_t)0 : vlen, tombstone ? " T" : "");
	/* the attributes only when there are any: a plain record reads as before */
	if (!tombstone && attr && attr->flags)
		tl += snprintf(tail + tl, sizeof(tail) - (size_t)tl, " F%" PRIu32, attr->flags);
	if (!tombstone && attr && attr->expires)
		tl += snprintf(tail + tl, sizeof(tail) - (size_t)tl, " E%" PRIu32, attr->expires);
	tl += snprintf(tail + tl, sizeof(tail) - (size_t)tl, "\r\n");
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

/* Parses "XVALUE KEY STAMP NODE BYTES HASH [T] [F<flags>] [E<expires>]". */
static int parse_xvalue(const char *line, struct store_meta *m, size_t *bytes)
{
	char key[PROTO_KEY_MAX + 1];
	uint64_t stamp, hash;
	unsigned node;
	size_t n;
	int used = 0;

	memset(m, 0, sizeof(*m));
	int got = sscanf(line, "XVALUE %250s %" SCNu64 " %u %zu %" SCNx64 "%n", key, &stamp, &node,
			 &n, &hash, &used);
	if (got < 5 || n > PROTO_VALUE_MAX)
		return -EPROTO;
	m->version.stamp = stamp;
	m->version.node = node;
	m->value_hash = hash;
	m->size = (uint32_t)n;
	for (const char *p = line + used; *p;) {
		char *end;
		unsigned long long v;
		while (*p == ' ')
			p++;
		if (!*p)
			break;
		char f = *p++;
		if (f == 'T' && (*p == ' ' || !*p)) {
			m->tombstone = true;
			continue;
		}
		if (f != 'F' && f != 'E') { /* a later version's token: not ours to read */
			while (*p && *p != ' ')
				p++;
			continue;
		}
		if (*p < '0' || *p > '9')
			return -EPROTO;
		v = strtoull(p, &end, 10);
		if (v > UINT32_MAX || (*end != ' ' && *end))
			return -EPROTO;
		if (f == 'F')
			m->attr.flags = (uint32_t)v;
		else
			m->attr.expires = (uint32_t)v;
		p = end;
	}
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
