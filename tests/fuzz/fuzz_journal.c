/*
 * fuzz_journal - libFuzzer harness for the fsync journal's reader
 * (fs/daemon/journal.c): a file's header, its records' lengths and
 * checksums, and each record's map and buffered slots. The input is the
 * records; the harness puts a valid header before them and, so that the
 * fuzzer gets past the checksums to the parts inside, gives each record
 * whose length fits the header's id, the next seq and its checksum. Every
 * record read is walked whole; the sanitizers catch any read out of bounds.
 * Run: make fuzz (FUZZ_SECONDS=N).
 */
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "fs/daemon/journal_i.h"
#include "store/endian.h"

static volatile uint64_t sink;

static int walk(void *arg, const struct fs_journal_rec *r)
{
	size_t pos = 0;

	(void)arg;
	for (uint32_t i = 0; i < r->nmap; i++)
		sink += r->map[i * FS_JOURNAL_SLOT] + r->map[i * FS_JOURNAL_SLOT + 23];
	for (uint32_t i = 0; i < r->ndirty; i++) {
		struct fs_journal_dirty d;
		fs_journal_dirty_next(r, &pos, &d);
		if (d.n)
			sink += d.bytes[0] + d.bytes[d.n - 1] + d.off + d.len + d.idx;
	}
	if (pos != r->dirty_len)
		abort(); /* the reader let the slots and the record disagree */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = FS_JOURNAL_DATA + size;
	uint8_t *b = malloc(n ? n : 1);

	if (!b)
		return 0;
	memset(b, 0, FS_JOURNAL_DATA);
	memcpy(b, "CASKJRNL", 8);
	put_le32(b + 8, 1);
	put_le32(b + 12, 1);
	put_le64(b + 16, 7);
	put_le64(b + 24, 1);
	put_le64(b + 32, XXH3_64bits(b, 32));
	memcpy(b + FS_JOURNAL_DATA, data, size);
	for (size_t off = FS_JOURNAL_DATA, seq = 1; off + FS_JOURNAL_HEAD + 8 <= n; seq++) {
		uint32_t len = get_le32(b + off);
		if (len < FS_JOURNAL_HEAD + 8 || len % 8 || len > n - off)
			break;
		put_le32(b + off + 4, 1);
		put_le64(b + off + 8, 7);
		put_le64(b + off + 16, seq);
		put_le64(b + off + len - 8, XXH3_64bits(b + off, len - 8));
		off += len;
	}
	fs_journal_parse(b, n, walk, NULL);
	free(b);
	return 0;
}
