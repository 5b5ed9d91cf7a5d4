/*
 * test_nlookup - the kernel's lookup counts: an inode is let go only when
 * FORGETs give back every lookup handed out, also when a FORGET for an
 * earlier life arrives after a newer lookup; unknown inodes are let go; the
 * table grows and stays exact.
 */
#include "testutil.h"
#include "fs/daemon/daemon_i.h"

static void test_counts(void **state)
{
	struct fs_nlookup t = { .mu = PTHREAD_MUTEX_INITIALIZER };

	(void)state;
	assert_int_equal(fs_nlookup_add(&t, 7), 0);
	assert_int_equal(fs_nlookup_add(&t, 7), 0);
	assert_int_equal(fs_nlookup_add(&t, 7), 0);
	assert_int_equal(fs_nlookup_count(&t, 7), 3);
	assert_false(fs_nlookup_forget(&t, 7, 2));
	assert_int_equal(fs_nlookup_count(&t, 7), 1);
	assert_true(fs_nlookup_forget(&t, 7, 1));
	assert_int_equal(fs_nlookup_count(&t, 7), 0);
	/* never handed out (or already let go): nothing holds it */
	assert_true(fs_nlookup_forget(&t, 8, 1));
	fs_nlookup_free(&t);
}

static void test_forget_of_an_earlier_life(void **state)
{
	struct fs_nlookup t = { .mu = PTHREAD_MUTEX_INITIALIZER };

	(void)state;
	/* the kernel looked ino 5 up twice, evicted it (FORGET 2 on its way),
	 * then looked it up again before the daemon read that FORGET */
	assert_int_equal(fs_nlookup_add(&t, 5), 0);
	assert_int_equal(fs_nlookup_add(&t, 5), 0);
	assert_int_equal(fs_nlookup_add(&t, 5), 0);
	assert_false(fs_nlookup_forget(&t, 5, 2)); /* the new lookup still holds it */
	assert_true(fs_nlookup_forget(&t, 5, 1));
	fs_nlookup_free(&t);
}

static void test_many(void **state)
{
	struct fs_nlookup t = { .mu = PTHREAD_MUTEX_INITIALIZER };
	const uint64_t n = 100000;

	(void)state;
	for (uint64_t i = 1; i <= n; i++)
		for (uint64_t k = 0; k < i % 3 + 1; k++)
			assert_int_equal(fs_nlookup_add(&t, i << 20 | i), 0);
	assert_int_equal(t.table.n, n);
	assert_true(t.table.nbuckets >= n);
	for (uint64_t i = 1; i <= n; i++)
		assert_int_equal(fs_nlookup_count(&t, i << 20 | i), i % 3 + 1);
	for (uint64_t i = 1; i <= n; i++)
		assert_true(fs_nlookup_forget(&t, i << 20 | i, i % 3 + 1));
	assert_int_equal(t.table.n, 0);
	fs_nlookup_free(&t);
	assert_int_equal(fs_nlookup_count(&t, 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_forget_of_an_earlier_life),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
