/*
 * test_proto - the node protocol's request parser (store/node/proto.c): every
 * command's shape (the classic ones, the meta commands, the extensions),
 * partial input, data blocks and their terminators, the refusals that skip
 * a value, the error line each malformed variant gets, and the line that is
 * too long.
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
	/* a readable length: the value is skipped whatever else is wrong */
	assert_int_equal(parse("cas k 0 0 3 x\r\n", &r), 15);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 5);
	assert_int_equal(parse("append k 4294967296 0 3\r\n", &r), 25);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_string_equal(r.error, "CLIENT_ERROR bad command line format");
	assert_int_equal(parse("set k 0 1x 3\r\n", &r), 14);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(parse("set k 0 0 3 norepl\r\n", &r), 20);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(parse("cas k 0 0 1\r\n", &r), 13); /* no CAS */
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(parse("set k x 0 1\r\n", &r), 13);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 3);
	/* a bad key with a readable length: the value is skipped too */
	char line[400];
	snprintf(line, sizeof(line), "set %0251d 0 0 2\r\n", 0);
	assert_int_equal(parse(line, &r), (long)strlen(line));
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 4);
	const char *bad[] = { "set k 0 0\r\n",
			      "set k 0 0 -1\r\n",
			      "set k 0 0 99999999999999999999999\r\n",
			      "delete\r\n",
			      "delete k 5\r\n",
			      "xset k 1 2\r\n",
			      "get\r\n",
			      "\r\n",
			      "nonsense\r\n",
			      "incr k\r\n",
			      "version x\r\n",
			      "verbosity\r\n",
			      "set k 0 0 -1 5\r\n" };
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

static void test_new_storage(void **state)
{
	struct proto_req r;

	(void)state;
	const char *cas = "cas k 4294967295 -1 2 18446744073709551615 noreply\r\nhi\r\n";
	assert_int_equal(parse(cas, &r), (long)strlen(cas));
	assert_int_equal(r.cmd, PROTO_CAS);
	assert_true(r.has_cas);
	assert_true(r.cas == UINT64_MAX);
	assert_true(r.flags == UINT32_MAX);
	assert_int_equal(r.exptime, -1);
	assert_true(r.noreply);
	assert_int_equal(r.data_len, 2);
	assert_int_equal(parse("cas k 0 0 0 0\r\n\r\n", &r), 17);
	assert_true(r.has_cas);
	assert_true(r.cas == 0);
	assert_int_equal(parse("append k 0 0 1\r\nx\r\n", &r), 19);
	assert_int_equal(r.cmd, PROTO_APPEND);
	assert_int_equal(parse("prepend k 0 2592001 1\r\nx\r\n", &r), 26);
	assert_int_equal(r.cmd, PROTO_PREPEND);
	assert_int_equal(r.exptime, 2592001);
	/* 2^62 at most, either way */
	assert_int_equal(parse("set k 0 -4611686018427387905 0\r\n\r\n", &r), 32);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(parse("set k 0 --1 0\r\n\r\n", &r), 15);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
}

/* A line that parses to an error with this reply and consumes all of it. */
static void expect_error(const char *line, const char *reply)
{
	struct proto_req r;

	assert_int_equal(parse(line, &r), (long)strlen(line));
	assert_int_equal(r.cmd, PROTO_ERROR);
	assert_string_equal(r.error, reply);
}

static void test_keyed(void **state)
{
	struct proto_req r;
	const char *k;
	size_t kl, pos = 0;

	(void)state;
	assert_int_equal(parse("incr k 18446744073709551615\r\n", &r), 29);
	assert_int_equal(r.cmd, PROTO_INCR);
	assert_true(r.delta == UINT64_MAX);
	assert_int_equal(parse("decr k 0 noreply\r\n", &r), 18);
	assert_int_equal(r.cmd, PROTO_DECR);
	assert_true(r.noreply);
	assert_int_equal(parse("touch k -5\r\n", &r), 12);
	assert_int_equal(r.cmd, PROTO_TOUCH);
	assert_int_equal(r.exptime, -5);
	assert_int_equal(parse("gats 10 a bb\r\n", &r), 14);
	assert_int_equal(r.cmd, PROTO_GATS);
	assert_int_equal(r.exptime, 10);
	assert_true(proto_token(r.args, r.args_len, &pos, &k, &kl) && kl == 1 && k[0] == 'a');
	assert_true(proto_token(r.args, r.args_len, &pos, &k, &kl) && kl == 2);
	assert_false(proto_token(r.args, r.args_len, &pos, &k, &kl));
	assert_int_equal(parse("flush_all\r\n", &r), 11);
	assert_int_equal(r.cmd, PROTO_FLUSH_ALL);
	assert_int_equal(parse("flush_all 0 noreply\r\n", &r), 21);
	assert_int_equal(r.cmd, PROTO_FLUSH_ALL);
	assert_true(r.noreply);
	assert_int_equal(parse("flush_all noreply\r\n", &r), 19);
	assert_true(r.noreply);

	expect_error("incr k -1\r\n", "CLIENT_ERROR invalid numeric delta argument");
	expect_error("incr k 18446744073709551616\r\n",
		     "CLIENT_ERROR invalid numeric delta argument");
	expect_error("incr k 1x\r\n", "CLIENT_ERROR invalid numeric delta argument");
	expect_error("incr\r\n", "ERROR");
	expect_error("decr k 1 2\r\n", "ERROR");
	expect_error("incr k\x01 1\r\n", "CLIENT_ERROR bad command line format");
	expect_error("touch k\r\n", "ERROR");
	expect_error("touch k x\r\n", "CLIENT_ERROR invalid exptime argument");
	expect_error("touch k 1 2\r\n", "ERROR");
	expect_error("gat\r\n", "ERROR");
	expect_error("gat 10\r\n", "ERROR");
	expect_error("gat x k\r\n", "CLIENT_ERROR invalid exptime argument");
	expect_error("gats 1 k k\x7f\r\n", "CLIENT_ERROR bad command line format");
	expect_error("flush_all x\r\n", "CLIENT_ERROR invalid exptime argument");
	expect_error("flush_all 1 2\r\n", "ERROR");
}

static void test_meta(void **state)
{
	struct proto_req r;

	(void)state;
	assert_int_equal(parse("mg key v f t c k s O123 q T-1 u\r\n", &r), 33);
	assert_int_equal(r.cmd, PROTO_MG);
	assert_memory_equal(r.key, "key", 3);
	assert_true(r.meta.value && r.meta.quiet && r.meta.has_ttl);
	assert_int_equal(r.meta.ttl, -1);
	assert_int_equal(r.meta.nret, 6);
	assert_memory_equal(r.meta.ret, "ftcksO", 6);
	assert_int_equal(r.meta.opaque_len, 3);
	assert_memory_equal(r.meta.opaque, "123", 3);
	assert_int_equal(parse("mg k\r\n", &r), 6);
	assert_int_equal(r.cmd, PROTO_MG);
	assert_int_equal(r.meta.nret, 0);
	assert_int_equal(parse("mn\r\n", &r), 4);
	assert_int_equal(r.cmd, PROTO_MN);
	assert_int_equal(parse("ms k 2 F4294967295 T60 C9 MA c k O1 q\r\nhi\r\n", &r), 43);
	assert_int_equal(r.cmd, PROTO_MS);
	assert_true(r.meta.has_flags && r.meta.flags == UINT32_MAX);
	assert_int_equal(r.meta.ttl, 60);
	assert_true(r.meta.has_cas && r.meta.cas == 9);
	assert_int_equal(r.meta.mode, 'A');
	assert_memory_equal(r.meta.ret, "ckO", 3);
	assert_int_equal(r.data_len, 2);
	assert_int_equal(parse("ms k 0\r\n\r\n", &r), 10);
	assert_int_equal(r.meta.mode, 'S');
	assert_int_equal(parse("ms k 1 Me\r\nx\r\n", &r), 14);
	assert_int_equal(r.meta.mode, 'E');
	/* every proper prefix of a meta set asks for more */
	const char *ms = "ms k 2 T1\r\nhi\r\n";
	for (size_t n = 0; n < strlen(ms); n++)
		assert_int_equal(proto_parse(ms, n, &r), 0);
	assert_int_equal(parse("md k C5 q k O7\r\n", &r), 16);
	assert_int_equal(r.cmd, PROTO_MD);
	assert_true(r.meta.has_cas && r.meta.quiet);

	expect_error("mg\r\n", "ERROR");
	expect_error("md\r\n", "ERROR");
	expect_error("ms\r\n", "ERROR");
	expect_error("ms k\r\n", "CLIENT_ERROR bad command line format");
	expect_error("ms k x\r\n", "CLIENT_ERROR bad command line format");
	expect_error("ms k -1\r\n", "CLIENT_ERROR bad command line format");
	expect_error("mg k v v\r\n", "CLIENT_ERROR duplicate flag");
	expect_error("mg k zz\r\n", "CLIENT_ERROR invalid flag");
	expect_error("mg k b\r\n", "CLIENT_ERROR unsupported flag");
	expect_error("mg k N30\r\n", "CLIENT_ERROR unsupported flag");
	expect_error("mg k Tx\r\n", "CLIENT_ERROR bad token in command line format");
	expect_error("mg k T\r\n", "CLIENT_ERROR bad token in command line format");
	expect_error("mg k O123456789012345678901234567890123\r\n",
		     "CLIENT_ERROR opaque token too long");
	expect_error("mg k C1\r\n", "CLIENT_ERROR invalid flag");
	expect_error("md k Cx\r\n", "CLIENT_ERROR bad token in command line format");
	expect_error("md k I\r\n", "CLIENT_ERROR unsupported flag");
	expect_error("mg k\x01\r\n", "CLIENT_ERROR bad command line format");
	expect_error("mg k \x80\r\n", "CLIENT_ERROR invalid flag");
	expect_error("mg k v v v v v v v v v v v v v v v v v v v v v v v v v\r\n",
		     "CLIENT_ERROR duplicate flag");
	/* a meta set whose length is readable skips its value when refused */
	assert_int_equal(parse("ms k 2 MX\r\nhi\r\n", &r), 11);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_string_equal(r.error, "CLIENT_ERROR invalid mode for ms M token");
	assert_int_equal(r.swallow, 4);
	assert_int_equal(parse("ms k 2 F-1\r\nhi\r\n", &r), 12);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(parse("ms k 2 I\r\nhi\r\n", &r), 10);
	assert_string_equal(r.error, "CLIENT_ERROR unsupported flag");
	assert_int_equal(parse("ms k 99999999999\r\n", &r), 18);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_string_equal(r.error, "SERVER_ERROR object too large for cache");
	char bad_key[300];
	snprintf(bad_key, sizeof(bad_key), "ms %0251d 1\r\n", 0);
	assert_int_equal(parse(bad_key, &r), (long)strlen(bad_key));
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	assert_int_equal(r.swallow, 3);
}

static void test_extensions_with_attributes(void **state)
{
	struct proto_req r;

	(void)state;
	assert_int_equal(parse("xset k 5 1 2 F4294967295 E1700000000 noreply\r\nhi\r\n", &r), 50);
	assert_int_equal(r.cmd, PROTO_XSET);
	assert_true(r.flags == UINT32_MAX);
	assert_int_equal(r.expires, 1700000000);
	assert_true(r.noreply);
	assert_int_equal(parse("xset k 5 1 0 T F1\r\n\r\n", &r), 19);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	expect_error("xset k 5 1 0 F1 F2\r\n", "CLIENT_ERROR bad command line format");
	expect_error("xset k 5 1 0 E4294967296\r\n", "CLIENT_ERROR bad command line format");
	expect_error("xset k 5 1 0 Fx\r\n", "CLIENT_ERROR bad command line format");
	assert_int_equal(parse("xop append k - 0 7 0 2\r\nhi\r\n", &r), 28);
	assert_int_equal(r.cmd, PROTO_XOP);
	assert_false(r.has_cas);
	assert_int_equal(r.mode_len, 6);
	assert_int_equal(r.flags, 7);
	assert_int_equal(parse("xop set k 12 0 0 99 0\r\n\r\n", &r), 25);
	assert_true(r.has_cas && r.cas == 12);
	assert_int_equal(r.expires, 99);
	assert_int_equal(parse("xop set k x 0 0 0 1\r\nx\r\n", &r), 21);
	assert_int_equal(r.cmd, PROTO_SWALLOW);
	expect_error("xop set k 0 0 0 0\r\n", "CLIENT_ERROR bad command line format");
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
		cmocka_unit_test(test_new_storage),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_extensions_with_attributes),
		cmocka_unit_test(test_long_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
