/*
 * fsx - a random-operation file exerciser: are the bytes written the bytes
 * read back?
 *
 *   fsx [OPTIONS] DIR
 *
 * Works on two files in DIR (so copy_file_range can go from one to the
 * other) and keeps a model of each in memory: its size and every byte. It
 * runs --ops random operations chosen by a PRNG seeded from --seed alone
 * (never from results or the clock), so the same seed and options replay the
 * same sequence: writes of fresh pseudo-random bytes (never a repeated
 * pattern: the filesystem under test deduplicates), reads, truncation up and
 * down, fallocate in each mode, copy_file_range within a file and across the
 * two, mmap writes with msync(MS_SYNC) and mmap reads, close and reopen
 * (about one operation in eight), fsync and fdatasync, dropping the page
 * cache, optional pauses and an optional remount. After every operation the
 * file it touched is checked: fstat and lseek(SEEK_END) (and after an open
 * stat by path) give the model's size, and the whole file read back with
 * pread is the model's bytes.
 *
 * On the first mismatch or unexpected error it prints the seed, the replay
 * command, the last 50 operations, the first differing byte (expected and
 * actual), which operation wrote the expected bytes and whether the bytes
 * are still wrong once the page cache is dropped, and exits 1. On success it
 * prints "seed S: N ops, 0 mismatches" and exits 0. An operation answered
 * EOPNOTSUPP (or ENOSYS) is a failure unless its kind was switched off.
 * Exit status 2 is bad usage.
 *
 * For a FUSE filesystem the kernel's page cache and attribute cache answer
 * most reads, so some checks go further: dropcache operations (and the
 * failure report) drop the file's cached pages first, and --evict has the
 * kernel drop the inode of a file just closed, which makes it send FORGET
 * while the file is opened again (what memory pressure does on a busy
 * machine). tests/test_exerciser.py runs it; scripts/fsx-soak runs it for
 * hours.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20) /* caskfs's chunk size: offsets near its multiples matter */
#define NFILES 2
#define LOG_KEEP 50
#define REOPEN_ONE_IN 8

enum kind {
	OP_WRITE,
	OP_READ,
	OP_TRUNCATE,
	OP_OPEN_TRUNC,
	OP_FALLOC,
	OP_FALLOC_KEEP,
	OP_PUNCH,
	OP_ZERO,
	OP_ZERO_KEEP,
	OP_COPY,
	OP_COPY_CROSS,
	OP_MAPWRITE,
	OP_MAPREAD,
	OP_FSYNC,
	OP_FDATASYNC,
	OP_DROPCACHE,
	/* chosen apart from the weights */
	OP_REOPEN,
	OP_PAUSE,
	OP_REMOUNT,
	OP_KINDS
};

static const char *const kind_name[OP_KINDS] = {
	[OP_WRITE] = "write",	       [OP_READ] = "read",
	[OP_TRUNCATE] = "truncate",    [OP_OPEN_TRUNC] = "open-trunc",
	[OP_FALLOC] = "falloc",	       [OP_FALLOC_KEEP] = "falloc-keep",
	[OP_PUNCH] = "punch",	       [OP_ZERO] = "zero",
	[OP_ZERO_KEEP] = "zero-keep",  [OP_COPY] = "copy",
	[OP_COPY_CROSS] = "copy-x",    [OP_MAPWRITE] = "mapwrite",
	[OP_MAPREAD] = "mapread",      [OP_FSYNC] = "fsync",
	[OP_FDATASYNC] = "fdatasync",  [OP_DROPCACHE] = "dropcache",
	[OP_REOPEN] = "reopen",	       [OP_PAUSE] = "pause",
	[OP_REMOUNT] = "remount",
};

/* Relative frequencies of the kinds chosen by weight (reopen, pause and
 * remount are chosen apart). */
static const unsigned base_weight[OP_REOPEN] = {
	[OP_WRITE] = 200,     [OP_READ] = 60,	   [OP_TRUNCATE] = 60,	 [OP_OPEN_TRUNC] = 4,
	[OP_FALLOC] = 25,     [OP_FALLOC_KEEP] = 20, [OP_PUNCH] = 30,	 [OP_ZERO] = 20,
	[OP_ZERO_KEEP] = 20,  [OP_COPY] = 30,	   [OP_COPY_CROSS] = 30, [OP_MAPWRITE] = 40,
	[OP_MAPREAD] = 30,    [OP_FSYNC] = 15,	   [OP_FDATASYNC] = 15,	 [OP_DROPCACHE] = 25,
};

struct options {
	uint64_t ops;
	uint64_t seed;
	uint64_t maxsize;
	const char *remount_cmd;
	uint64_t remount_every;
	uint64_t pause_every;
	unsigned pause_min_ms, pause_max_ms;
	unsigned gap_min_ms, gap_max_ms; /* one reopen in four leaves the file closed */
	bool evict; /* some reopens have the kernel drop its unused inodes first */
	const char *name;
	bool off[OP_KINDS];
	bool quiet, verbose, keep;
};

struct file {
	char path[PATH_MAX];
	int fd;
	bool opened; /* opened since the last check: that one also stats by path */
	uint64_t size;
	uint8_t *data;	/* the model: what every byte must read back as */
	uint32_t *who;	/* the operation that last set each byte (0: none) */
};

struct rec {
	uint64_t n;
	enum kind kind;
	int file, file2;
	uint64_t off, len, off2;
	int64_t result; /* bytes done, or -errno */
	uint64_t size_before, size_after;
	bool evicted;	/* a reopen that had the kernel drop its inodes in between */
	bool chained;	/* a reopen followed by a write with no check in between */
	const char *note;
};

struct rng {
	uint64_t s[4];
};

static struct options opt;
static struct file files[NFILES];
static struct rec ring[LOG_KEEP];
static uint64_t nrec;
static struct rec *cur;	/* the operation running now */
static struct rng op_rng, data_rng;
static uint8_t *scratch, *readbuf;
static long pagesize;
static int saved_argc;
static char **saved_argv;
static const char *dir;
static uint64_t counts[OP_KINDS];

/* ---- PRNG: xoshiro256**, seeded by splitmix64 ---- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

/* Uniform in [0, n); 0 when n is 0. */
static uint64_t rnd(uint64_t n)
{
	return n ? rng_next(&op_rng) % n : 0;
}

/* Uniform in [lo, hi]. */
static uint64_t rnd_in(uint64_t lo, uint64_t hi)
{
	return hi <= lo ? lo : lo + rnd(hi - lo + 1);
}

/* Fresh bytes: the data stream never repeats, so no two writes share content. */
static void fill_data(uint8_t *p, size_t n)
{
	while (n >= 8) {
		uint64_t v = rng_next(&data_rng);
		memcpy(p, &v, 8);
		p += 8;
		n -= 8;
	}
	if (n) {
		uint64_t v = rng_next(&data_rng);
		memcpy(p, &v, n);
	}
}

/* ---- the operation log and failure reports ---- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static void format_rec(const struct rec *r, char *buf, size_t cap)
{
	char res[64];
	int n;

	if (r->result < 0)
		snprintf(res, sizeof(res), "%s", strerror((int)-r->result));
	else
		snprintf(res, sizeof(res), "0x%" PRIx64, (uint64_t)r->result);
	switch (r->kind) {
	case OP_COPY:
	case OP_COPY_CROSS:
		n = snprintf(buf, cap,
			     "#%-6" PRIu64 " %-11s f%d 0x%" PRIx64 "+0x%" PRIx64 " -> f%d 0x%" PRIx64
			     " (f%d size 0x%" PRIx64 " -> 0x%" PRIx64 ") = %s",
			     r->n, kind_name[r->kind], r->file, r->off, r->len, r->file2, r->off2,
			     r->file2, r->size_before, r->size_after, res);
		break;
	case OP_TRUNCATE:
	case OP_OPEN_TRUNC:
		n = snprintf(buf, cap,
			     "#%-6" PRIu64 " %-11s f%d to 0x%" PRIx64 " (size 0x%" PRIx64
			     " -> 0x%" PRIx64 ") = %s",
			     r->n, kind_name[r->kind], r->file, r->off, r->size_before, r->size_after,
			     res);
		break;
	case OP_REOPEN:
		n = snprintf(buf, cap, "#%-6" PRIu64 " %-11s f%d (size 0x%" PRIx64 ") = %s%s%s%s",
			     r->n, kind_name[r->kind], r->file, r->size_after, res,
			     r->evicted ? ", inodes evicted while closed" : "",
			     r->len ? ", closed a while" : "",
			     r->chained ? ", a write follows unchecked" : "");
		if (r->len && n >= 0 && (size_t)n < cap)
			n += snprintf(buf + n, cap - (size_t)n, " (%" PRIu64 " ms)", r->len);
		break;
	case OP_FSYNC:
	case OP_FDATASYNC:
	case OP_DROPCACHE:
		n = snprintf(buf, cap, "#%-6" PRIu64 " %-11s f%d (size 0x%" PRIx64 ") = %s", r->n,
			     kind_name[r->kind], r->file, r->size_after, res);
		break;
	case OP_PAUSE:
		n = snprintf(buf, cap, "#%-6" PRIu64 " %-11s %" PRIu64 " ms", r->n,
			     kind_name[r->kind], r->len);
		break;
	case OP_REMOUNT:
		n = snprintf(buf, cap, "#%-6" PRIu64 " %-11s (sizes 0x%" PRIx64 ", 0x%" PRIx64 ") = %s",
			     r->n, kind_name[r->kind], r->size_before, r->size_after, res);
		break;
	default:
		n = snprintf(buf, cap,
			     "#%-6" PRIu64 " %-11s f%d 0x%" PRIx64 "+0x%" PRIx64 " (end 0x%" PRIx64
			     ", size 0x%" PRIx64 " -> 0x%" PRIx64 ") = %s",
			     r->n, kind_name[r->kind], r->file, r->off, r->len, r->off + r->len,
			     r->size_before, r->size_after, res);
	}
	if (r->note && n >= 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, "  [%s]", r->note);
}

static void print_replay(void)
{
	say("fsx: replay:");
	for (int i = 0; i < saved_argc; i++) {
		const char *a = saved_argv[i];
		bool plain = *a != 0;
		for (const char *p = a; *p; p++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
				    "-_=./:,+@%",
				    *p))
				plain = false;
		if (plain) {
			say(" %s", a);
		} else {
			say(" '");
			for (const char *p = a; *p; p++)
				if (*p == '\'')
					say("'\\''");
				else
					say("%c", *p);
			say("'");
		}
	}
	say("\n");
}

static void print_log(void)
{
	char line[512];
	uint64_t first = nrec > LOG_KEEP ? nrec - LOG_KEEP : 0;

	say("fsx: the last %" PRIu64 " operations (offset+length, sizes before -> after, "
	    "result):\n",
	    nrec - first);
	for (uint64_t i = first; i < nrec; i++) {
		format_rec(&ring[i % LOG_KEEP], line, sizeof(line));
		say("  %s%s\n", line, &ring[i % LOG_KEEP] == cur ? "   <== failed here" : "");
	}
}

/* The record of the operation number n when it is still in the ring. */
static const struct rec *find_rec(uint64_t n)
{
	for (uint64_t i = nrec > LOG_KEEP ? nrec - LOG_KEEP : 0; i < nrec; i++)
		if (ring[i % LOG_KEEP].n == n)
			return &ring[i % LOG_KEEP];
	return NULL;
}

static void fail_header(const char *fmt, va_list ap)
{
	char line[512];

	fflush(stdout);
	say("\nfsx: FAILURE: seed %" PRIu64 ", op %" PRIu64 " of %" PRIu64 ": ", opt.seed,
	    cur ? cur->n : 0, opt.ops);
	vfprintf(stderr, fmt, ap);
	say("\n");
	if (cur) {
		format_rec(cur, line, sizeof(line));
		say("fsx: the failing operation: %s\n", line);
	}
	print_replay();
}

static void fail_footer(void) __attribute__((noreturn));
static void fail_footer(void)
{
	print_log();
	say("fsx: seed %" PRIu64 ": FAILED at op %" PRIu64 "; files kept in %s\n", opt.seed,
	    cur ? cur->n : 0, dir);
	print_replay();
	exit(1);
}

/* An unexpected error or result: report and exit 1. */
static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fail_header(fmt, ap);
	va_end(ap);
	fail_footer();
}

/* A system call's failure: EOPNOTSUPP gets a hint, since the kind was on. */
static void fail_errno(const char *what, int err) __attribute__((noreturn));
static void fail_errno(const char *what, int err)
{
	if (cur)
		cur->result = -err;
	if (err == EOPNOTSUPP || err == ENOSYS)
		fail("%s: %s (unsupported, and that operation kind is on: a failure; switch it "
		     "off with its --no-... option to test the rest)",
		     what, strerror(err));
	fail("%s: %s", what, strerror(err));
}

/* ---- checking a file against its model ---- */

static void dump_bytes(const char *label, const uint8_t *p, size_t n)
{
	say("    %-8s", label);
	for (size_t i = 0; i < n; i++)
		say(" %02x", p[i]);
	say("\n");
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Reads f whole into readbuf (up to cap bytes); returns the bytes read. */
static uint64_t read_whole(struct file *f, uint64_t cap, int *err)
{
	uint64_t got = 0;

	*err = 0;
	while (got < cap) {
		size_t want = cap - got < CHUNK ? (size_t)(cap - got) : CHUNK;
		ssize_t n = pread(f->fd, readbuf + got, want, (off_t)got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*err = errno;
			break;
		}
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	return got;
}

/* Describes where readbuf[0..n) differs from f's model; returns whether it did. */
static bool describe_diff(struct file *f, uint64_t n, bool verbose)
{
	uint64_t first = UINT64_MAX, last = 0, count = 0;

	if (memcmp(readbuf, f->data, (size_t)n) == 0)
		return false;
	for (uint64_t i = 0; i < n; i++) {
		if (readbuf[i] != f->data[i]) {
			if (first == UINT64_MAX)
				first = i;
			last = i;
			count++;
		}
	}
	if (first == UINT64_MAX)
		return false;
	if (!verbose)
		return true;
	uint64_t from = first & ~(uint64_t)15, len = n - from < 32 ? n - from : 32;
	say("  first differing byte at 0x%" PRIx64 " (the last at 0x%" PRIx64 ", %" PRIu64
	    " bytes differ in 0x0..0x%" PRIx64 "):\n",
	    first, last, count, n);
	say("    at 0x%" PRIx64 ":\n", from);
	dump_bytes("expected", f->data + from, (size_t)len);
	dump_bytes("actual", readbuf + from, (size_t)len);
	say("  the actual bytes in 0x%" PRIx64 "..0x%" PRIx64 " are %s\n", first, last + 1,
	    all_zero(readbuf + first, (size_t)(last + 1 - first)) ? "all zero" : "not all zero");
	/* which operations' bytes came back wrong: the runs of differing bytes */
	int shown = 0;
	for (uint64_t i = first; i <= last && shown < 8;) {
		if (readbuf[i] == f->data[i]) {
			i++;
			continue;
		}
		/* the bytes from here that the same operation set */
		uint32_t w = f->who[i];
		uint64_t j = i;
		while (j <= last && f->who[j] == w)
			j++;
		char line[512] = "(no longer in the log)";
		const struct rec *r = w ? find_rec(w) : NULL;
		if (r)
			format_rec(r, line, sizeof(line));
		if (w)
			say("  0x%" PRIx64 "..0x%" PRIx64 " should hold what op %u set: %s\n", i, j, w,
			    line);
		else
			say("  0x%" PRIx64 "..0x%" PRIx64 " should be zeros no operation wrote\n", i, j);
		shown++;
		i = j;
	}
	return true;
}

/* Writes out what a check of f saw (readbuf holds the bytes pread gave). */
static void describe_read(struct file *f, off_t fst, off_t end, off_t pst, uint64_t got, int err)
{
	char by_path[32] = "not asked";

	if (pst != -2)
		snprintf(by_path, sizeof(by_path), "0x%jx", (intmax_t)pst);
	say("  size: model 0x%" PRIx64 ", fstat 0x%jx, lseek(SEEK_END) 0x%jx, stat(path) %s, "
	    "pread read 0x%" PRIx64 " bytes%s%s\n",
	    f->size, (intmax_t)fst, (intmax_t)end, by_path, got, err ? ", then " : "",
	    err ? strerror(err) : "");
	uint64_t common = got < f->size ? got : f->size;
	if (!describe_diff(f, common, true))
		say("  the bytes in 0x0..0x%" PRIx64 " match the model\n", common);
	if (got > f->size)
		say("  0x%" PRIx64 " bytes past the model's end came back%s\n", got - f->size,
		    all_zero(readbuf + f->size, (size_t)(got - f->size)) ? " (zeros)" : "");
	if (got < f->size)
		say("  the model's bytes 0x%" PRIx64 "..0x%" PRIx64 " did not come back (%s)\n",
		    got, f->size,
		    all_zero(f->data + got, (size_t)(f->size - got)) ? "zeros in the model"
								     : "the model has data there");
}

/* Reads f again and writes out what it gives, for a failure report. */
static void report_file(struct file *f, const char *when)
{
	struct stat st, pst;
	int err;
	off_t end;

	say("fsx: f%d (%s) %s:\n", (int)(f - files), f->path, when);
	if (fstat(f->fd, &st) < 0)
		st.st_size = -1;
	end = lseek(f->fd, 0, SEEK_END);
	if (stat(f->path, &pst) < 0)
		pst.st_size = -1;
	uint64_t got = read_whole(f, opt.maxsize + CHUNK, &err);
	describe_read(f, st.st_size, end, pst.st_size, got, err);
}

/* The checks after an operation, reported in full when one fails. */
static void check(struct file *f, const char *when)
{
	struct stat st, pst;
	int err;

	if (fstat(f->fd, &st) < 0)
		fail_errno("fstat", errno);
	off_t end = lseek(f->fd, 0, SEEK_END);
	if (end < 0)
		fail_errno("lseek(SEEK_END)", errno);
	/* Only after an open (which looked the path up anyway): a lookup at every
	 * check would keep the kernel's entry fresh, and a FUSE entry that expires
	 * while its file is open is dropped at close, the inode forgotten. */
	pst.st_size = -2; /* not asked */
	if (f->opened && stat(f->path, &pst) < 0)
		fail_errno("stat by path", errno);
	f->opened = false;
	uint64_t got = read_whole(f, opt.maxsize + CHUNK, &err);
	if (err)
		fail_errno("pread", err);
	bool size_bad = (uint64_t)st.st_size != f->size || (uint64_t)end != f->size ||
			(pst.st_size != -2 && (uint64_t)pst.st_size != f->size) || got != f->size;
	bool data_bad = describe_diff(f, got < f->size ? got : f->size, false);
	if (!size_bad && !data_bad)
		return;

	fflush(stdout);
	say("\nfsx: FAILURE: seed %" PRIu64 ", op %" PRIu64 " of %" PRIu64 ": f%d %s %s\n",
	    opt.seed, cur ? cur->n : 0, opt.ops, (int)(f - files),
	    size_bad && data_bad ? "size and data differ from the model"
	    : size_bad	       ? "size differs from the model"
			       : "data differs from the model",
	    when);
	char line[512];
	if (cur) {
		format_rec(cur, line, sizeof(line));
		say("fsx: the failing operation: %s\n", line);
	}
	print_replay();
	say("fsx: f%d (%s) at the check:\n", (int)(f - files), f->path);
	describe_read(f, st.st_size, end, pst.st_size, got, 0);
	/* again: does it last? and from the filesystem itself, not the page cache */
	report_file(f, "read again at once");
	(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
	report_file(f, "read again after posix_fadvise(DONTNEED)");
	struct file *o = &files[1 - (f - files)];
	if (o->fd >= 0)
		report_file(o, "(the other file, for comparison)");
	fail_footer();
}

/* ---- the model ---- */

static void model_set(struct file *f, uint64_t off, const uint8_t *src, uint64_t len)
{
	memcpy(f->data + off, src, (size_t)len);
	for (uint64_t i = off; i < off + len; i++)
		f->who[i] = (uint32_t)cur->n;
	if (off + len > f->size)
		f->size = off + len;
}

/* Zeros [off, off+len) (within the model's buffer). */
static void model_zero(struct file *f, uint64_t off, uint64_t len)
{
	memset(f->data + off, 0, (size_t)len);
	for (uint64_t i = off; i < off + len; i++)
		f->who[i] = (uint32_t)cur->n;
}

static void model_resize(struct file *f, uint64_t size)
{
	if (size < f->size)
		model_zero(f, size, f->size - size); /* past the end is always zeros */
	else if (size > f->size)
		model_zero(f, f->size, size - f->size);
	f->size = size;
}

/* ---- choosing offsets and lengths ---- */

/* An offset in [0, limit): uniform, near a chunk boundary, near the end of
 * the file, page aligned, or small. */
static uint64_t pick_off(const struct file *f, uint64_t limit)
{
	uint64_t r = rnd(100), off;

	if (limit == 0)
		return 0;
	if (r < 35) {
		off = rnd(limit);
	} else if (r < 55) {
		uint64_t k = rnd(limit / CHUNK + 1) * CHUNK;
		off = k + rnd(8192);
		off = off >= 4096 ? off - 4096 : 0;
	} else if (r < 75) {
		off = f->size + rnd(16384);
		off = off >= 8192 ? off - 8192 : 0;
	} else if (r < 88) {
		off = rnd(limit) & ~(uint64_t)4095;
	} else {
		off = rnd(0x10000);
	}
	return off < limit ? off : rnd(limit);
}

static uint64_t pick_len(uint64_t max)
{
	uint64_t r = rnd(100), len;

	if (r < 35)
		len = rnd_in(1, 4096);
	else if (r < 65)
		len = rnd_in(1, 65536);
	else if (r < 88)
		len = rnd_in(1, 256 * 1024);
	else
		len = rnd_in(1, CHUNK + CHUNK / 2);
	return len < max ? len : max;
}

/* A new size for truncation: zero, near a chunk boundary, near the current
 * size (up or down), or anywhere up to the maximum. */
static uint64_t pick_size(const struct file *f)
{
	uint64_t r = rnd(100), s;

	if (r < 8) {
		s = 0;
	} else if (r < 30) {
		s = rnd(opt.maxsize / CHUNK + 1) * CHUNK + rnd(8192);
		s = s >= 4096 ? s - 4096 : 0;
	} else if (r < 55) {
		s = f->size + rnd(65536);
		s = s >= 32768 ? s - 32768 : 0;
	} else {
		s = rnd(opt.maxsize + 1);
	}
	return s <= opt.maxsize ? s : opt.maxsize;
}

/* ---- opening ---- */

static void open_file(struct file *f, int flags)
{
	for (;;) {
		f->fd = open(f->path, O_RDWR | flags, 0644);
		if (f->fd >= 0 || errno != EINTR)
			break;
	}
	if (f->fd < 0)
		fail_errno(f->path, errno);
	f->opened = true;
}

static void close_file(struct file *f)
{
	if (close(f->fd) < 0)
		fail_errno("close", errno);
	f->fd = -1;
}

/* ---- the operations ---- */

static void do_pwrite(struct file *f, const uint8_t *buf, uint64_t len, uint64_t off)
{
	uint64_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(f->fd, buf + done, (size_t)(len - done), (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_errno("pwrite", errno);
		if (n == 0)
			fail("pwrite wrote 0 bytes at 0x%" PRIx64, off + done);
		done += (uint64_t)n;
	}
	cur->result = (int64_t)done;
}

static void op_write(struct file *f)
{
	uint64_t off = pick_off(f, opt.maxsize);
	uint64_t len = pick_len(opt.maxsize - off);

	if (len == 0)
		len = 1, off = opt.maxsize - 1;
	cur->off = off;
	cur->len = len;
	fill_data(scratch, (size_t)len);
	do_pwrite(f, scratch, len, off);
	model_set(f, off, scratch, len);
}

/* A read of a random range, compared with the model (also past the end). */
static void op_read(struct file *f)
{
	uint64_t off = pick_off(f, opt.maxsize), len = pick_len(opt.maxsize - off), got = 0;

	cur->off = off;
	cur->len = len;
	while (got < len) {
		ssize_t n = pread(f->fd, readbuf + got, (size_t)(len - got), (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_errno("pread", errno);
		if (n == 0)
			break;
		got += (uint64_t)n;
	}
	cur->result = (int64_t)got;
	uint64_t want = off >= f->size ? 0 : (f->size - off < len ? f->size - off : len);
	if (got != want)
		fail("pread of 0x%" PRIx64 "+0x%" PRIx64 " returned 0x%" PRIx64
		     " bytes, the model has 0x%" PRIx64 " there (size 0x%" PRIx64 ")",
		     off, len, got, want, f->size);
	for (uint64_t i = 0; i < got; i++)
		if (readbuf[i] != f->data[off + i])
			fail("pread of 0x%" PRIx64 "+0x%" PRIx64 ": byte 0x%" PRIx64
			     " is %02x, the model says %02x (set by op %u)",
			     off, len, off + i, readbuf[i], f->data[off + i], f->who[off + i]);
}

static void op_truncate(struct file *f)
{
	uint64_t size = pick_size(f);

	cur->off = size;
	if (ftruncate(f->fd, (off_t)size) < 0)
		fail_errno("ftruncate", errno);
	model_resize(f, size);
}

static void op_open_trunc(struct file *f)
{
	cur->off = 0;
	close_file(f);
	open_file(f, O_TRUNC);
	model_resize(f, 0);
}

static void op_fallocate(struct file *f, enum kind k)
{
	static const int modes[] = {
		[OP_FALLOC] = 0,
		[OP_FALLOC_KEEP] = FALLOC_FL_KEEP_SIZE,
		[OP_PUNCH] = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		[OP_ZERO] = FALLOC_FL_ZERO_RANGE,
		[OP_ZERO_KEEP] = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
	};
	uint64_t off = pick_off(f, opt.maxsize);
	uint64_t len = pick_len(opt.maxsize - off);
	int mode = modes[k];
	char what[64];

	if (len == 0)
		len = 1, off = opt.maxsize - 1;
	cur->off = off;
	cur->len = len;
	if (fallocate(f->fd, mode, (off_t)off, (off_t)len) < 0) {
		snprintf(what, sizeof(what), "fallocate(mode 0x%x, %s)", (unsigned)mode,
			 kind_name[k]);
		fail_errno(what, errno);
	}
	uint64_t end = off + len, in_end = end < f->size ? end : f->size;
	switch (k) {
	case OP_FALLOC: /* reserves; extends the size, the new bytes are zeros */
		if (end > f->size)
			model_resize(f, end);
		break;
	case OP_FALLOC_KEEP:
		break;
	case OP_PUNCH:
	case OP_ZERO_KEEP:
		if (off < in_end)
			model_zero(f, off, in_end - off);
		break;
	case OP_ZERO:
		if (end > f->size)
			model_resize(f, end);
		model_zero(f, off, len);
		break;
	default:
		break;
	}
}

/*
 * copy_file_range of a random range; within one file the ranges do not
 * overlap (after the copy is shortened to the source's end, as the kernel
 * does before it checks). A quarter of them are whole chunks at chunk
 * offsets, which a chunked filesystem may share instead of copying.
 */
static void op_copy(struct file *src, struct file *dst)
{
	uint64_t soff, len, doff, n;

	if (rnd(4) == 0 && src->size >= CHUNK) {
		uint64_t chunks = src->size / CHUNK;
		soff = rnd(chunks) * CHUNK;
		len = rnd_in(1, chunks - soff / CHUNK) * CHUNK;
		if (rnd(2))
			len += rnd(CHUNK); /* a whole chunk and then some */
		doff = rnd(opt.maxsize / CHUNK) * CHUNK;
	} else {
		soff = pick_off(src, src->size ? src->size : 1);
		len = pick_len(opt.maxsize);
		doff = pick_off(dst, opt.maxsize);
	}
	n = soff >= src->size ? 0 : (src->size - soff < len ? src->size - soff : len);
	if (doff + n > opt.maxsize)
		doff = opt.maxsize - n;
	if (src == dst && n && doff + n > soff && doff < soff + n) {
		/* overlapping: move it after the source, or else before it */
		if (soff + 2 * n <= opt.maxsize)
			doff = soff + n + rnd(opt.maxsize - soff - 2 * n + 1);
		else if (soff >= n)
			doff = rnd(soff - n + 1);
		else
			n = len = 0; /* no room: a copy of nothing */
	}
	cur->off = soff;
	cur->len = len;
	cur->off2 = doff;

	/* Asked for len (past the source's end it copies less); a short copy is
	 * continued up to the n expected, no further: a copy within a file that
	 * extends it could otherwise go on copying what it just wrote. */
	loff_t in = (loff_t)soff, out = (loff_t)doff;
	uint64_t done = 0;
	while (done < n) {
		size_t want = (size_t)(done ? n - done : len);
		ssize_t r = copy_file_range(src->fd, &in, dst->fd, &out, want, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail_errno("copy_file_range", errno);
		if (r == 0)
			break;
		done += (uint64_t)r;
	}
	cur->result = (int64_t)done;
	if (done != n)
		fail("copy_file_range of 0x%" PRIx64 "+0x%" PRIx64 " copied 0x%" PRIx64
		     " bytes, the model expects 0x%" PRIx64 " (source size 0x%" PRIx64 ")",
		     soff, len, done, n, src->size);
	if (n) {
		memcpy(scratch, src->data + soff, (size_t)n);
		model_set(dst, doff, scratch, n);
	}
}

/* mmap's SIGBUS (a mapping past the file's real end) is a failure, not a crash. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t in_map;

static void on_sigbus(int sig)
{
	if (in_map)
		siglongjmp(bus_jmp, 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Writes (write) or compares buf through a shared mapping; 0 or -errno,
 * 1 for SIGBUS. */
static int map_io(struct file *f, uint64_t off, uint64_t len, uint8_t *buf, bool write,
		  uint64_t *bad)
{
	uint64_t moff = off & ~(uint64_t)(pagesize - 1), mlen = off + len - moff;
	uint8_t *p = mmap(NULL, (size_t)mlen, PROT_READ | (write ? PROT_WRITE : 0), MAP_SHARED,
			  f->fd, (off_t)moff);
	int rc = 0;

	*bad = UINT64_MAX;
	if (p == MAP_FAILED)
		return -errno;
	if (sigsetjmp(bus_jmp, 1) == 0) {
		in_map = 1;
		if (write) {
			memcpy(p + (off - moff), buf, (size_t)len);
		} else {
			memcpy(buf, p + (off - moff), (size_t)len);
		}
		in_map = 0;
		if (write && msync(p, (size_t)mlen, MS_SYNC) < 0)
			rc = -errno;
	} else {
		in_map = 0;
		rc = 1;
	}
	munmap(p, (size_t)mlen);
	return rc;
}

static void op_map(struct file *f, bool write)
{
	uint64_t bad;
	int rc;

	if (f->size == 0) {
		cur->note = "skipped: empty file";
		return;
	}
	uint64_t off = pick_off(f, f->size), len = pick_len(f->size - off);
	cur->off = off;
	cur->len = len;
	if (write)
		fill_data(scratch, (size_t)len);
	rc = map_io(f, off, len, write ? scratch : readbuf, write, &bad);
	if (rc == 1)
		fail("SIGBUS touching the mapping of 0x%" PRIx64 "+0x%" PRIx64
		     " (the model's size 0x%" PRIx64 ": the file is shorter than that)",
		     off, len, f->size);
	if (rc < 0)
		fail_errno(write ? "mmap write / msync(MS_SYNC)" : "mmap read", -rc);
	cur->result = (int64_t)len;
	if (write) {
		model_set(f, off, scratch, len);
		return;
	}
	for (uint64_t i = 0; i < len; i++)
		if (readbuf[i] != f->data[off + i])
			fail("mmap read of 0x%" PRIx64 "+0x%" PRIx64 ": byte 0x%" PRIx64
			     " is %02x, the model says %02x (set by op %u)",
			     off, len, off + i, readbuf[i], f->data[off + i], f->who[off + i]);
}

static void op_sync(struct file *f, bool data_only)
{
	int rc = data_only ? fdatasync(f->fd) : fsync(f->fd);

	if (rc < 0)
		fail_errno(data_only ? "fdatasync" : "fsync", errno);
}

static void op_dropcache(struct file *f)
{
	int rc = posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);

	if (rc)
		fail_errno("posix_fadvise(DONTNEED)", rc);
}

static void op_pause(void)
{
	uint64_t ms = rnd_in(opt.pause_min_ms, opt.pause_max_ms);
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	cur->len = ms;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Has the kernel drop every unused dentry and inode (as memory pressure
 * does): a FUSE filesystem gets FORGET for the file just closed. */
static void evict_inodes(void)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		fail_errno("--evict: opening /proc/sys/vm/drop_caches (needs root)", errno);
	if (write(fd, "2\n", 2) != 2)
		fail_errno("--evict: writing 2 to /proc/sys/vm/drop_caches", errno);
	close(fd);
}

/*
 * Close and open again. With --reopen-gap-ms one reopen in four leaves the
 * file closed a while (long enough, 100 ms or more, for a filesystem that
 * commits a file left alone to be doing it now); with --evict those, and
 * one in four of the others, have the kernel drop the closed file's inode
 * just before the open. Half of the reopens are followed at once by a write
 * to the file, before any check: returns whether this one is.
 */
static bool op_reopen(struct file *f)
{
	uint64_t gap = rnd(4), ms = rnd_in(opt.gap_min_ms, opt.gap_max_ms);
	uint64_t evict = rnd(4), chain = rnd(2);
	bool gapped = opt.gap_max_ms && gap == 0;

	close_file(f);
	if (gapped) {
		struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
		cur->len = ms;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	if (opt.evict && (evict == 0 || gapped)) {
		evict_inodes();
		cur->evicted = true;
	}
	open_file(f, 0);
	cur->chained = chain == 0 && !opt.off[OP_WRITE];
	return cur->chained;
}

static void op_remount(void)
{
	cur->size_before = files[0].size;
	cur->size_after = files[1].size;
	for (int i = 0; i < NFILES; i++)
		close_file(&files[i]);
	fflush(stdout);
	int rc = system(opt.remount_cmd);
	cur->result = rc;
	if (rc == -1)
		fail_errno("system(remount command)", errno);
	if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
		fail("the remount command failed (wait status 0x%x): %s", (unsigned)rc,
		     opt.remount_cmd);
	for (int i = 0; i < NFILES; i++)
		open_file(&files[i], 0);
}

/* ---- the run ---- */

static enum kind choose(const unsigned *weight, unsigned total)
{
	/* fixed draws per operation, whatever is switched off */
	uint64_t reopen = rnd(REOPEN_ONE_IN), pause = rnd(opt.pause_every ? opt.pause_every : 1);
	uint64_t r = rnd(total ? total : 1);

	if (reopen == 0 && !opt.off[OP_REOPEN])
		return OP_REOPEN;
	if (opt.pause_every && pause == 0)
		return OP_PAUSE;
	for (int k = 0; k < OP_REOPEN; k++) {
		if (r < weight[k])
			return (enum kind)k;
		r -= weight[k];
	}
	return OP_READ;
}

static void run(void)
{
	unsigned weight[OP_REOPEN], total = 0;

	for (int k = 0; k < OP_REOPEN; k++) {
		weight[k] = opt.off[k] ? 0 : base_weight[k];
		total += weight[k];
	}
	if (total == 0)
		weight[OP_READ] = total = 1; /* everything off: reads */
	int chained = -1; /* the file a reopen left for a write at once */
	for (uint64_t n = 1; n <= opt.ops; n++) {
		enum kind k = choose(weight, total);
		int fi = (int)rnd(NFILES);

		if (chained >= 0) {
			k = OP_WRITE;
			fi = chained;
		} else if (opt.remount_cmd && opt.remount_every && n % opt.remount_every == 0) {
			k = OP_REMOUNT;
		}
		chained = -1;
		struct file *f = &files[fi], *g = &files[1 - fi];

		cur = &ring[nrec % LOG_KEEP];
		*cur = (struct rec){ .n = n, .kind = k, .file = fi, .file2 = fi };
		nrec++;
		cur->size_before = cur->size_after = f->size;
		switch (k) {
		case OP_WRITE:
			op_write(f);
			break;
		case OP_READ:
			op_read(f);
			break;
		case OP_TRUNCATE:
			op_truncate(f);
			break;
		case OP_OPEN_TRUNC:
			op_open_trunc(f);
			break;
		case OP_FALLOC:
		case OP_FALLOC_KEEP:
		case OP_PUNCH:
		case OP_ZERO:
		case OP_ZERO_KEEP:
			op_fallocate(f, k);
			break;
		case OP_COPY:
			op_copy(f, f);
			break;
		case OP_COPY_CROSS:
			cur->file2 = 1 - fi;
			cur->size_before = cur->size_after = g->size;
			op_copy(f, g);
			break;
		case OP_MAPWRITE:
			op_map(f, true);
			break;
		case OP_MAPREAD:
			op_map(f, false);
			break;
		case OP_FSYNC:
			op_sync(f, false);
			break;
		case OP_FDATASYNC:
			op_sync(f, true);
			break;
		case OP_DROPCACHE:
			op_dropcache(f);
			break;
		case OP_REOPEN:
			if (op_reopen(f) && n < opt.ops)
				chained = fi;
			break;
		case OP_PAUSE:
			op_pause();
			break;
		case OP_REMOUNT:
			op_remount();
			break;
		default:
			break;
		}
		counts[k]++;
		if (k != OP_REMOUNT)
			cur->size_after = k == OP_COPY_CROSS ? g->size : f->size;
		if (opt.verbose) {
			char line[512];
			format_rec(cur, line, sizeof(line));
			printf("%s\n", line);
		}
		/* the file the operation changed, and after a reopen, a remount
		 * or a cache drop every file */
		if (chained >= 0) {
			/* checked after the write */
		} else if (k == OP_REMOUNT || k == OP_PAUSE) {
			for (int i = 0; i < NFILES; i++)
				check(&files[i], "after the operation");
		} else {
			check(k == OP_COPY_CROSS ? g : f, "after the operation");
			if (k == OP_REOPEN || k == OP_DROPCACHE)
				check(g, "after the operation (the other file)");
		}
		if (!opt.quiet && !opt.verbose && n % 1000 == 0) {
			printf("seed %" PRIu64 ": %" PRIu64 " ops...\n", opt.seed, n);
			fflush(stdout);
		}
	}
	cur = NULL;
}

static void usage(FILE *out, int status) __attribute__((noreturn));
static void usage(FILE *out, int status)
{
	fprintf(out,
		"usage: fsx [OPTIONS] DIR\n"
		"\n"
		"Runs random operations on two files in DIR (DIR/NAME.0, DIR/NAME.1), each\n"
		"checked against an in-memory model after every operation.\n"
		"\n"
		"  --ops N             operations to run (default 10000)\n"
		"  --seed S            the seed: the same seed and options, the same run (default 1)\n"
		"  --maxsize BYTES     largest file size (default 4194304; 0x.. accepted)\n"
		"  --name NAME         file name prefix (default fsx)\n"
		"  --remount-cmd CMD   every --remount-every ops: close the files, run CMD with\n"
		"                      system(), reopen and check them\n"
		"  --remount-every K   (default 500 when --remount-cmd is given)\n"
		"  --pause-every K     about one op in K is a sleep of --pause-ms (default off)\n"
		"  --pause-ms MIN:MAX  the sleep's length in ms (default 80:180)\n"
		"  --reopen-gap-ms MIN:MAX  one reopen in four leaves the file closed that\n"
		"                      long (default 0: reopens at once)\n"
		"  --evict             those reopens, and one in four others, write 2 to\n"
		"                      /proc/sys/vm/drop_caches just before the open (root):\n"
		"                      the kernel drops the closed file's inode, as memory\n"
		"                      pressure does, and a FUSE filesystem gets FORGET for\n"
		"                      it while the file is opened and written again\n"
		"  --no-write --no-read --no-truncate --no-fallocate --no-punch --no-zero-range\n"
		"  --no-keep-size --no-copy-range --no-mmap --no-reopen --no-fsync --no-dropcache\n"
		"                      switch operation kinds off (--no-fallocate: all modes;\n"
		"                      --no-keep-size: falloc-keep and zero-keep)\n"
		"  --keep              keep the files after a successful run (default: removed)\n"
		"  -q, --quiet         only the summary line (and a failure's report)\n"
		"  -v, --verbose       print every operation\n"
		"  -h, --help          this text\n"
		"\n"
		"Exit status: 0 no mismatch, 1 a mismatch or an unexpected error (the report\n"
		"on stderr names the seed and the last operations), 2 bad usage.\n");
	exit(status);
}

static uint64_t parse_u64(const char *s, const char *what)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-') {
		fprintf(stderr, "fsx: bad %s '%s'\n", what, s);
		usage(stderr, 2);
	}
	return v;
}

/* "MIN:MAX" or "MS" milliseconds, at most a minute. */
static void parse_ms_range(const char *s, unsigned *min, unsigned *max)
{
	char *end;
	unsigned long lo = strtoul(s, &end, 10), hi = lo;

	if (*end == ':')
		hi = strtoul(end + 1, &end, 10);
	if (end == s || *end || hi < lo || hi > 60000 || *s == '-') {
		fprintf(stderr, "fsx: bad length '%s' (MIN:MAX or MS, in ms, up to 60000)\n", s);
		usage(stderr, 2);
	}
	*min = (unsigned)lo;
	*max = (unsigned)hi;
}

enum {
	O_OPS = 256,
	O_SEED,
	O_MAXSIZE,
	O_NAME,
	O_REMOUNT_CMD,
	O_REMOUNT_EVERY,
	O_PAUSE_EVERY,
	O_PAUSE_MS,
	O_GAP,
	O_EVICT,
	O_KEEP,
	O_NO_WRITE,
	O_NO_READ,
	O_NO_TRUNCATE,
	O_NO_FALLOCATE,
	O_NO_PUNCH,
	O_NO_ZERO,
	O_NO_KEEP_SIZE,
	O_NO_COPY,
	O_NO_MMAP,
	O_NO_REOPEN,
	O_NO_FSYNC,
	O_NO_DROPCACHE,
};

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ops", required_argument, NULL, O_OPS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "maxsize", required_argument, NULL, O_MAXSIZE },
		{ "name", required_argument, NULL, O_NAME },
		{ "remount-cmd", required_argument, NULL, O_REMOUNT_CMD },
		{ "remount-every", required_argument, NULL, O_REMOUNT_EVERY },
		{ "pause-every", required_argument, NULL, O_PAUSE_EVERY },
		{ "pause-ms", required_argument, NULL, O_PAUSE_MS },
		{ "reopen-gap-ms", required_argument, NULL, O_GAP },
		{ "evict", no_argument, NULL, O_EVICT },
		{ "keep", no_argument, NULL, O_KEEP },
		{ "no-write", no_argument, NULL, O_NO_WRITE },
		{ "no-read", no_argument, NULL, O_NO_READ },
		{ "no-truncate", no_argument, NULL, O_NO_TRUNCATE },
		{ "no-fallocate", no_argument, NULL, O_NO_FALLOCATE },
		{ "no-punch", no_argument, NULL, O_NO_PUNCH },
		{ "no-zero-range", no_argument, NULL, O_NO_ZERO },
		{ "no-keep-size", no_argument, NULL, O_NO_KEEP_SIZE },
		{ "no-copy-range", no_argument, NULL, O_NO_COPY },
		{ "no-mmap", no_argument, NULL, O_NO_MMAP },
		{ "no-reopen", no_argument, NULL, O_NO_REOPEN },
		{ "no-fsync", no_argument, NULL, O_NO_FSYNC },
		{ "no-dropcache", no_argument, NULL, O_NO_DROPCACHE },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	bool every_given = false;

	opt.ops = 10000;
	opt.seed = 1;
	opt.maxsize = 4u << 20;
	opt.name = "fsx";
	opt.pause_min_ms = 80;
	opt.pause_max_ms = 180;
	while ((c = getopt_long(argc, argv, "qvh", longopts, NULL)) != -1) {
		switch (c) {
		case O_OPS:
			opt.ops = parse_u64(optarg, "operation count");
			break;
		case O_SEED:
			opt.seed = parse_u64(optarg, "seed");
			break;
		case O_MAXSIZE:
			opt.maxsize = parse_u64(optarg, "maximum size");
			break;
		case O_NAME:
			opt.name = optarg;
			break;
		case O_REMOUNT_CMD:
			opt.remount_cmd = optarg;
			break;
		case O_REMOUNT_EVERY:
			opt.remount_every = parse_u64(optarg, "remount interval");
			every_given = true;
			break;
		case O_PAUSE_EVERY:
			opt.pause_every = parse_u64(optarg, "pause interval");
			break;
		case O_PAUSE_MS:
			parse_ms_range(optarg, &opt.pause_min_ms, &opt.pause_max_ms);
			break;
		case O_GAP:
			parse_ms_range(optarg, &opt.gap_min_ms, &opt.gap_max_ms);
			break;
		case O_EVICT:
			opt.evict = true;
			break;
		case O_KEEP:
			opt.keep = true;
			break;
		case O_NO_WRITE:
			opt.off[OP_WRITE] = true;
			break;
		case O_NO_READ:
			opt.off[OP_READ] = true;
			break;
		case O_NO_TRUNCATE:
			opt.off[OP_TRUNCATE] = opt.off[OP_OPEN_TRUNC] = true;
			break;
		case O_NO_FALLOCATE:
			opt.off[OP_FALLOC] = opt.off[OP_FALLOC_KEEP] = true;
			opt.off[OP_PUNCH] = opt.off[OP_ZERO] = opt.off[OP_ZERO_KEEP] = true;
			break;
		case O_NO_PUNCH:
			opt.off[OP_PUNCH] = true;
			break;
		case O_NO_ZERO:
			opt.off[OP_ZERO] = opt.off[OP_ZERO_KEEP] = true;
			break;
		case O_NO_KEEP_SIZE:
			opt.off[OP_FALLOC_KEEP] = opt.off[OP_ZERO_KEEP] = true;
			break;
		case O_NO_COPY:
			opt.off[OP_COPY] = opt.off[OP_COPY_CROSS] = true;
			break;
		case O_NO_MMAP:
			opt.off[OP_MAPWRITE] = opt.off[OP_MAPREAD] = true;
			break;
		case O_NO_REOPEN:
			opt.off[OP_REOPEN] = true;
			break;
		case O_NO_FSYNC:
			opt.off[OP_FSYNC] = opt.off[OP_FDATASYNC] = true;
			break;
		case O_NO_DROPCACHE:
			opt.off[OP_DROPCACHE] = true;
			break;
		case 'q':
			opt.quiet = true;
			break;
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout, 0);
		default:
			usage(stderr, 2);
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "fsx: one DIR expected\n");
		usage(stderr, 2);
	}
	if (opt.maxsize < 2 || opt.maxsize > (1ull << 34)) {
		fprintf(stderr, "fsx: --maxsize must be 2 bytes to 16 GiB\n");
		usage(stderr, 2);
	}
	if (opt.remount_cmd && !every_given)
		opt.remount_every = 500;
	dir = argv[optind];
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	saved_argc = argc;
	saved_argv = argv;
	parse_args(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	pagesize = sysconf(_SC_PAGESIZE);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	rng_seed(&op_rng, opt.seed);
	rng_seed(&data_rng, opt.seed ^ 0x6a09e667f3bcc908ull);
	/* room for a copy or write of up to 1.5 chunks past any offset */
	size_t room = (size_t)opt.maxsize + 2 * CHUNK;
	scratch = malloc(room);
	readbuf = malloc(room);
	if (!scratch || !readbuf) {
		fprintf(stderr, "fsx: out of memory\n");
		return 1;
	}
	for (int i = 0; i < NFILES; i++) {
		struct file *f = &files[i];
		int n = snprintf(f->path, sizeof(f->path), "%s/%s.%d", dir, opt.name, i);
		if (n < 0 || (size_t)n >= sizeof(f->path)) {
			fprintf(stderr, "fsx: path too long\n");
			return 2;
		}
		f->data = calloc(room, 1);
		f->who = calloc(room, sizeof(uint32_t));
		if (!f->data || !f->who) {
			fprintf(stderr, "fsx: out of memory\n");
			return 1;
		}
		open_file(f, O_CREAT | O_TRUNC);
		check(f, "after creating it");
	}
	run();
	for (int i = 0; i < NFILES; i++)
		check(&files[i], "at the end");
	for (int i = 0; i < NFILES; i++) {
		close_file(&files[i]);
		if (!opt.keep && unlink(files[i].path) < 0)
			fail_errno("unlink", errno);
	}
	if (!opt.quiet) {
		printf("seed %" PRIu64 ": ops by kind:", opt.seed);
		for (int k = 0; k < OP_KINDS; k++)
			if (counts[k])
				printf(" %s %" PRIu64, kind_name[k], counts[k]);
		printf("\n");
	}
	printf("seed %" PRIu64 ": %" PRIu64 " ops, 0 mismatches\n", opt.seed, opt.ops);
	return 0;
}
