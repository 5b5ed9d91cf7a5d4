/*
 * test_conflict - conflict copies between two namespaces in one process
 * (meta/lineage.c, meta/conflict.c): contents changed on both sides keep
 * the loser as NAME.caskfs-conflict-NODE-STAMP on both, with the same
 * records whichever side applies first; edits made one after the other keep
 * nothing; a name bound to a file on one side and a directory on the other
 * keeps both objects. Renames made apart (meta/rebind.c, and
 * meta_inode_merge in meta/lineage.c), over three namespaces: one object
 * renamed to two names ends under the later name on every node, whatever
 * order the records arrive in; a hard link is not taken for a rename; a
 * rename against an unlink keeps the object; a rename against an edit
 * keeps the edit under the name. The namespace trees are equal at the end,
 * and fsck clean.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "meta/meta.h"

#define N 3

struct side {
	char *dir;
	struct store_clock clock;
	struct meta *m;
	uint64_t sent[N]; /* the last outbox seq shipped to each other side */
};

static struct side sides[N];

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++) {
		memset(&sides[i], 0, sizeof(sides[i]));
		sides[i].dir = tu_tmpdir();
		assert_int_equal(
		    meta_open(sides[i].dir, (uint32_t)i + 1, &sides[i].clock, &sides[i].m), 0);
		meta_set_replication(sides[i].m, true);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < N; i++) {
		meta_close(sides[i].m);
		tu_rmdir(sides[i].dir);
	}
	return 0;
}

struct ship {
	struct meta *to;
	uint64_t last;
};

static int ship_one(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct ship *s = arg;
	struct meta_change chg;

	assert_true(meta_apply(s->to, rec, len, &chg) >= 0);
	s->last = seq;
	return 0;
}

static void ship(int from, int to)
{
	struct ship s = { sides[to].m, sides[from].sent[to] };
	int n;

	while ((n = meta_outbox_read(sides[from].m, s.last, 100, ship_one, &s)) > 0)
		;
	assert_int_equal(n, 0);
	sides[from].sent[to] = s.last;
}

static uint64_t root(struct meta *m)
{
	struct store_tree_node self, kids[16];

	assert_int_equal(meta_tree_children(m, NULL, 0, &self, kids), 0);
	return self.hash;
}

static void write_content(struct meta *m, uint64_t ino, uint8_t tag, uint64_t size)
{
	struct meta_chunk c = { .len = (uint32_t)size };

	memset(c.key, tag, sizeof(c.key));
	/* as a rewrite does it: truncated first, then the new content */
	assert_int_equal(meta_set_content(m, ino, 0, NULL, NULL, 0, NULL), 0);
	assert_int_equal(meta_set_content(m, ino, size, NULL, &c, 1, NULL), 0);
}

struct found {
	int n;
	char name[META_NAME_MAX + 1];
	uint64_t ino;
};

static int found_one(void *arg, uint64_t parent, const char *name, uint64_t ino)
{
	struct found *f = arg;

	(void)parent;
	f->n++;
	snprintf(f->name, sizeof(f->name), "%s", name);
	f->ino = ino;
	return 0;
}

static struct found conflicts(struct meta *m)
{
	struct found f = { 0 };

	assert_int_equal(meta_conflicts(m, found_one, &f), 0);
	return f;
}

static uint64_t shared_file(void)
{
	struct meta_inode in = { 0 };

	assert_int_equal(
	    meta_mknod(sides[0].m, META_ROOT_INO, "doc", S_IFREG | 0640, 0, 7, 8, 0, NULL, &in), 0);
	meta_inode_release(&in);
	write_content(sides[0].m, in.ino, 0x11, 1000);
	ship(0, 1);
	return in.ino;
}

static void concurrent(bool a_first)
{
	uint64_t ino = shared_file();

	write_content(sides[0].m, ino, 0x22, 2000); /* node 1: the earlier, loses */
	write_content(sides[1].m, ino, 0x33, 3000); /* node 2: later, wins */
	ship(a_first ? 0 : 1, a_first ? 1 : 0);
	ship(a_first ? 1 : 0, a_first ? 0 : 1);
	ship(0, 1);
	ship(1, 0);
	for (int i = 0; i < 2; i++) {
		struct found f = conflicts(sides[i].m);
		struct meta_inode in = { 0 }, copy = { 0 };
		assert_int_equal(f.n, 1);
		assert_true(strncmp(f.name, "doc.caskfs-conflict-1-", 22) == 0);
		assert_true(f.ino & META_CONFLICT_INO_BIT);
		assert_int_equal(meta_lookup(sides[i].m, META_ROOT_INO, "doc", &in), 0);
		assert_int_equal(in.size, 3000);
		assert_int_equal(meta_getattr(sides[i].m, f.ino, true, &copy), 0);
		assert_int_equal(copy.size, 2000); /* the loser's content, owner and mode */
		assert_int_equal(copy.chunks[0].key[0], 0x22);
		assert_int_equal(copy.uid, 7);
		assert_int_equal(copy.mode, S_IFREG | 0640);
		assert_int_equal(copy.nlink, 1);
		meta_inode_release(&in);
		meta_inode_release(&copy);
	}
	assert_string_equal(conflicts(sides[0].m).name, conflicts(sides[1].m).name);
	assert_true(root(sides[0].m) == root(sides[1].m));
	assert_int_equal(meta_conflict_count(sides[0].m), 1);
}

static void test_concurrent_a_first(void **state)
{
	(void)state;
	concurrent(true);
}

static void test_concurrent_b_first(void **state)
{
	(void)state;
	concurrent(false);
}

static void test_one_after_the_other(void **state)
{
	(void)state;
	uint64_t ino = shared_file();

	write_content(sides[1].m, ino, 0x44, 4000); /* from what node 1 wrote */
	ship(1, 0);
	write_content(sides[0].m, ino, 0x55, 5000); /* from what node 2 wrote */
	ship(0, 1);
	struct meta_inode attr = { .mode = 0600 }, in = { 0 };
	assert_int_equal(meta_setattr(sides[1].m, ino, META_SET_MODE, &attr, NULL), 0);
	ship(1, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(conflicts(sides[i].m).n, 0);
		assert_int_equal(meta_lookup(sides[i].m, META_ROOT_INO, "doc", &in), 0);
		assert_int_equal(in.size, 5000);
		meta_inode_release(&in);
	}
	assert_true(root(sides[0].m) == root(sides[1].m));
}

static void test_file_against_directory(void **state)
{
	struct meta_inode in = { 0 };

	(void)state;
	assert_int_equal(
	    meta_mknod(sides[0].m, META_ROOT_INO, "x", S_IFDIR | 0755, 0, 0, 0, 0, NULL, &in), 0);
	uint64_t dir = in.ino;
	meta_inode_release(&in);
	assert_int_equal(
	    meta_mknod(sides[0].m, dir, "inside", S_IFREG | 0644, 0, 0, 0, 0, NULL, &in), 0);
	meta_inode_release(&in);
	assert_int_equal(
	    meta_mknod(sides[1].m, META_ROOT_INO, "x", S_IFREG | 0644, 0, 0, 0, 0, NULL, &in), 0);
	uint64_t file = in.ino;
	meta_inode_release(&in);
	ship(0, 1);
	ship(1, 0);
	ship(0, 1);
	for (int i = 0; i < 2; i++) {
		struct found f = conflicts(sides[i].m);
		assert_int_equal(f.n, 1);
		assert_int_equal(f.ino, dir); /* the earlier binding: node 1's directory */
		assert_int_equal(meta_lookup(sides[i].m, META_ROOT_INO, "x", &in), 0);
		assert_int_equal(in.ino, file);
		meta_inode_release(&in);
		assert_int_equal(meta_lookup(sides[i].m, dir, "inside", &in), 0);
		meta_inode_release(&in);
		char path[4096];
		assert_int_equal(meta_dir_path(sides[i].m, dir, path, sizeof(path)), 0);
		assert_string_equal(path + 1, f.name);
	}
	assert_true(root(sides[0].m) == root(sides[1].m));
}

/* ---- renames made apart ---- */

/* Everything to everyone until nothing new is sent: side 2 hears node 2
 * before node 1 when b_first, node 1 first otherwise. */
static void join(bool b_first)
{
	for (int round = 0; round < 3; round++) {
		ship(0, 1);
		ship(1, 0);
		ship(b_first ? 1 : 0, 2);
		ship(b_first ? 0 : 1, 2);
		ship(2, 0);
		ship(2, 1);
	}
}

static void converged(void)
{
	for (int i = 0; i < N; i++) {
		uint64_t problems = 1, fixed = 1;
		assert_int_equal(meta_verify(sides[i].m, false, NULL, NULL, &problems, &fixed), 0);
		assert_int_equal(problems, 0);
	}
	assert_true(root(sides[0].m) == root(sides[1].m));
	assert_true(root(sides[0].m) == root(sides[2].m));
}

static uint64_t mk(struct meta *m, uint64_t parent, const char *name, uint32_t mode)
{
	struct meta_inode in = { 0 };

	assert_int_equal(meta_mknod(m, parent, name, mode, 0, 0, 0, 0, NULL, &in), 0);
	meta_inode_release(&in);
	return in.ino;
}

/* ino named name in parent on side i, with nlink links (0: absent). */
static void named(int i, uint64_t parent, const char *name, uint64_t ino, uint32_t nlink)
{
	struct meta_inode in = { 0 };
	int rc = meta_lookup(sides[i].m, parent, name, &in);

	if (!ino) {
		assert_int_equal(rc, -ENOENT);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(in.ino, ino);
	assert_int_equal(in.nlink, nlink);
	meta_inode_release(&in);
}

static uint64_t shared(const char *name, uint32_t mode)
{
	uint64_t ino = mk(sides[0].m, META_ROOT_INO, name, mode);

	join(false);
	return ino;
}

/* the order side 2 hears the two nodes in, as the test's state */
static bool hear_a_first = false, hear_b_first = true;

static void test_file_renamed_twice(void **state)
{
	bool b_first = *(bool *)*state;
	uint64_t ino = shared("a", S_IFREG | 0644);

	assert_int_equal(meta_rename(sides[0].m, META_ROOT_INO, "a", META_ROOT_INO, "b", 0), 0);
	assert_int_equal(meta_rename(sides[1].m, META_ROOT_INO, "a", META_ROOT_INO, "c", 0), 0);
	join(b_first);
	for (int i = 0; i < N; i++) {
		named(i, META_ROOT_INO, "c", ino, 1); /* node 2's rename is the later */
		named(i, META_ROOT_INO, "b", 0, 0);
		named(i, META_ROOT_INO, "a", 0, 0);
	}
	converged();
}

/* A directory moved into two other directories: one parent, its entries
 * with it, link counts and the parents' subdirectory counts right. */
static void test_directory_renamed_twice(void **state)
{
	(void)state;
	uint64_t d = mk(sides[0].m, META_ROOT_INO, "d", S_IFDIR | 0755);
	uint64_t p = mk(sides[0].m, META_ROOT_INO, "p", S_IFDIR | 0755);
	uint64_t q = mk(sides[0].m, META_ROOT_INO, "q", S_IFDIR | 0755);
	uint64_t f = mk(sides[0].m, d, "inside", S_IFREG | 0644);
	join(false);
	assert_int_equal(meta_rename(sides[0].m, META_ROOT_INO, "d", p, "d1", 0), 0);
	assert_int_equal(meta_rename(sides[1].m, META_ROOT_INO, "d", q, "d2", 0), 0);
	join(true);
	for (int i = 0; i < N; i++) {
		char path[4096];
		named(i, q, "d2", d, 2);
		named(i, p, "d1", 0, 0);
		named(i, META_ROOT_INO, "d", 0, 0);
		named(i, d, "inside", f, 1);
		named(i, META_ROOT_INO, "p", p, 2);
		named(i, META_ROOT_INO, "q", q, 3);
		assert_int_equal(meta_dir_path(sides[i].m, d, path, sizeof(path)), 0);
		assert_string_equal(path, "/q/d2");
	}
	converged();
}

/* ln made on one node: its own binding, so both names stay; the rename of
 * the other name on the other node is no conflict either. */
static void test_hard_link_is_not_a_rename(void **state)
{
	(void)state;
	uint64_t ino = shared("a", S_IFREG | 0644);

	assert_int_equal(meta_link(sides[0].m, ino, META_ROOT_INO, "l", NULL), 0);
	assert_int_equal(meta_rename(sides[1].m, META_ROOT_INO, "a", META_ROOT_INO, "c", 0), 0);
	join(false);
	for (int i = 0; i < N; i++) {
		named(i, META_ROOT_INO, "l", ino, 2);
		named(i, META_ROOT_INO, "c", ino, 2);
		named(i, META_ROOT_INO, "a", 0, 0);
	}
	converged();
	/* and a link renamed away on one node while the other renames a */
	assert_int_equal(meta_rename(sides[0].m, META_ROOT_INO, "l", META_ROOT_INO, "l2", 0), 0);
	assert_int_equal(meta_rename(sides[1].m, META_ROOT_INO, "c", META_ROOT_INO, "c2", 0), 0);
	join(true);
	for (int i = 0; i < N; i++) {
		named(i, META_ROOT_INO, "l2", ino, 2);
		named(i, META_ROOT_INO, "c2", ino, 2);
	}
	converged();
}

static void test_rename_against_unlink(void **state)
{
	(void)state;
	uint64_t ino = shared("a", S_IFREG | 0644);

	assert_int_equal(meta_rename(sides[0].m, META_ROOT_INO, "a", META_ROOT_INO, "b", 0), 0);
	assert_int_equal(meta_unlink(sides[1].m, META_ROOT_INO, "a"), 0); /* the later */
	join(true);
	for (int i = 0; i < N; i++) {
		named(i, META_ROOT_INO, "b", ino, 1); /* nothing is lost */
		named(i, META_ROOT_INO, "a", 0, 0);
	}
	converged();
}

/* The edit survives under the name whichever is the later: the rename's
 * record (its ctime) or the edit's. The state: whether the rename is. */
static bool edit_later = false, rename_later = true;

static void test_rename_against_edit(void **state)
{
	bool rename_is_later = *(bool *)*state;
	uint64_t ino = shared("a", S_IFREG | 0644);
	int r = rename_is_later ? 1 : 0, e = 1 - r;

	write_content(sides[0].m, ino, 0x11, 1000);
	join(false);
	if (rename_is_later) {
		write_content(sides[e].m, ino, 0x22, 2000);
		assert_int_equal(meta_rename(sides[r].m, META_ROOT_INO, "a", META_ROOT_INO, "b", 0),
				 0);
	} else {
		assert_int_equal(meta_rename(sides[r].m, META_ROOT_INO, "a", META_ROOT_INO, "b", 0),
				 0);
		write_content(sides[e].m, ino, 0x22, 2000);
	}
	join(rename_is_later);
	for (int i = 0; i < N; i++) {
		struct meta_inode in = { 0 };
		named(i, META_ROOT_INO, "b", ino, 1);
		named(i, META_ROOT_INO, "a", 0, 0);
		assert_int_equal(meta_getattr(sides[i].m, ino, true, &in), 0);
		assert_int_equal(in.size, 2000);
		assert_int_equal(in.chunks[0].key[0], 0x22);
		meta_inode_release(&in);
		assert_int_equal(meta_conflict_count(sides[i].m), 0);
	}
	converged();
}

/* Entry records of version 1 (36 bytes, and 24 before the version they
 * replaced was kept) still read, with no origin: each its own binding. */
static void test_entry_record_v1(void **state)
{
	(void)state;
	const char *files[] = { "entry-v1.rec", "entry-v0.rec" };
	for (int f = 0; f < 2; f++) {
		char path[512];
		uint8_t buf[64];
		snprintf(path, sizeof(path), CASKFS_SRCDIR "/tests/data/golden/meta/%s", files[f]);
		FILE *fp = fopen(path, "rb");
		assert_non_null(fp);
		size_t n = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		assert_int_equal(n, f ? 24 : 36);
		/* a wire record of it, applied: it names inode 0x0001000000000005 */
		uint8_t rec[3 + 17 + 64];
		rec[0] = META_TABLE_ENTRIES;
		rec[1] = 17;
		rec[2] = 0;
		memset(rec + 3, 0, 8);
		rec[3 + 7] = META_ROOT_INO;
		uint64_t pos = (store_key_hash("x", 1) >> 2) + 4;
		for (int i = 0; i < 8; i++)
			rec[3 + 8 + i] = (uint8_t)(pos >> (56 - 8 * i));
		rec[3 + 16] = 'x';
		memcpy(rec + 3 + 17, buf, n);
		struct meta_change chg;
		assert_int_equal(meta_apply(sides[f].m, rec, 3 + 17 + n, &chg), 1);
		assert_int_equal(chg.ino, 0x0001000000000005ull);
		/* cut short or grown by a byte: refused */
		assert_int_equal(meta_apply(sides[f].m, rec, 3 + 17 + n - 1, &chg), -EBADMSG);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_a_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_b_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_after_the_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_against_directory, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_file_renamed_twice, setup, teardown,
							 &hear_a_first),
		cmocka_unit_test_prestate_setup_teardown(test_file_renamed_twice, setup, teardown,
							 &hear_b_first),
		cmocka_unit_test_setup_teardown(test_directory_renamed_twice, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_link_is_not_a_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_against_unlink, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_rename_against_edit, setup, teardown,
							 &edit_later),
		cmocka_unit_test_prestate_setup_teardown(test_rename_against_edit, setup, teardown,
							 &rename_later),
		cmocka_unit_test_setup_teardown(test_entry_record_v1, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
