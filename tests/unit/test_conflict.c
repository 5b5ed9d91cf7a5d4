/*
 * test_conflict - conflict copies between two namespaces in one process
 * (meta/lineage.c, meta/conflict.c): contents changed on both sides keep
 * the loser as NAME.caskfs-conflict-NODE-STAMP on both, with the same
 * records whichever side applies first; edits made one after the other keep
 * nothing; a name bound to a file on one side and a directory on the other
 * keeps both objects. The namespace trees are equal at the end.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"
#include "meta/meta.h"

struct side {
	char *dir;
	struct store_clock clock;
	struct meta *m;
	uint64_t sent;
};

static struct side sides[2];

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
		memset(&sides[i], 0, sizeof(sides[i]));
		sides[i].dir = tu_tmpdir();
		assert_int_equal(meta_open(sides[i].dir, (uint32_t)i + 1, &sides[i].clock, &sides[i].m), 0);
		meta_set_replication(sides[i].m, true);
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 2; i++) {
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
	struct ship s = { sides[to].m, sides[from].sent };
	int n;

	while ((n = meta_outbox_read(sides[from].m, s.last, 100, ship_one, &s)) > 0)
		;
	assert_int_equal(n, 0);
	sides[from].sent = s.last;
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

	assert_int_equal(meta_mknod(sides[0].m, META_ROOT_INO, "doc", S_IFREG | 0640, 0, 7, 8, 0,
				    NULL, &in),
			 0);
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
	assert_int_equal(meta_mknod(sides[0].m, META_ROOT_INO, "x", S_IFDIR | 0755, 0, 0, 0, 0, NULL,
				    &in),
			 0);
	uint64_t dir = in.ino;
	meta_inode_release(&in);
	assert_int_equal(meta_mknod(sides[0].m, dir, "inside", S_IFREG | 0644, 0, 0, 0, 0, NULL, &in),
			 0);
	meta_inode_release(&in);
	assert_int_equal(meta_mknod(sides[1].m, META_ROOT_INO, "x", S_IFREG | 0644, 0, 0, 0, 0, NULL,
				    &in),
			 0);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_a_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_b_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_after_the_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_against_directory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
