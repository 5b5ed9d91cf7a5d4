/*
 * test_journal - the fsync journal's files (fs/daemon/journal.c): records
 * read back field by field, a torn or damaged record and everything after
 * it ignored, the two files taking turns, records of an earlier activation
 * never read as new, and the golden file tests/data/golden/journal.0
 * decoded (`CASKFS_WRITE_GOLDEN=1 build/tests/test_journal` writes it
 * again: a format change must be deliberate).
 */
#include <fcntl.h>

#include "testutil.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fs/daemon/journal_i.h"
#include "store/endian.h"

#define GOLDEN CASKFS_SRCDIR "/tests/data/golden/journal.0"

/* A record of ino with one map entry and one buffered slot of n bytes
 * (each byte fill) at off; into *buf (malloc'd), its length returned. */
static size_t make_record(uint8_t **buf, uint64_t ino, uint32_t n, uint8_t fill, uint32_t off,
			  uint64_t chain)
{
	size_t len = FS_JOURNAL_HEAD + FS_JOURNAL_SLOT + FS_JOURNAL_DIRTY + (n + 7) / 8 * 8 + 8;
	struct timespec mt = { 1700000000, 123456789 };
	uint8_t *p;

	*buf = calloc(1, len);
	assert_non_null(*buf);
	fs_journal_encode_head(*buf, len, ino, 3u << 20, &mt, 1, 1);
	p = *buf + FS_JOURNAL_HEAD;
	put_le32(p, 2);
	put_le32(p + 4, 1u << 20);
	memset(p + 8, 0xab, 16);
	p += FS_JOURNAL_SLOT;
	put_le32(p, 1);
	put_le32(p + 4, off + n);
	put_le64(p + 8, chain);
	put_le32(p + 16, off);
	put_le32(p + 20, n);
	memset(p + FS_JOURNAL_DIRTY, fill, n);
	return len;
}

static uint64_t append(struct fs_journal *j, uint64_t ino, uint32_t n, uint8_t fill)
{
	uint8_t *buf;
	size_t len = make_record(&buf, ino, n, fill, 100, 0);
	uint64_t seq = 0;

	assert_int_equal(fs_journal_append(j, buf, len, &seq), 0);
	free(buf);
	return seq;
}

struct seen {
	uint64_t seq[64], ino[64];
	uint8_t fill[64];
	int n;
};

static int collect(void *arg, const struct fs_journal_rec *r)
{
	struct seen *s = arg;
	struct fs_journal_dirty d;
	size_t pos = 0;

	assert_true(s->n < 64);
	assert_int_equal(r->size, 3u << 20);
	assert_true(r->has_mtime);
	assert_int_equal(r->mtime.tv_sec, 1700000000);
	assert_int_equal(r->mtime.tv_nsec, 123456789);
	assert_int_equal(r->nmap, 1);
	assert_int_equal(get_le32(r->map), 2);
	assert_int_equal(r->ndirty, 1);
	fs_journal_dirty_next(r, &pos, &d);
	assert_int_equal(pos, r->dirty_len);
	assert_int_equal(d.idx, 1);
	assert_int_equal(d.off, 100);
	assert_int_equal(d.len, 100 + d.n);
	for (uint32_t i = 0; i < d.n; i++)
		assert_int_equal(d.bytes[i], d.bytes[0]);
	s->seq[s->n] = r->seq;
	s->ino[s->n] = r->ino;
	s->fill[s->n++] = d.n ? d.bytes[0] : 0;
	return 0;
}

static struct seen reopen_and_scan(const char *dir)
{
	struct fs_journal *j;
	struct seen s = { .n = 0 };

	assert_int_equal(fs_journal_open(dir, &j), 0);
	assert_int_equal(fs_journal_scan(j, collect, &s), 0);
	fs_journal_close(j);
	return s;
}

static void path_of(char *out, size_t cap, const char *dir, int n)
{
	snprintf(out, cap, "%s/journal.%d", dir, n);
}

static void test_records_read_back_and_a_torn_one_ends_the_file(void **state)
{
	char *dir = tu_tmpdir(), path[4200];
	struct fs_journal *j;
	struct stat st;
	(void)state;

	assert_int_equal(fs_journal_open(dir, &j), 0);
	path_of(path, sizeof(path), dir, 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, FS_JOURNAL_FILE_SIZE); /* preallocated */
	uint64_t a = append(j, 10, 4096, 1), b = append(j, 11, 5, 2), c = append(j, 10, 0, 0);
	assert_int_equal(b, a + 1);
	assert_int_equal(c, b + 1);
	assert_int_equal(fs_journal_sync(j, c), 0);
	fs_journal_close(j);

	struct seen s = reopen_and_scan(dir);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.seq[0], a);
	assert_int_equal(s.ino[0], 10);
	assert_int_equal(s.fill[0], 1);
	assert_int_equal(s.ino[1], 11);
	assert_int_equal(s.fill[1], 2);

	/* a byte of the second record's bytes flipped: it and the third go */
	int fd = open(path, O_RDWR);
	uint8_t byte;
	off_t at = FS_JOURNAL_DATA +
		   (off_t)(FS_JOURNAL_HEAD + FS_JOURNAL_SLOT + FS_JOURNAL_DIRTY + 4096 + 8) +
		   FS_JOURNAL_HEAD + FS_JOURNAL_SLOT + FS_JOURNAL_DIRTY + 2;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &byte, 1, at), 1);
	byte ^= 0xff;
	assert_int_equal(pwrite(fd, &byte, 1, at), 1);
	close(fd);
	s = reopen_and_scan(dir);
	assert_int_equal(s.n, 1);

	/* cut in the middle of the first: nothing, and the file whole again */
	assert_int_equal(truncate(path, FS_JOURNAL_DATA + 100), 0);
	s = reopen_and_scan(dir);
	assert_int_equal(s.n, 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, FS_JOURNAL_FILE_SIZE);
	tu_rmdir(dir);
}

static void test_files_take_turns_and_old_records_stay_old(void **state)
{
	char *dir = tu_tmpdir();
	struct fs_journal *j;
	uint64_t last = 0, first_new;
	int n = 0;
	(void)state;

	assert_int_equal(fs_journal_open(dir, &j), 0);
	assert_false(fs_journal_rotate_due(j));
	while (!fs_journal_rotate_due(j)) {
		last = append(j, 5, 200000, (uint8_t)(n + 1));
		n++;
	}
	first_new = fs_journal_rotate(j);
	assert_int_equal(first_new, last + 1);
	assert_true(fs_journal_rotate_due(j)); /* the older file still holds records */
	assert_int_equal(append(j, 6, 10, 0x77), first_new);
	assert_int_equal(fs_journal_sync(j, first_new), 0);
	/* both files are read, in seq order */
	fs_journal_close(j);
	struct seen s = reopen_and_scan(dir);
	assert_int_equal(s.n, n + 1);
	for (int i = 1; i < s.n; i++)
		assert_int_equal(s.seq[i], s.seq[i - 1] + 1);
	assert_int_equal(s.ino[n], 6);

	/* the older file emptied: only the new record is left */
	assert_int_equal(fs_journal_open(dir, &j), 0);
	assert_int_equal(fs_journal_retire(j), 0);
	assert_false(fs_journal_rotate_due(j));
	fs_journal_close(j);
	s = reopen_and_scan(dir);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.seq[0], first_new);

	/* after a reset, a new record over the old ones: those past it are of
	 * an earlier activation and never read, and seqs go on above the floor */
	assert_int_equal(fs_journal_open(dir, &j), 0);
	assert_int_equal(fs_journal_reset(j, first_new + 50), 0);
	uint64_t again = append(j, 7, 10, 0x55);
	assert_true(again > first_new + 50);
	assert_int_equal(fs_journal_sync(j, again), 0);
	fs_journal_close(j);
	s = reopen_and_scan(dir);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.ino[0], 7);
	tu_rmdir(dir);
}

/* A journal file's bytes with its random activation id replaced by a fixed
 * one and its checksums made again: what a golden file can hold. */
static void normalize(uint8_t *b, size_t n)
{
	const uint64_t id = 0x1122334455667788ull;

	put_le64(b + 16, id);
	put_le64(b + 32, XXH3_64bits(b, 32));
	for (size_t off = FS_JOURNAL_DATA; off + FS_JOURNAL_HEAD + 8 <= n;) {
		uint32_t len = get_le32(b + off);
		if (len < FS_JOURNAL_HEAD + 8 || off + len > n)
			break;
		put_le64(b + off + 8, id);
		put_le64(b + off + len - 8, XXH3_64bits(b + off, len - 8));
		off += len;
	}
}

/* The golden journal: two records from a fresh journal, its bytes up to the
 * end of the second. */
static void test_golden_journal(void **state)
{
	char *dir = tu_tmpdir(), path[4200];
	struct fs_journal *j;
	(void)state;

	assert_int_equal(fs_journal_open(dir, &j), 0);
	append(j, 0x0001000000000005ull, 13, 0x42);
	uint64_t seq = append(j, 0x0001000000000006ull, 0, 0);
	assert_int_equal(fs_journal_sync(j, seq), 0);
	fs_journal_close(j);
	size_t used =
	    FS_JOURNAL_DATA + 2 * (FS_JOURNAL_HEAD + FS_JOURNAL_SLOT + FS_JOURNAL_DIRTY + 8) + 16;
	uint8_t *now = malloc(used), *gold = malloc(used);
	path_of(path, sizeof(path), dir, 0);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, now, used, 0), (ssize_t)used);
	close(fd);
	normalize(now, used);
	if (getenv("CASKFS_WRITE_GOLDEN")) {
		FILE *g = fopen(GOLDEN, "wb");
		assert_non_null(g);
		assert_int_equal(fwrite(now, 1, used, g), used);
		fclose(g);
	}
	FILE *g = fopen(GOLDEN, "rb");
	assert_non_null(g);
	assert_int_equal(fread(gold, 1, used, g), used);
	fclose(g);
	assert_memory_equal(now, gold, used);
	/* and the golden bytes, as a journal, read as the two records */
	char *dir2 = tu_tmpdir();
	path_of(path, sizeof(path), dir2, 0);
	g = fopen(path, "wb");
	assert_non_null(g);
	assert_int_equal(fwrite(gold, 1, used, g), used);
	fclose(g);
	struct seen s = reopen_and_scan(dir2);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.seq[0], 1);
	assert_int_equal(s.ino[0], 0x0001000000000005ull);
	assert_int_equal(s.fill[0], 0x42);
	assert_int_equal(s.ino[1], 0x0001000000000006ull);
	free(now);
	free(gold);
	tu_rmdir(dir2);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_read_back_and_a_torn_one_ends_the_file),
		cmocka_unit_test(test_files_take_turns_and_old_records_stay_old),
		cmocka_unit_test(test_golden_journal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
