/*
 * proto.h - the node protocol: the memcache text protocol (the classic
 * commands and the meta commands mg, ms, md, mn) plus caskfs's extensions
 * (stamped puts, local reads, decided operations, hash-tree queries, key
 * listing, authentication). This is the parser of requests as a server receives them;
 * it takes untrusted bytes, never allocates, and points into the caller's
 * buffer. Every command and error is described in docs/PROTOCOL.md.
 */
#ifndef CASKFS_STORE_NODE_PROTO_H
#define CASKFS_STORE_NODE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest value a client may send or get (memcache's item size limit). */
#define PROTO_VALUE_MAX (16u << 20)
/* Longest command line, terminator included; a longer one closes the connection. */
#define PROTO_LINE_MAX 65536
/* Longest key (memcache's limit, and the store's). */
#define PROTO_KEY_MAX 250

enum proto_cmd {
	PROTO_GET = 1, /* get KEY...: values; KEY may be ?KEY or @PATH */
	PROTO_GETS,    /* gets KEY...: values with their cas (the stamp) */
	PROTO_SET,     /* set KEY FLAGS EXPTIME BYTES [noreply] */
	PROTO_ADD,
	PROTO_REPLACE,
	PROTO_APPEND, /* append KEY FLAGS EXPTIME BYTES [noreply] (flags, exptime unused) */
	PROTO_PREPEND,
	PROTO_CAS,  /* cas KEY FLAGS EXPTIME BYTES CAS [noreply] */
	PROTO_INCR, /* incr KEY DELTA [noreply] */
	PROTO_DECR,
	PROTO_TOUCH, /* touch KEY EXPTIME [noreply] */
	PROTO_GAT,   /* gat EXPTIME KEY...: args holds the keys */
	PROTO_GATS,
	PROTO_FLUSH_ALL, /* flush_all [DELAY] [noreply] */
	PROTO_MG,	 /* mg KEY FLAG...: meta get (meta holds the flags) */
	PROTO_MS,	 /* ms KEY BYTES FLAG...: meta set */
	PROTO_MD,	 /* md KEY FLAG...: meta delete */
	PROTO_MN,	 /* mn: meta no-op */
	PROTO_DELETE,	 /* delete KEY [noreply] */
	PROTO_STATS,	 /* stats [ARG] */
	PROTO_VERSION,	 /* version */
	PROTO_QUIT,	 /* quit */
	PROTO_VERBOSITY, /* verbosity N [noreply]: accepted, ignored */
	PROTO_XSET,	 /* xset KEY STAMP NODE BYTES [T] [F<flags>] [E<expires>] [noreply] */
	PROTO_XOP,	 /* xop MODE KEY CAS|- DELTA FLAGS EXPIRES BYTES: decided here */
	PROTO_XGET,	 /* xget KEY...: local values with stamps, tombstones included */
	PROTO_XLS,	 /* xls [PREFIX]: local keys with stamps */
	PROTO_AUTH,	 /* auth CLIENT_NONCE [PROOF] */
	PROTO_MPUT,    /* mput BYTES [noreply]: namespace records (handled by the server's owner) */
	PROTO_MEXT,    /* mtree PATH, mget HEXKEY, mgc GRACE_MS [dry]: namespace commands */
	PROTO_HTTP,    /* GET PATH HTTP/1.x: key is the path (only /metrics is served) */
	PROTO_XMAP,    /* xmap [BYTES]: the cluster map, with one offered in the data block */
	PROTO_PTREE,   /* ptree DIGEST N SET PEER [PATH]: the tree over a set of buckets */
	PROTO_ERROR,   /* a bad request; reply with error, go on */
	PROTO_SWALLOW, /* a value too large: reply with error, discard swallow bytes */
};

/* The flags of a meta command (mg, ms, md), as memcached 1.6 spells them. */
struct proto_meta {
	char ret[8]; /* return flags in the order asked, of c f k O s t */
	uint8_t nret;
	bool value;	/* v: return the value */
	bool quiet;	/* q: leave out the reply that means "as expected" */
	bool has_ttl;	/* T<ttl> (ttl as an exptime) */
	bool t_first;	/* t came before T: mg reports the TTL from before */
	bool has_cas;	/* C<cas> */
	bool has_flags; /* F<flags> */
	int64_t ttl;
	uint64_t cas;
	uint32_t flags;
	char mode;	    /* ms M<mode>: 'S' (set, default), 'E' add, 'A' append,
			       'P' prepend, 'R' replace; upper case */
	const char *opaque; /* O<opaque>, up to 32 bytes, not terminated */
	size_t opaque_len;
};

struct proto_req {
	enum proto_cmd cmd;
	/* the arguments after the command word (keys of a get, the key of the
	 * others), not terminated; walk them with proto_token() */
	const char *args;
	size_t args_len;
	const char *key; /* the first key (set, delete, xset, xls prefix...), not terminated */
	size_t key_len;
	uint32_t flags;	  /* storage commands, xset F, xop */
	int64_t exptime;  /* storage commands, touch, gat, gats: as the client sent it */
	uint32_t expires; /* xset E, xop: an absolute expiry time (0 never) */
	uint64_t cas;	  /* cas, xop */
	uint64_t delta;	  /* incr, decr, xop */
	uint64_t stamp;	  /* xset */
	uint32_t node;	  /* xset */
	bool tombstone;	  /* xset T */
	bool has_cas;	  /* cas; xop: a CAS was given (not "-") */
	bool noreply;
	const char *mode; /* xop: the mode word, not terminated */
	size_t mode_len;
	struct proto_meta meta; /* mg, ms, md */
	const uint8_t *data;	/* the value of a storage command, data_len bytes */
	size_t data_len;
	const char *error; /* PROTO_ERROR, PROTO_SWALLOW: the reply line, without CRLF */
	size_t swallow;	   /* PROTO_SWALLOW: bytes still to discard after those consumed */
	size_t need;	   /* when proto_parse() returns 0 with a line read: bytes the
			      whole request takes, so the caller can make room at once */
};

/*
 * Parses one request from the len bytes at buf (untrusted; not modified, no
 * terminator needed). Returns the number of bytes the request takes (req
 * filled), 0 when more bytes are needed (req->need then says how many the
 * request takes, when its line is complete), or -1 when the stream cannot be
 * resynchronized (a line longer than PROTO_LINE_MAX): the connection must be
 * closed. Bad requests that can be skipped come back as PROTO_ERROR or
 * PROTO_SWALLOW with the reply to send. req's pointers point into buf (or,
 * for error, at a constant string) and are valid as long as buf is.
 */
long proto_parse(const char *buf, size_t len, struct proto_req *req);

/*
 * Next space-separated token of the len bytes at args, from *pos (start at
 * 0): skips spaces, points *tok into args (not terminated), sets *tlen and
 * advances *pos past the token. Returns false, leaving *tok alone, when no
 * token is left.
 */
bool proto_token(const char *args, size_t len, size_t *pos, const char **tok, size_t *tlen);

/*
 * Parses the PATH of `get @PATH` and `mtree PATH`: at most max lower-case hex
 * digits, each a nibble of the key hash from the tree's root, into nib.
 * Returns the depth (the number of digits) or -EINVAL.
 */
int proto_tree_path(const char *path, size_t n, uint8_t *nib, size_t max);

/* Whether the n bytes at key make a valid memcache key (1..250 bytes, no
 * control characters or spaces). */
bool proto_key_ok(const char *key, size_t n);

#endif
