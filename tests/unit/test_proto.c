/*
 * test_proto - the node protocol's request parser (store/node/proto.c): every
 * command's shape, partial input, data blocks and their terminators, the
 * refusals that skip a value, and the line that is too long.
 */
#include <errno.h>
#include <string.h>

#include "testutil.h"

#include "store/node/proto.h"

static long parse(const char *s, struct proto_req *r)
{
	return proto_parse(s, strlen(s), r);
}

static void test_storage(void **state)
{
	struct proto_req r;
	const char *s = "set key 7 0 5\r\nhello\r\nget key\r\n";

	(void)state;
	assert_int_equal(parse(s, &r), 22);
	assert_int_equal(r.cmd, PROTO_SET);
	assert_int_equal(r.key_len, 3);
	assert_memory_equal(r.key, "key", 3);
	assert_int_equal(r.flags, 7);
	assert_int_equal(r.data_len, 5);
	assert_memory_equal(r.data, "hello", 5);
	assert_false(r.noreply);
	/* every proper prefix asks for more */
	for (size_t n = 0; n < 22; n++)
		assert_int_equal(proto_parse(s, n, &r), 0);
	assert_int_equal(parse("add k 0 0 0 noreply\n\r\n", &r), 23 - 1);
	assert_int_equal(r.cmd, PROTO_ADD);
	assert_true(r.noreply);
	assert_int_equal(r.data_len, 0);
	assert_int_equal(parse("replace k 0 0 1\r\nxYZ", &r), 20);
	assert_int_equal(r.cmd, PROTO_ERROR);
	assert_string_equal(r.error, "CLIENT_ERROR bad data chunk");
}

static void test_refusals(void **state)
{
	struct proto_req r;

	(void)state;
	assert_int_equal(parse("set k 0 0 16777217\r\n", &r), 20);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 16777219);
	assert_int_equal(parse("cas k 0 0 3 99\r\n", &r), 16);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 5);
	assert_int_equal(parse("append k 0 0 3\r\n", &r), 16);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	/* a bad key with a readable length: the value is skipped too */
	char line[400];
	snprintf(line, sizeof(line), "set %0251d 0 0 2\r\n", 0);
	assert_int_equal(parse(line, &r), (long)strlen(line));
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 4);
	const char *bad[] = { "set k 0 0\r\n",	 "set k x 0 1\r\n", "set k 0 0 -1\r\n",
			      "set k 0 0 1 x\r\n", "set k 0 0 99999999999999999999999\r\n",
			      "delete\r\n",	 "delete k 5\r\n",  "xset k 1 2\r\n",
			      "get\r\n",	 "\r\n",	    "nonsense\r\n",
			      "incr k 1\r\n",	 "version x\r\n",   "verbosity\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &r), (long)strlen(bad[i]));
		assert_int_equal(r.cmd, PROTO_ERROR);
		assert_non_null(r.error);
	}
}

static void test_retrieval_and_others(void **state)
{
	struct proto_req r;
	const char *k;
	size_t kl, pos = 0;
	int n = 0;

	(void)state;
	assert_int_equal(parse("gets a  bb ccc\r\n", &r), 16);
	assert_int_equal(r.cmd, PROTO_GETS);
	while (proto_token(r.args, r.args_len, &pos, &k, &kl))
		assert_int_equal(kl, (size_t)++n);
	assert_int_equal(n, 3);
	assert_int_equal(parse("xget ?a @0f\r\n", &r), 13);
	assert_int_equal(r.cmd, PROTO_XGET);
	assert_int_equal(parse("delete k 0 noreply\r\n", &r), 20);
	assert_int_equal(r.cmd, PROTO_DELETE);
	assert_true(r.noreply);
	assert_int_equal(parse("stats\r\n", &r), 7);
	assert_int_equal(r.cmd, PROTO_STATS);
	assert_int_equal(parse("quit\n", &r), 5);
	assert_int_equal(r.cmd, PROTO_QUIT);
	assert_int_equal(parse("xls pre\r\n", &r), 9);
	assert_int_equal(r.cmd, PROTO_XLS);
	assert_int_equal(r.key_len, 3);
	assert_int_equal(parse("xls\r\n", &r), 5);
	assert_int_equal(r.key_len, 0);
	assert_int_equal(parse("auth 00ff\r\n", &r), 11);
	assert_int_equal(r.cmd, PROTO_AUTH);
}

static void test_xset(void **state)
{
	struct proto_req r;

	(void)state;
	assert_int_equal(parse("xset k 18446744073709551615 65535 2\r\nhi\r\n", &r), 41);
	assert_int_equal(r.cmd, PROTO_XSET);
	assert_true(r.stamp == UINT64_MAX);
	assert_int_equal(r.node, 65535);
	assert_false(r.tombstone);
	assert_int_equal(parse("xset k 5 1 0 T noreply\r\n\r\n", &r), 26);
	assert_true(r.tombstone);
	assert_true(r.noreply);
	assert_int_equal(parse("xset k 5 1 2 T\r\nhi\r\n", &r), 16);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(parse("xset k 18446744073709551616 1 0\r\n\r\n", &r), 33);
	assert_int_equal(r.cmd, PROTO_ERROR);
}

static void test_long_line(void **state)
{
	static char buf[PROTO_LINE_MAX + 10];
	struct proto_req r;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	assert_int_equal(proto_parse(buf, PROTO_LINE_MAX - 1, &r), 0);
	assert_int_equal(proto_parse(buf, PROTO_LINE_MAX, &r), -1);
	assert_int_equal(proto_parse(buf, sizeof(buf), &r), -1);
	uint8_t nib[4];
	assert_int_equal(proto_tree_path("0af9", 4, nib, 4), 4);
	assert_int_equal(nib[1], 10);
	assert_int_equal(nib[3], 9);
	assert_int_equal(proto_tree_path("", 0, nib, 4), 0);
	assert_int_equal(proto_tree_path("0A", 2, nib, 4), -EINVAL);
	assert_int_equal(proto_tree_path("01234", 5, nib, 4), -EINVAL);
	assert_true(proto_key_ok("k", 1));
	assert_false(proto_key_ok("a b", 3));
	assert_false(proto_key_ok("a\x01", 2));
	assert_false(proto_key_ok("", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_retrieval_and_others),
		cmocka_unit_test(test_xset),
		cmocka_unit_test(test_long_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
