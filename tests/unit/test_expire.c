/*
 * test_expire - what a record keeps besides its value (store_attr): the
 * client's flags, 0 to 2^32-1, through every path that reads or moves a
 * record; and expiry times: an expired object reads as absent, its tombstone
 * is the one every replica derives, it is written by a read, by the sweep
 * and by compaction, and a later write of the key still wins.
 */
#include <errno.h>
#include <time.h>

#include "testutil.h"

static struct store *open_or_fail(const char *dir, const struct store_options *o)
{
	struct store *s = NULL;

	assert_int_equal(store_open(dir, o, &s), 0);
	return s;
}

static void expect_flags(struct store *s, const char *key, uint32_t flags, uint32_t expires)
{
	struct store_meta m;
	void *v;
	size_t n;
	char buf[64];

	assert_int_equal(store_get(s, key, strlen(key), &v, &n, &m), 0);
	free(v);
	assert_true(m.attr.flags == flags);
	assert_true(m.attr.expires == expires);
	assert_int_equal(store_read(s, key, strlen(key), buf, sizeof(buf), &n, &m), 0);
	assert_true(m.attr.flags == flags);
	assert_int_equal(store_stat(s, key, strlen(key), &m), 0);
	assert_true(m.attr.flags == flags);
	assert_true(m.attr.expires == expires);
}

/* Flags survive a reopen from a scan, from a hint, and compaction. */
static void test_flags(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	struct store_meta m;
	struct store_attr zero = { 0, 0 }, top = { UINT32_MAX, 0 }, one = { 1, 4000000000u };

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put_attr(s, "zero", 4, "a", 1, &zero, &m), 0);
	assert_int_equal(store_put_attr(s, "top", 3, "b", 1, &top, &m), 0);
	assert_true(m.attr.flags == UINT32_MAX);
	assert_int_equal(store_put_attr(s, "one", 3, "c", 1, &one, NULL), 0);
	assert_int_equal(store_put(s, "plain", 5, "d", 1, NULL), 0);
	expect_flags(s, "top", UINT32_MAX, 0);
	expect_flags(s, "one", 1, 4000000000u);
	expect_flags(s, "plain", 0, 0);
	assert_int_equal(store_close(s), 0);

	s = open_or_fail(dir, &o); /* the active segment, scanned */
	expect_flags(s, "top", UINT32_MAX, 0);
	expect_flags(s, "one", 1, 4000000000u);
	assert_int_equal(store_roll(s), 0);
	assert_int_equal(store_close(s), 0);
	s = open_or_fail(dir, &o); /* a sealed segment, from its hint */
	expect_flags(s, "one", 1, 4000000000u);
	struct store_stats st;
	store_stats(s, &st);
	assert_int_equal(st.expiring, 1);
	uint64_t records, bad;
	assert_int_equal(store_verify(s, NULL, NULL, &records, &bad), 0);
	assert_int_equal(bad, 0);
	/* compaction copies records byte for byte: the flags go along */
	assert_int_equal(store_put(s, "zero", 4, "new", 3, NULL), 0);
	assert_int_equal(store_roll(s), 0);
	assert_true(store_compact(s, true) >= 1);
	expect_flags(s, "top", UINT32_MAX, 0);
	expect_flags(s, "one", 1, 4000000000u);
	expect_flags(s, "zero", 0, 0);
	assert_int_equal(store_close(s), 0);
	s = open_or_fail(dir, &o);
	expect_flags(s, "top", UINT32_MAX, 0);
	assert_int_equal(store_verify(s, NULL, NULL, &records, &bad), 0);
	assert_int_equal(bad, 0);
	store_close(s);

	/* a replicated record keeps the flags it was given */
	struct store_version v = { 5 << 16, 3 };
	s = open_or_fail(dir, &o);
	assert_int_equal(store_apply_attr(s, "rep", 3, "x", 1, &v, false, &top), 0);
	expect_flags(s, "rep", UINT32_MAX, 0);
	/* writers' node ids are below 2^31; the top bit is the expiry tombstone's */
	v.stamp++;
	v.node = 3 | STORE_EXPIRY_NODE;
	assert_int_equal(store_apply_attr(s, "rep", 3, "x", 1, &v, false, &top), -EINVAL);
	assert_int_equal(store_apply(s, "rep", 3, NULL, 0, &v, true), 0);
	store_close(s);
	struct tu_log log;
	tu_log_init(&log);
	tu_options(&o, &log);
	o.node_id = STORE_EXPIRY_NODE;
	assert_int_equal(store_open(dir, &o, &s), -EINVAL);
	tu_rmdir(dir);
}

static int count_live(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	(void)key;
	(void)klen;
	(void)m;
	(*(int *)arg)++;
	return 0;
}

/* An expired object reads as absent; its tombstone is derived from it. */
static void test_expiry(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	struct store_meta m, w;
	uint32_t now = (uint32_t)time(NULL);
	struct store_attr past = { 9, now - 1 }, soon = { 8, now + 2 }, later = { 7, now + 3600 };
	void *v;
	size_t n;
	int live = 0;

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_put_attr(s, "past", 4, "gone", 4, &past, &w), 0);
	assert_int_equal(store_put_attr(s, "soon", 4, "going", 5, &soon, NULL), 0);
	assert_int_equal(store_put_attr(s, "later", 5, "stays", 5, &later, NULL), 0);
	/* listed without tombstones: not the expired one */
	assert_int_equal(store_scan(s, "", 0, false, count_live, &live), 0);
	assert_int_equal(live, 2);

	assert_int_equal(store_get(s, "past", 4, &v, &n, &m), -ENOENT);
	assert_true(m.tombstone);
	assert_true(m.version.stamp == w.version.stamp);
	assert_true(m.version.node == (w.version.node | STORE_EXPIRY_NODE));
	/* the tombstone is written: it stays so after a reopen */
	struct store_stats st;
	store_stats(s, &st);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.tombstones, 1);
	assert_int_equal(st.keys, 2);
	/* the record it replaced, arriving again from a peer, is older */
	assert_int_equal(store_apply_attr(s, "past", 4, "gone", 4, &w.version, false, &past),
			 STORE_STALE);
	assert_int_equal(store_close(s), 0);
	s = open_or_fail(dir, &o);
	assert_int_equal(store_stat(s, "past", 4, &m), -ENOENT);
	assert_true(m.tombstone && (m.version.node & STORE_EXPIRY_NODE));
	/* a later write of the key wins over the tombstone */
	assert_int_equal(store_put(s, "past", 4, "back", 4, NULL), 0);
	tu_expect(s, "past", 4, "back", 4);

	tu_expect(s, "soon", 4, "going", 5);
	sleep(3);
	assert_int_equal(store_stat(s, "soon", 4, &m), -ENOENT);
	assert_true(m.tombstone);
	tu_expect(s, "later", 5, "stays", 5);
	store_close(s);
	tu_rmdir(dir);
}

/* Two replicas that expire an object on their own agree on the result. */
static void test_replicas_agree(void **state)
{
	(void)state;
	char *da = tu_tmpdir(), *db = tu_tmpdir();
	struct store_options o;
	struct store *a, *b;
	struct store_version v = { 77 << 16, 4 };
	uint32_t now = (uint32_t)time(NULL);
	struct store_attr past = { 1, now - 10 };
	struct store_stats sa, sb;
	struct store_meta m;

	tu_options(&o, NULL);
	a = open_or_fail(da, &o);
	o.node_id = 2;
	b = open_or_fail(db, &o);
	for (int i = 0; i < 50; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		v.stamp++;
		assert_int_equal(store_apply_attr(a, key, strlen(key), "v", 1, &v, false, &past),
				 0);
		assert_int_equal(store_apply_attr(b, key, strlen(key), "v", 1, &v, false, &past),
				 0);
	}
	/* a by its sweep, b by reads */
	assert_int_equal(store_expire(a), 50);
	assert_int_equal(store_expire(a), 0);
	for (int i = 0; i < 50; i++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(store_stat(b, key, strlen(key), &m), -ENOENT);
	}
	store_stats(a, &sa);
	store_stats(b, &sb);
	assert_int_equal(sa.keys, 0);
	assert_int_equal(sa.expiring, 0);
	assert_int_equal(sa.tombstones, 50);
	assert_true(sa.tree_root == sb.tree_root);
	store_close(a);
	store_close(b);
	tu_rmdir(da);
	tu_rmdir(db);
}

/* Compaction does not copy an expired object: its tombstone takes its place. */
static void test_compaction(void **state)
{
	(void)state;
	char *dir = tu_tmpdir();
	struct store_options o;
	struct store *s;
	struct store_stats st;
	uint32_t now = (uint32_t)time(NULL);
	struct store_attr soon = { 0, now + 2 };
	static uint8_t big[8192];

	tu_options(&o, NULL);
	s = open_or_fail(dir, &o);
	for (int i = 0; i < 20; i++) {
		char key[16];
		snprintf(key, sizeof(key), "e%d", i);
		assert_int_equal(store_put_attr(s, key, strlen(key), big, sizeof(big), &soon, NULL),
				 0);
	}
	assert_int_equal(store_put(s, "keep", 4, "kept", 4, NULL), 0);
	assert_int_equal(store_roll(s), 0);
	sleep(3);
	assert_int_equal(store_compact(s, true), 1);
	store_stats(s, &st);
	assert_int_equal(st.keys, 1);
	assert_int_equal(st.tombstones, 20);
	assert_int_equal(st.expired, 20);
	assert_true(st.disk_bytes < 20 * sizeof(big) / 4);
	tu_expect(s, "keep", 4, "kept", 4);
	store_close(s);

	/* with expiry off, what is kept is served, and nothing is replaced */
	s = open_or_fail(dir, &o);
	struct store_attr past = { 3, now - 1 };
	assert_int_equal(store_put_attr(s, "p", 1, "still", 5, &past, NULL), 0);
	store_set_no_expiry(s, true);
	tu_expect(s, "p", 1, "still", 5);
	assert_int_equal(store_expire(s), 0);
	store_set_no_expiry(s, false);
	struct store_meta m;
	assert_int_equal(store_stat(s, "p", 1, &m), -ENOENT);
	store_close(s);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_replicas_agree),
		cmocka_unit_test(test_compaction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
