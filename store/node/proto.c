/*
 * proto - parser of the node protocol's requests (docs/PROTOCOL.md).
 *
 * A request is a line ending in "\n" (a "\r" before it is dropped) and, for
 * storage commands, a data block of the announced length plus "\r\n". The
 * parser never trusts a number before checking its range, answers what it can
 * skip with an error reply, and gives up (close) only on a line too long to
 * find the next one.
 */
#include "proto.h"

#include <errno.h>
#include <string.h>

bool proto_token(const char *args, size_t len, size_t *pos, const char **tok, size_t *tlen)
{
	size_t i = *pos;

	while (i < len && args[i] == ' ')
		i++;
	if (i >= len)
		return false;
	size_t start = i;
	while (i < len && args[i] != ' ')
		i++;
	*tok = args + start;
	*tlen = i - start;
	*pos = i;
	return true;
}

int proto_tree_path(const char *path, size_t n, uint8_t *nib, size_t max)
{
	if (n > max)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char ch = path[i];
		if (ch >= '0' && ch <= '9')
			nib[i] = (uint8_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			nib[i] = (uint8_t)(ch - 'a' + 10);
		else
			return -EINVAL;
	}
	return (int)n;
}

bool proto_key_ok(const char *key, size_t n)
{
	if (n == 0 || n > PROTO_KEY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] <= ' ' || key[i] == 0x7f)
			return false;
	return true;
}

/* Parses a decimal number of at most max; false on anything else. */
static bool number(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		unsigned d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static long bad(struct proto_req *req, long consumed, const char *msg)
{
	req->cmd = PROTO_ERROR;
	req->error = msg;
	return consumed;
}

/*
 * The data block of a storage command whose line took line_len bytes and
 * announced bytes: complete, incomplete, or swallowed with err when err is set
 * (the request was refused but its data must still be skipped).
 */
static long data_block(const char *buf, size_t len, size_t line_len, uint64_t bytes,
		       struct proto_req *req, const char *err)
{
	if (err || bytes > PROTO_VALUE_MAX) {
		req->cmd = PROTO_SWALLOW;
		req->error = err ? err : "SERVER_ERROR object too large for cache";
		req->swallow = bytes + 2;
		return (long)line_len;
	}
	size_t total = line_len + bytes + 2;
	if (len < total) {
		req->need = total;
		return 0;
	}
	if (buf[line_len + bytes] != '\r' || buf[line_len + bytes + 1] != '\n')
		return bad(req, (long)total, "CLIENT_ERROR bad data chunk");
	req->data = (const uint8_t *)buf + line_len;
	req->data_len = bytes;
	return (long)total;
}

/* set/add/replace KEY FLAGS EXPTIME BYTES [noreply], and the refused
 * storage commands (cas, append, prepend) whose data is skipped. */
static long storage(const char *buf, size_t len, size_t line_len, const char *a, size_t alen,
		    struct proto_req *req, const char *refuse)
{
	const char *t[6];
	size_t tl[6], pos = 0;
	int n = 0;
	uint64_t flags, exptime, bytes;
	bool cas = req->cmd == PROTO_ERROR; /* cas carries one more number */

	while (n < 6 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	const char *extra;
	size_t extra_len;
	if (proto_token(a, alen, &pos, &extra, &extra_len))
		return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
	int need = cas ? 5 : 4;
	if (n < need || n > need + 1 || !number(t[1], tl[1], UINT32_MAX, &flags) ||
	    !number(t[2], tl[2], UINT64_MAX / 2, &exptime) ||
	    !number(t[3], tl[3], UINT64_MAX / 4, &bytes))
		return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
	if (n == need + 1 && !word_is(t[need], tl[need], "noreply"))
		return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
	req->noreply = n == need + 1;
	if (!proto_key_ok(t[0], tl[0]))
		refuse = "CLIENT_ERROR bad command line format";
	req->key = t[0];
	req->key_len = tl[0];
	req->flags = (uint32_t)flags;
	return data_block(buf, len, line_len, bytes, req, refuse);
}

/* xset KEY STAMP NODE BYTES [T] [noreply] */
static long xset(const char *buf, size_t len, size_t line_len, const char *a, size_t alen,
		 struct proto_req *req)
{
	const char *t[7];
	size_t tl[7], pos = 0;
	int n = 0;
	uint64_t stamp, node, bytes;

	while (n < 7 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	if (n < 4 || n > 6 || !number(t[1], tl[1], UINT64_MAX, &stamp) ||
	    !number(t[2], tl[2], UINT32_MAX, &node) ||
	    !number(t[3], tl[3], UINT64_MAX / 4, &bytes))
		return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
	for (int i = 4; i < n; i++) {
		if (word_is(t[i], tl[i], "T") && !req->tombstone && !req->noreply)
			req->tombstone = true;
		else if (word_is(t[i], tl[i], "noreply") && !req->noreply)
			req->noreply = true;
		else
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
	}
	req->key = t[0];
	req->key_len = tl[0];
	req->stamp = stamp;
	req->node = (uint32_t)node;
	const char *refuse = NULL;
	if (!proto_key_ok(t[0], tl[0]))
		refuse = "CLIENT_ERROR bad command line format";
	else if (req->tombstone && bytes != 0)
		refuse = "CLIENT_ERROR a tombstone has no value";
	return data_block(buf, len, line_len, bytes, req, refuse);
}

/* Checks every key of a retrieval command. */
static long retrieval(size_t line_len, const char *a, size_t alen, struct proto_req *req)
{
	const char *k;
	size_t kl, pos = 0;
	int n = 0;

	while (proto_token(a, alen, &pos, &k, &kl)) {
		if (!proto_key_ok(k, kl))
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
		n++;
	}
	if (n == 0)
		return bad(req, (long)line_len, "ERROR");
	return (long)line_len;
}

/* Commands of one token or an optional argument or two: delete, stats,
 * verbosity, xls, auth, version, quit. Returns -2 when cmd is not one of them. */
static long simple(const char *w, size_t wl, size_t line_len, const char *a, size_t alen,
		   struct proto_req *req)
{
	const char *t[4];
	size_t tl[4], pos = 0;
	int n = 0;

	while (n < 4 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	if (word_is(w, wl, "delete")) {
		/* delete KEY [0] [noreply]: the 0 is what old clients send as a time */
		req->cmd = PROTO_DELETE;
		if (n < 1 || n > 3 || !proto_key_ok(t[0], tl[0]))
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
		for (int i = 1; i < n; i++) {
			if (word_is(t[i], tl[i], "noreply"))
				req->noreply = true;
			else if (!(i == 1 && word_is(t[i], tl[i], "0")))
				return bad(req, (long)line_len,
					   "CLIENT_ERROR bad command line format");
		}
		req->key = t[0];
		req->key_len = tl[0];
		return (long)line_len;
	}
	if (word_is(w, wl, "stats")) {
		req->cmd = PROTO_STATS;
		return (long)line_len;
	}
	if (word_is(w, wl, "version") || word_is(w, wl, "quit")) {
		req->cmd = w[0] == 'v' ? PROTO_VERSION : PROTO_QUIT;
		return n == 0 ? (long)line_len : bad(req, (long)line_len, "ERROR");
	}
	if (word_is(w, wl, "verbosity")) {
		uint64_t level;
		req->cmd = PROTO_VERBOSITY;
		if (n < 1 || n > 2 || !number(t[0], tl[0], UINT32_MAX, &level) ||
		    (n == 2 && !word_is(t[1], tl[1], "noreply")))
			return bad(req, (long)line_len, "ERROR");
		req->noreply = n == 2;
		return (long)line_len;
	}
	if (word_is(w, wl, "xls")) {
		req->cmd = PROTO_XLS;
		if (n > 1 || (n == 1 && tl[0] > PROTO_KEY_MAX))
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
		req->key = n ? t[0] : a;
		req->key_len = n ? tl[0] : 0;
		return (long)line_len;
	}
	if (word_is(w, wl, "auth")) {
		req->cmd = PROTO_AUTH;
		if (n < 1 || n > 2)
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
		return (long)line_len;
	}
	return -2;
}

long proto_parse(const char *buf, size_t len, struct proto_req *req)
{
	size_t scan = len < PROTO_LINE_MAX ? len : PROTO_LINE_MAX;
	const char *nl = memchr(buf, '\n', scan);

	memset(req, 0, sizeof(*req));
	if (!nl)
		return len >= PROTO_LINE_MAX ? -1 : 0;
	size_t line_len = (size_t)(nl - buf) + 1;
	size_t end = line_len - 1;
	if (end > 0 && buf[end - 1] == '\r')
		end--;

	const char *w;
	size_t wl, pos = 0;
	if (!proto_token(buf, end, &pos, &w, &wl))
		return bad(req, (long)line_len, "ERROR");
	const char *a = buf + pos;
	size_t alen = end - pos;
	req->args = a;
	req->args_len = alen;

	if (word_is(w, wl, "get") || word_is(w, wl, "gets") || word_is(w, wl, "xget")) {
		req->cmd = w[0] == 'x' ? PROTO_XGET : wl == 4 ? PROTO_GETS : PROTO_GET;
		return retrieval(line_len, a, alen, req);
	}
	if (word_is(w, wl, "set") || word_is(w, wl, "add") || word_is(w, wl, "replace")) {
		req->cmd = w[0] == 's' ? PROTO_SET : w[0] == 'a' ? PROTO_ADD : PROTO_REPLACE;
		return storage(buf, len, line_len, a, alen, req, NULL);
	}
	if (word_is(w, wl, "append") || word_is(w, wl, "prepend")) {
		req->cmd = PROTO_SET;
		return storage(buf, len, line_len, a, alen, req,
			       "SERVER_ERROR append and prepend are not supported");
	}
	if (word_is(w, wl, "cas")) {
		req->cmd = PROTO_ERROR; /* storage() reads this as "one more number" */
		return storage(buf, len, line_len, a, alen, req,
			       "SERVER_ERROR cas is not supported");
	}
	if (word_is(w, wl, "xset")) {
		req->cmd = PROTO_XSET;
		return xset(buf, len, line_len, a, alen, req);
	}
	if (word_is(w, wl, "mput")) {
		const char *t[3];
		size_t tl[3], pos2 = 0;
		int n = 0;
		uint64_t bytes;
		req->cmd = PROTO_MPUT;
		while (n < 3 && proto_token(a, alen, &pos2, &t[n], &tl[n]))
			n++;
		if (n < 1 || n > 2 || !number(t[0], tl[0], UINT64_MAX / 4, &bytes) ||
		    (n == 2 && !word_is(t[1], tl[1], "noreply")))
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
		req->noreply = n == 2;
		return data_block(buf, len, line_len, bytes, req, NULL);
	}
	if (word_is(w, wl, "xmap")) {
		const char *t[2];
		size_t tl[2], pos2 = 0;
		int n = 0;
		uint64_t bytes;
		req->cmd = PROTO_XMAP;
		while (n < 2 && proto_token(a, alen, &pos2, &t[n], &tl[n]))
			n++;
		if (n == 0)
			return (long)line_len;
		if (n > 1 || !number(t[0], tl[0], UINT64_MAX / 4, &bytes))
			return bad(req, (long)line_len, "CLIENT_ERROR bad command line format");
		return data_block(buf, len, line_len, bytes, req, NULL);
	}
	if (word_is(w, wl, "ptree")) {
		req->cmd = PROTO_PTREE; /* the arguments are checked where they are used */
		return (long)line_len;
	}
	if (word_is(w, wl, "GET")) {
		/* an HTTP request line: the metrics endpoint shares the port */
		const char *t;
		size_t tl, p2 = 0;
		req->cmd = PROTO_HTTP;
		if (!proto_token(a, alen, &p2, &t, &tl) || t[0] != '/')
			return bad(req, (long)line_len, "ERROR");
		req->key = t;
		req->key_len = tl;
		return (long)line_len;
	}
	if (word_is(w, wl, "mtree") || word_is(w, wl, "mget") || word_is(w, wl, "mgc")) {
		req->cmd = PROTO_MEXT;
		req->key = w;
		req->key_len = wl;
		return (long)line_len;
	}
	long rc = simple(w, wl, line_len, a, alen, req);
	if (rc != -2)
		return rc;
	if (word_is(w, wl, "incr") || word_is(w, wl, "decr") || word_is(w, wl, "touch") ||
	    word_is(w, wl, "gat") || word_is(w, wl, "gats") || word_is(w, wl, "flush_all"))
		return bad(req, (long)line_len, "SERVER_ERROR not supported");
	return bad(req, (long)line_len, "ERROR");
}
