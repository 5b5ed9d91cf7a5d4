/*
 * test_replica - the namespace between two nodes, in one process: the
 * outbox in order, records applied last-writer-wins with link counts derived,
 * concurrent edits converging, an entry of a directory removed elsewhere kept
 * in /lost+found whichever way round the records arrive, malformed records
 * refused, and the namespace hash trees equal once both sides have everything.
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
	uint64_t sent; /* outbox seq shipped to the other side */
};

struct fixture {
	struct side s[2];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	for (int i = 0; i < 2; i++) {
		f->s[i].dir = tu_tmpdir();
		assert_int_equal(meta_open(f->s[i].dir, (uint32_t)i + 1, &f->s[i].clock, &f->s[i].m),
				 0);
		meta_set_replication(f->s[i].m, true);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 2; i++) {
		meta_close(f->s[i].m);
		tu_rmdir(f->s[i].dir);
	}
	free(f);
	return 0;
}

struct ship {
	struct meta *to;
	uint64_t last;
	int applied;
};

static int ship_one(void *arg, uint64_t seq, const uint8_t *rec, size_t len)
{
	struct ship *s = arg;
	struct meta_change chg;
	int rc = meta_apply(s->to, rec, len, &chg);

	assert_true(rc >= 0);
	s->applied += rc;
	s->last = seq;
	return 0;
}

/* Sends side from's outbox (what it has not sent yet) to side to. */
static int ship(struct fixture *f, int from, int to)
{
	struct ship s = { f->s[to].m, f->s[from].sent, 0 };
	int n;

	while ((n = meta_outbox_read(f->s[from].m, s.last, 100, ship_one, &s)) > 0)
		;
	assert_true(n == 0);
	f->s[from].sent = s.last;
	return s.applied;
}

static uint64_t root_hash(struct meta *m)
{
	struct store_tree_node self, kids[16];

	assert_int_equal(meta_tree_children(m, NULL, 0, &self, kids), 0);
	return self.hash;
}

static uint64_t mk(struct meta *m, uint64_t parent, const char *name, uint32_t mode)
{
	struct meta_inode in = { 0 };

	assert_int_equal(meta_mknod(m, parent, name, mode, 0, 0, 0, 0, NULL, &in), 0);
	meta_inode_release(&in);
	return in.ino;
}

static int lookup(struct meta *m, uint64_t parent, const char *name, struct meta_inode *in)
{
	memset(in, 0, sizeof(*in));
	int rc = meta_lookup(m, parent, name, in);
	meta_inode_release(in);
	return rc;
}

static void test_changes_travel(void **state)
{
	struct fixture *f = *state;
	struct meta_inode in;

	uint64_t d = mk(f->s[0].m, META_ROOT_INO, "photos", S_IFDIR | 0755);
	uint64_t a = mk(f->s[0].m, d, "a.jpg", S_IFREG | 0644);
	assert_int_equal(meta_link(f->s[0].m, a, META_ROOT_INO, "a-link", &in), 0);
	meta_inode_release(&in);
	assert_int_equal(meta_setxattr(f->s[0].m, a, "user.k", "v", 1, 0), 0);
	assert_true(ship(f, 0, 1) > 0);
	assert_int_equal(lookup(f->s[1].m, d, "a.jpg", &in), 0);
	assert_true(in.ino == a);
	assert_int_equal(in.nlink, 2);
	assert_int_equal(lookup(f->s[1].m, META_ROOT_INO, "photos", &in), 0);
	assert_int_equal(in.nlink, 2);
	char v[8];
	assert_int_equal(meta_getxattr(f->s[1].m, a, "user.k", v, sizeof(v)), 1);
	/* shipping again changes nothing: every record is as new there */
	f->s[0].sent = 0;
	assert_int_equal(ship(f, 0, 1), 0);
	/* a rename and an unlink travel too */
	assert_int_equal(meta_rename(f->s[0].m, d, "a.jpg", META_ROOT_INO, "b.jpg", 0), 0);
	assert_int_equal(meta_unlink(f->s[0].m, META_ROOT_INO, "a-link"), 0);
	ship(f, 0, 1);
	assert_int_equal(lookup(f->s[1].m, d, "a.jpg", &in), -ENOENT);
	assert_int_equal(lookup(f->s[1].m, META_ROOT_INO, "a-link", &in), -ENOENT);
	assert_int_equal(lookup(f->s[1].m, META_ROOT_INO, "b.jpg", &in), 0);
	assert_int_equal(in.nlink, 1);
	ship(f, 1, 0);
	assert_true(root_hash(f->s[0].m) == root_hash(f->s[1].m));
}

static void test_later_edit_wins(void **state)
{
	struct fixture *f = *state;
	struct meta_inode in = { 0 }, attr = { 0 };

	uint64_t a = mk(f->s[0].m, META_ROOT_INO, "note", S_IFREG | 0644);
	ship(f, 0, 1);
	attr.mode = 0600;
	assert_int_equal(meta_setattr(f->s[0].m, a, META_SET_MODE, &attr, &in), 0);
	meta_inode_release(&in);
	attr.mode = 0640;
	assert_int_equal(meta_setattr(f->s[1].m, a, META_SET_MODE, &attr, &in), 0);
	meta_inode_release(&in);
	ship(f, 0, 1);
	ship(f, 1, 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(meta_getattr(f->s[i].m, a, false, &in), 0);
		assert_int_equal(in.mode & 0777, 0640);
		meta_inode_release(&in);
	}
	assert_true(root_hash(f->s[0].m) == root_hash(f->s[1].m));
}

/* Side 0 removes a directory while side 1 creates a file in it. */
static void lost_found_case(struct fixture *f, bool zero_first)
{
	struct meta_inode in;

	uint64_t d = mk(f->s[0].m, META_ROOT_INO, "d", S_IFDIR | 0755);
	ship(f, 0, 1);
	assert_int_equal(meta_rmdir(f->s[0].m, META_ROOT_INO, "d"), 0);
	uint64_t x = mk(f->s[1].m, d, "x.txt", S_IFREG | 0644);
	if (zero_first) {
		ship(f, 0, 1);
		ship(f, 1, 0);
	} else {
		ship(f, 1, 0);
		ship(f, 0, 1);
	}
	/* the rescues are changes too: one more round each way */
	ship(f, 0, 1);
	ship(f, 1, 0);
	char name[64];
	snprintf(name, sizeof(name), "%016llx-x.txt", (unsigned long long)d);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(lookup(f->s[i].m, META_ROOT_INO, "d", &in), -ENOENT);
		assert_int_equal(lookup(f->s[i].m, META_LOST_FOUND_INO, name, &in), 0);
		assert_true(in.ino == x);
		assert_int_equal(in.nlink, 1);
	}
	assert_true(root_hash(f->s[0].m) == root_hash(f->s[1].m));
}

static void test_lost_found_remove_first(void **state)
{
	lost_found_case(*state, true);
}

static void test_lost_found_create_first(void **state)
{
	lost_found_case(*state, false);
}

static void test_malformed_records(void **state)
{
	struct fixture *f = *state;
	struct meta_change chg;
	uint8_t rec[64] = { 0 };

	assert_int_equal(meta_apply(f->s[0].m, rec, 2, &chg), -EBADMSG);
	rec[0] = 9; /* no such table */
	rec[1] = 8;
	assert_int_equal(meta_apply(f->s[0].m, rec, sizeof(rec), &chg), -EBADMSG);
	rec[0] = META_TABLE_ENTRIES;
	rec[1] = 200; /* key longer than the record */
	assert_int_equal(meta_apply(f->s[0].m, rec, sizeof(rec), &chg), -EBADMSG);
	rec[1] = 17; /* an entry whose value is not an entry */
	assert_int_equal(meta_apply(f->s[0].m, rec, sizeof(rec), &chg), -EBADMSG);
	rec[0] = META_TABLE_INODES;
	rec[1] = 8;
	assert_int_equal(meta_apply(f->s[0].m, rec, sizeof(rec), &chg), -EBADMSG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_changes_travel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_later_edit_wins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_found_remove_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_found_create_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_records, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
