/*
 * proto - parser of the node protocol's requests (docs/PROTOCOL.md): the
 * classic memcache commands, the meta commands and caskfs's extensions.
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

/* An exptime or TTL: a decimal number, negative allowed, within +-2^62. */
static bool snumber(const char *s, size_t n, int64_t *out)
{
	uint64_t v;
	bool neg = n > 0 && s[0] == '-';

	if (!number(s + neg, n - neg, (uint64_t)1 << 62, &v))
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
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

#define BAD_FORMAT "CLIENT_ERROR bad command line format"

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

/* set/add/replace/append/prepend KEY FLAGS EXPTIME BYTES [noreply] and
 * cas KEY FLAGS EXPTIME BYTES CAS [noreply]. Once BYTES is readable, any
 * other fault still skips the data block. */
static long storage(const char *buf, size_t len, size_t line_len, const char *a, size_t alen,
		    struct proto_req *req)
{
	const char *t[7];
	size_t tl[7], pos = 0;
	int n = 0, need = req->cmd == PROTO_CAS ? 5 : 4;
	uint64_t flags, bytes;

	while (n < 7 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	if (n < 4 || n > need + 1 || !number(t[3], tl[3], UINT64_MAX / 4, &bytes))
		return bad(req, (long)line_len, BAD_FORMAT);
	const char *refuse = NULL;
	if (n < need || !proto_key_ok(t[0], tl[0]) || !number(t[1], tl[1], UINT32_MAX, &flags) ||
	    !snumber(t[2], tl[2], &req->exptime) ||
	    (req->cmd == PROTO_CAS &&
	     !(req->has_cas = number(t[4], tl[4], UINT64_MAX, &req->cas))) ||
	    (n == need + 1 && !word_is(t[need], tl[need], "noreply")))
		refuse = BAD_FORMAT;
	req->noreply = n == need + 1;
	req->key = t[0];
	req->key_len = tl[0];
	req->flags = refuse ? 0 : (uint32_t)flags;
	return data_block(buf, len, line_len, bytes, req, refuse);
}

/* xset KEY STAMP NODE BYTES [T] [F<flags>] [E<expires>] [noreply] */
static long xset(const char *buf, size_t len, size_t line_len, const char *a, size_t alen,
		 struct proto_req *req)
{
	const char *t[9];
	size_t tl[9], pos = 0;
	int n = 0;
	uint64_t stamp, node, bytes, v;
	bool has_flags = false, has_expires = false;

	while (n < 9 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	if (n < 4 || n > 8 || !number(t[1], tl[1], UINT64_MAX, &stamp) ||
	    !number(t[2], tl[2], UINT32_MAX, &node) || !number(t[3], tl[3], UINT64_MAX / 4, &bytes))
		return bad(req, (long)line_len, BAD_FORMAT);
	for (int i = 4; i < n; i++) {
		if (word_is(t[i], tl[i], "T") && !req->tombstone && !req->noreply) {
			req->tombstone = true;
		} else if (word_is(t[i], tl[i], "noreply") && !req->noreply) {
			req->noreply = true;
		} else if (t[i][0] == 'F' && !has_flags && !req->noreply &&
			   number(t[i] + 1, tl[i] - 1, UINT32_MAX, &v)) {
			has_flags = true;
			req->flags = (uint32_t)v;
		} else if (t[i][0] == 'E' && !has_expires && !req->noreply &&
			   number(t[i] + 1, tl[i] - 1, UINT32_MAX, &v)) {
			has_expires = true;
			req->expires = (uint32_t)v;
		} else {
			return bad(req, (long)line_len, BAD_FORMAT);
		}
	}
	req->key = t[0];
	req->key_len = tl[0];
	req->stamp = stamp;
	req->node = (uint32_t)node;
	const char *refuse = NULL;
	if (!proto_key_ok(t[0], tl[0]))
		refuse = BAD_FORMAT;
	else if (req->tombstone && (bytes != 0 || has_flags || has_expires))
		refuse = "CLIENT_ERROR a tombstone has no value";
	return data_block(buf, len, line_len, bytes, req, refuse);
}

/* xop MODE KEY CAS|- DELTA FLAGS EXPIRES BYTES */
static long xop(const char *buf, size_t len, size_t line_len, const char *a, size_t alen,
		struct proto_req *req)
{
	const char *t[8];
	size_t tl[8], pos = 0;
	int n = 0;
	uint64_t flags, expires, bytes;

	while (n < 8 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	if (n != 7 || !number(t[6], tl[6], UINT64_MAX / 4, &bytes))
		return bad(req, (long)line_len, BAD_FORMAT);
	const char *refuse = NULL;
	req->has_cas = !word_is(t[2], tl[2], "-");
	if (!proto_key_ok(t[1], tl[1]) ||
	    (req->has_cas && !number(t[2], tl[2], UINT64_MAX, &req->cas)) ||
	    !number(t[3], tl[3], UINT64_MAX, &req->delta) ||
	    !number(t[4], tl[4], UINT32_MAX, &flags) || !number(t[5], tl[5], UINT32_MAX, &expires))
		refuse = BAD_FORMAT;
	req->mode = t[0];
	req->mode_len = tl[0];
	req->key = t[1];
	req->key_len = tl[1];
	req->flags = refuse ? 0 : (uint32_t)flags;
	req->expires = refuse ? 0 : (uint32_t)expires;
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
			return bad(req, (long)line_len, BAD_FORMAT);
		if (n == 0) {
			req->key = k;
			req->key_len = kl;
		}
		n++;
	}
	if (n == 0)
		return bad(req, (long)line_len, "ERROR");
	return (long)line_len;
}

/* gat|gats EXPTIME KEY...: args is narrowed to the keys. */
static long gat(size_t line_len, const char *a, size_t alen, struct proto_req *req)
{
	const char *t;
	size_t tl, pos = 0;

	if (!proto_token(a, alen, &pos, &t, &tl))
		return bad(req, (long)line_len, "ERROR");
	if (!snumber(t, tl, &req->exptime))
		return bad(req, (long)line_len, "CLIENT_ERROR invalid exptime argument");
	req->args = a + pos;
	req->args_len = alen - pos;
	return retrieval(line_len, req->args, req->args_len, req);
}

/*
 * The flags of a meta command: single characters, some with a token after
 * them (memcached 1.6's protocol.txt, "Meta Commands"). allowed lists what
 * the command takes, ignored what it takes and leaves alone; refused the
 * flags memcached knows that this node does not implement. Returns NULL or
 * the error line.
 */
static const char *meta_flags(const char *a, size_t alen, size_t pos, const char *allowed,
			      const char *ignored, const char *refused, struct proto_meta *m)
{
	const char *t;
	size_t tl;
	uint64_t seen[2] = { 0, 0 }, v;
	int count = 0;

	while (proto_token(a, alen, &pos, &t, &tl)) {
		unsigned char f = (unsigned char)t[0];
		const char *tok = t + 1;
		size_t tokl = tl - 1;

		if (++count > 24)
			return BAD_FORMAT;
		if (f == 0 || f >= 128 || (!strchr(allowed, f) && !strchr(ignored, f))) {
			if (f && f < 128 && strchr(refused, f))
				return "CLIENT_ERROR unsupported flag";
			return "CLIENT_ERROR invalid flag";
		}
		if (seen[f / 64] & ((uint64_t)1 << (f % 64)))
			return "CLIENT_ERROR duplicate flag";
		seen[f / 64] |= (uint64_t)1 << (f % 64);
		if (strchr(ignored, f))
			continue;
		switch (f) {
		case 'c':
		case 'f':
		case 'k':
		case 's':
		case 't':
			m->ret[m->nret++] = (char)f;
			m->t_first |= f == 't' && !m->has_ttl;
			break;
		case 'O':
			if (tokl > 32)
				return "CLIENT_ERROR opaque token too long";
			m->opaque = tok;
			m->opaque_len = tokl;
			m->ret[m->nret++] = 'O';
			break;
		case 'v':
			m->value = true;
			break;
		case 'q':
			m->quiet = true;
			break;
		case 'T':
			if (!snumber(tok, tokl, &m->ttl))
				return "CLIENT_ERROR bad token in command line format";
			m->has_ttl = true;
			break;
		case 'C':
			if (!number(tok, tokl, UINT64_MAX, &m->cas))
				return "CLIENT_ERROR bad token in command line format";
			m->has_cas = true;
			break;
		case 'F':
			if (!number(tok, tokl, UINT32_MAX, &v))
				return BAD_FORMAT;
			m->flags = (uint32_t)v;
			m->has_flags = true;
			break;
		case 'M': {
			char mode = tokl == 1 ? (char)(tok[0] & ~0x20) : 0;
			if (!mode || !strchr("SEAPR", mode))
				return "CLIENT_ERROR invalid mode for ms M token";
			m->mode = mode;
			break;
		}
		}
	}
	return NULL;
}

/* mg KEY FLAG..., ms KEY BYTES FLAG... (+ data), md KEY FLAG..., mn */
static long meta(const char *buf, size_t len, size_t line_len, const char *a, size_t alen,
		 struct proto_req *req)
{
	const char *t;
	size_t tl, pos = 0;
	const char *err;
	uint64_t bytes = 0;

	if (req->cmd == PROTO_MN)
		return (long)line_len; /* memcached ignores what follows mn */
	if (!proto_token(a, alen, &pos, &t, &tl))
		return bad(req, (long)line_len, "ERROR");
	req->key = t;
	req->key_len = tl;
	req->meta.mode = 'S';
	if (req->cmd == PROTO_MS) {
		const char *b;
		size_t bl;
		if (!proto_token(a, alen, &pos, &b, &bl) || !number(b, bl, UINT64_MAX / 4, &bytes))
			return bad(req, (long)line_len, BAD_FORMAT);
		err = meta_flags(a, alen, pos, "cCFkOqTM", "fstvuPL", "bI", &req->meta);
		if (!err && !proto_key_ok(t, tl))
			err = BAD_FORMAT;
		return data_block(buf, len, line_len, bytes, req, err);
	}
	if (req->cmd == PROTO_MG)
		err = meta_flags(a, alen, pos, "cfkOqstvT", "uPL", "bhlNRE", &req->meta);
	else
		err = meta_flags(a, alen, pos, "CkOq", "TPL", "bI", &req->meta);
	if (!err && !proto_key_ok(t, tl))
		err = BAD_FORMAT;
	return err ? bad(req, (long)line_len, err) : (long)line_len;
}

/* incr|decr KEY DELTA [noreply], touch KEY EXPTIME [noreply],
 * flush_all [DELAY] [noreply]. Returns -2 when cmd is not one of them. */
static long keyed(const char *w, size_t wl, size_t line_len, const char *a, size_t alen,
		  struct proto_req *req)
{
	const char *t[4];
	size_t tl[4], pos = 0;
	int n = 0;

	while (n < 4 && proto_token(a, alen, &pos, &t[n], &tl[n]))
		n++;
	if (word_is(w, wl, "flush_all")) {
		req->cmd = PROTO_FLUSH_ALL;
		if (n > 0 && word_is(t[n - 1], tl[n - 1], "noreply")) {
			req->noreply = true;
			n--;
		}
		if (n > 1)
			return bad(req, (long)line_len, "ERROR");
		if (n == 1 && !snumber(t[0], tl[0], &req->exptime))
			return bad(req, (long)line_len, "CLIENT_ERROR invalid exptime argument");
		return (long)line_len;
	}
	if (word_is(w, wl, "incr") || word_is(w, wl, "decr"))
		req->cmd = w[0] == 'i' ? PROTO_INCR : PROTO_DECR;
	else if (word_is(w, wl, "touch"))
		req->cmd = PROTO_TOUCH;
	else
		return -2;
	if (n < 2 || n > 3 || (n == 3 && !word_is(t[2], tl[2], "noreply")))
		return bad(req, (long)line_len, "ERROR");
	req->noreply = n == 3;
	req->key = t[0];
	req->key_len = tl[0];
	if (!proto_key_ok(t[0], tl[0]))
		return bad(req, (long)line_len, BAD_FORMAT);
	if (req->cmd == PROTO_TOUCH && !snumber(t[1], tl[1], &req->exptime))
		return bad(req, (long)line_len, "CLIENT_ERROR invalid exptime argument");
	if (req->cmd != PROTO_TOUCH && !number(t[1], tl[1], UINT64_MAX, &req->delta))
		return bad(req, (long)line_len, "CLIENT_ERROR invalid numeric delta argument");
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
			return bad(req, (long)line_len, BAD_FORMAT);
		for (int i = 1; i < n; i++) {
			if (word_is(t[i], tl[i], "noreply"))
				req->noreply = true;
			else if (!(i == 1 && word_is(t[i], tl[i], "0")))
				return bad(req, (long)line_len, BAD_FORMAT);
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
			return bad(req, (long)line_len, BAD_FORMAT);
		req->key = n ? t[0] : a;
		req->key_len = n ? tl[0] : 0;
		return (long)line_len;
	}
	if (word_is(w, wl, "auth")) {
		req->cmd = PROTO_AUTH;
		if (n < 1 || n > 2)
			return bad(req, (long)line_len, BAD_FORMAT);
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
	if (wl == 2 && w[0] == 'm' && w[1] && strchr("gsdn", w[1])) {
		req->cmd = w[1] == 'g'	 ? PROTO_MG
			   : w[1] == 's' ? PROTO_MS
			   : w[1] == 'd' ? PROTO_MD
					 : PROTO_MN;
		return meta(buf, len, line_len, a, alen, req);
	}
	static const struct {
		const char *word;
		enum proto_cmd cmd;
	} storage_cmds[] = {
		{ "set", PROTO_SET },	      { "add", PROTO_ADD },
		{ "replace", PROTO_REPLACE }, { "append", PROTO_APPEND },
		{ "prepend", PROTO_PREPEND }, { "cas", PROTO_CAS },
	};
	for (size_t i = 0; i < sizeof(storage_cmds) / sizeof(storage_cmds[0]); i++) {
		if (word_is(w, wl, storage_cmds[i].word)) {
			req->cmd = storage_cmds[i].cmd;
			return storage(buf, len, line_len, a, alen, req);
		}
	}
	if (word_is(w, wl, "gat") || word_is(w, wl, "gats")) {
		req->cmd = wl == 4 ? PROTO_GATS : PROTO_GAT;
		return gat(line_len, a, alen, req);
	}
	if (word_is(w, wl, "xset")) {
		req->cmd = PROTO_XSET;
		return xset(buf, len, line_len, a, alen, req);
	}
	if (word_is(w, wl, "xop")) {
		req->cmd = PROTO_XOP;
		return xop(buf, len, line_len, a, alen, req);
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
			return bad(req, (long)line_len, BAD_FORMAT);
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
	if (rc == -2)
		rc = keyed(w, wl, line_len, a, alen, req);
	if (rc != -2)
		return rc;
	return bad(req, (long)line_len, "ERROR");
}
