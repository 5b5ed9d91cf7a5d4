/*
 * test_cluster - the quorum client and the server in one process: three
 * stores, each with its cluster client and server on a loopback port. Checks
 * placement on N replicas, quorum failure, hinted handoff after a replica
 * returns, read repair, flags on every replica, decided operations (cas,
 * add, append, incr from every node at once, a decider that is down), and
 * authentication; run under ASan by `make asan`.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"

#include "store/node/client.h"
#include "store/node/cluster.h"
#include "store/node/server.h"

#define NODES 3

struct node {
	char *dir;
	char addr[32];
	struct store *s;
	struct cluster *c;
	struct server *srv;
};

struct fixture {
	struct node n[NODES];
	struct auth_key key;
	bool with_key;
};

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void start_server(struct fixture *f, int i)
{
	struct server_options so = { .listen = f->n[i].addr, .threads = 2 };

	so.key = f->with_key ? &f->key : NULL;
	assert_int_equal(server_start(f->n[i].s, f->n[i].c, &so, &f->n[i].srv), 0);
}

static void start_node(struct fixture *f, int i)
{
	struct store_options o;
	char peers[128] = "";

	tu_options(&o, NULL);
	o.node_id = (uint32_t)i + 1;
	assert_int_equal(store_open(f->n[i].dir, &o, &f->n[i].s), 0);
	for (int k = 0; k < NODES; k++)
		if (k != i)
			snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers), "%s%s",
				 peers[0] ? "," : "", f->n[k].addr);
	struct cluster_options co = { .self = f->n[i].addr,
				      .peers = peers,
				      .data_dir = f->n[i].dir,
				      .no_background = true,
				      .key = f->with_key ? &f->key : NULL };
	assert_int_equal(cluster_open(f->n[i].s, &co, &f->n[i].c), 0);
	start_server(f, i);
}

static void stop_node(struct fixture *f, int i)
{
	server_stop(f->n[i].srv);
	cluster_close(f->n[i].c);
	store_close(f->n[i].s);
	f->n[i].srv = NULL;
	f->n[i].c = NULL;
	f->n[i].s = NULL;
}

static int setup_common(void **state, bool with_key)
{
	struct fixture *f = calloc(1, sizeof(*f));

	f->with_key = with_key;
	memset(f->key.k, 7, sizeof(f->key.k));
	for (int i = 0; i < NODES; i++) {
		f->n[i].dir = tu_tmpdir();
		snprintf(f->n[i].addr, sizeof(f->n[i].addr), "127.0.0.1:%d", free_port());
	}
	for (int i = 0; i < NODES; i++)
		start_node(f, i);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_common(state, false);
}

static int setup_key(void **state)
{
	return setup_common(state, true);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < NODES; i++) {
		if (f->n[i].s)
			stop_node(f, i);
		tu_rmdir(f->n[i].dir);
	}
	free(f);
	return 0;
}

static bool holds(struct fixture *f, int i, const char *key)
{
	struct store_meta m;
	return store_stat(f->n[i].s, key, strlen(key), &m) == 0;
}

static void test_put_reaches_every_replica(void **state)
{
	struct fixture *f = *state;
	char key[32], val[100];
	void *got;
	size_t n;

	for (int k = 0; k < 50; k++) {
		snprintf(key, sizeof(key), "k%d", k);
		tu_fill(val, sizeof(val), (uint64_t)k);
		assert_int_equal(cluster_put(f->n[k % NODES].c, key, strlen(key), val, (size_t)k),
				 0);
	}
	for (int k = 0; k < 50; k++) {
		snprintf(key, sizeof(key), "k%d", k);
		tu_fill(val, sizeof(val), (uint64_t)k);
		for (int i = 0; i < NODES; i++) {
			assert_true(holds(f, i, key));
			assert_true(cluster_is_replica(f->n[i].c, key, strlen(key)));
			assert_int_equal(cluster_get(f->n[i].c, key, strlen(key), &got, &n, NULL),
					 0);
			assert_int_equal(n, (size_t)k);
			assert_memory_equal(got, val, n);
			free(got);
		}
	}
	assert_int_equal(cluster_delete(f->n[1].c, "k3", 2), 0);
	assert_int_equal(cluster_delete(f->n[1].c, "k3", 2), -ENOENT);
	for (int i = 0; i < NODES; i++)
		assert_false(holds(f, i, "k3"));
}

static void test_quorum_and_handoff(void **state)
{
	struct fixture *f = *state;
	struct cluster_stats st;

	/* one replica down: W=2 still met, a hint is kept for it */
	server_stop(f->n[2].srv);
	f->n[2].srv = NULL;
	assert_int_equal(cluster_put(f->n[0].c, "a", 1, "one", 3), 0);
	cluster_stats(f->n[0].c, &st);
	assert_int_equal(st.hints_pending, 1);
	assert_false(holds(f, 2, "a"));
	/* two down: the put fails, hints for both */
	server_stop(f->n[1].srv);
	f->n[1].srv = NULL;
	assert_int_equal(cluster_put(f->n[0].c, "b", 1, "two", 3), -EIO);
	cluster_stats(f->n[0].c, &st);
	assert_int_equal(st.hints_pending, 3);
	assert_int_equal(st.put_failures, 1);
	/* reads of what this node holds still work */
	void *got;
	size_t n;
	assert_int_equal(cluster_get(f->n[0].c, "a", 1, &got, &n, NULL), 0);
	free(got);
	/* they come back; a handoff round delivers every hint (after the down
	 * period of the failed peers) */
	start_server(f, 1);
	start_server(f, 2);
	int delivered = 0;
	for (int round = 0; round < 40 && delivered < 3; round++) {
		int rc = cluster_handoff(f->n[0].c);
		if (rc > 0)
			delivered += rc;
		usleep(100000);
	}
	assert_int_equal(delivered, 3);
	cluster_stats(f->n[0].c, &st);
	assert_int_equal(st.hints_pending, 0);
	for (int i = 0; i < NODES; i++) {
		assert_true(holds(f, i, "a"));
		assert_true(holds(f, i, "b"));
	}
}

static void test_read_repair(void **state)
{
	struct fixture *f = *state;
	struct store_version v = { 12345, 9 };
	void *got;
	size_t n;

	/* a copy on nodes 0 and 1 only, behind the cluster's back */
	assert_int_equal(store_apply(f->n[0].s, "r", 1, "val", 3, &v, false), 0);
	assert_int_equal(store_apply(f->n[1].s, "r", 1, "val", 3, &v, false), 0);
	assert_int_equal(cluster_get(f->n[2].c, "r", 1, &got, &n, NULL), 0);
	assert_memory_equal(got, "val", 3);
	free(got);
	assert_true(holds(f, 2, "r"));
	struct cluster_stats st;
	cluster_stats(f->n[2].c, &st);
	assert_int_equal(st.read_repairs, 1);
}

static struct cluster_result decide(struct cluster *c, const char *key, enum cluster_mode mode,
				    const char *val, bool has_cas, uint64_t cas)
{
	struct cluster_op op = { .mode = mode,
				 .val = val,
				 .vlen = val ? strlen(val) : 0,
				 .has_cas = has_cas,
				 .cas = cas,
				 .delta = 5,
				 .attr = { 77, 0 } };
	struct cluster_result res;

	assert_int_equal(cluster_decide(c, key, strlen(key), &op, &res), 0);
	return res;
}

static void expect_everywhere(struct fixture *f, const char *key, const char *val, uint32_t flags)
{
	for (int i = 0; i < NODES; i++) {
		struct store_meta m;
		void *got;
		size_t n;
		assert_int_equal(store_get(f->n[i].s, key, strlen(key), &got, &n, &m), 0);
		assert_int_equal(n, strlen(val));
		assert_memory_equal(got, val, n);
		assert_int_equal(m.attr.flags, flags);
		free(got);
	}
}

static void test_decided(void **state)
{
	struct fixture *f = *state;
	struct store_attr top = { UINT32_MAX, 0 };
	struct cluster_result r;

	/* flags go to every replica */
	assert_int_equal(cluster_put_attr(f->n[0].c, "fl", 2, "v", 1, &top, NULL), 0);
	expect_everywhere(f, "fl", "v", UINT32_MAX);

	r = decide(f->n[0].c, "d", CLUSTER_ADD, "first", false, 0);
	assert_int_equal(r.status, CLUSTER_DONE);
	uint64_t cas = r.meta.version.stamp;
	r = decide(f->n[1].c, "d", CLUSTER_ADD, "second", false, 0);
	assert_int_equal(r.status, CLUSTER_NOT_STORED);
	r = decide(f->n[2].c, "d", CLUSTER_SET, "third", true, cas + 1);
	assert_int_equal(r.status, CLUSTER_EXISTS);
	r = decide(f->n[2].c, "d", CLUSTER_SET, "third", true, cas);
	assert_int_equal(r.status, CLUSTER_DONE);
	assert_true(r.meta.version.stamp > cas);
	r = decide(f->n[1].c, "d", CLUSTER_SET, "fourth", true, cas);
	assert_int_equal(r.status, CLUSTER_EXISTS);
	r = decide(f->n[1].c, "nothere", CLUSTER_SET, "x", true, cas);
	assert_int_equal(r.status, CLUSTER_NOT_FOUND);
	r = decide(f->n[0].c, "d", CLUSTER_APPEND, "+a", false, 0);
	assert_int_equal(r.status, CLUSTER_DONE);
	r = decide(f->n[1].c, "d", CLUSTER_PREPEND, "p+", false, 0);
	expect_everywhere(f, "d", "p+third+a", 77);
	r = decide(f->n[2].c, "d", CLUSTER_INCR, NULL, false, 0);
	assert_int_equal(r.status, CLUSTER_NOT_NUMERIC);
	r = decide(f->n[2].c, "none", CLUSTER_APPEND, "x", false, 0);
	assert_int_equal(r.status, CLUSTER_NOT_STORED);
	r = decide(f->n[2].c, "none", CLUSTER_INCR, NULL, false, 0);
	assert_int_equal(r.status, CLUSTER_NOT_FOUND);
	r = decide(f->n[0].c, "d", CLUSTER_DELETE, NULL, true, 1);
	assert_int_equal(r.status, CLUSTER_EXISTS);
	r = decide(f->n[2].c, "d", CLUSTER_GAT, NULL, false, 0);
	assert_int_equal(r.status, CLUSTER_DONE);
	assert_int_equal(r.vlen, 9);
	assert_memory_equal(r.val, "p+third+a", 9);
	free(r.val);
	r = decide(f->n[0].c, "d", CLUSTER_DELETE, NULL, true, r.meta.version.stamp);
	assert_int_equal(r.status, CLUSTER_DONE);
	for (int i = 0; i < NODES; i++)
		assert_false(holds(f, i, "d"));
	struct cluster_stats st;
	uint64_t forwarded = 0;
	for (int i = 0; i < NODES; i++) {
		cluster_stats(f->n[i].c, &st);
		forwarded += st.forwarded;
	}
	assert_true(forwarded > 0);
}

struct incr_arg {
	struct cluster *c;
	int n;
};

static void *incr_loop(void *arg)
{
	struct incr_arg *a = arg;
	struct cluster_op op = { .mode = CLUSTER_INCR, .delta = 1 };
	struct cluster_result res;

	for (int i = 0; i < a->n; i++)
		if (cluster_decide(a->c, "counter", 7, &op, &res) != 0 ||
		    res.status != CLUSTER_DONE)
			return (void *)1;
	return NULL;
}

/* Increments from every node at once: none is lost. Then the decider dies:
 * the next replica decides. */
static void test_decided_races(void **state)
{
	struct fixture *f = *state;
	pthread_t t[NODES * 2];
	struct incr_arg a[NODES * 2];
	void *got;
	size_t n;

	assert_int_equal(cluster_put(f->n[0].c, "counter", 7, "0", 1), 0);
	for (int i = 0; i < NODES * 2; i++) {
		a[i] = (struct incr_arg){ f->n[i % NODES].c, 40 };
		assert_int_equal(pthread_create(&t[i], NULL, incr_loop, &a[i]), 0);
	}
	for (int i = 0; i < NODES * 2; i++) {
		void *rv;
		pthread_join(t[i], &rv);
		assert_null(rv);
	}
	expect_everywhere(f, "counter", "240", 0);

	/* stop the node that decides "counter" (the first that does not forward) */
	int decider = -1;
	for (int i = 0; i < NODES && decider < 0; i++) {
		struct cluster_stats before, after;
		struct cluster_result r;
		cluster_stats(f->n[i].c, &before);
		r = decide(f->n[i].c, "counter", CLUSTER_INCR, NULL, false, 0);
		assert_int_equal(r.status, CLUSTER_DONE);
		cluster_stats(f->n[i].c, &after);
		if (after.forwarded == before.forwarded)
			decider = i;
	}
	assert_true(decider >= 0);
	server_stop(f->n[decider].srv);
	f->n[decider].srv = NULL;
	int other = (decider + 1) % NODES;
	struct cluster_result r = decide(f->n[other].c, "counter", CLUSTER_INCR, NULL, false, 0);
	assert_int_equal(r.status, CLUSTER_DONE);
	r = decide(f->n[other].c, "counter", CLUSTER_INCR, NULL, false, 0);
	assert_int_equal(r.status, CLUSTER_DONE);
	assert_true(r.number == (uint64_t)(240 + 5 * (decider + 1) + 10));
	assert_int_equal(cluster_get(f->n[other].c, "counter", 7, &got, &n, NULL), 0);
	free(got);
}

static void test_authenticated(void **state)
{
	struct fixture *f = *state;
	struct mc_conn *conn;
	struct auth_key wrong;

	assert_int_equal(cluster_put(f->n[0].c, "s", 1, "secret", 6), 0);
	for (int i = 0; i < NODES; i++)
		assert_true(holds(f, i, "s"));
	memset(wrong.k, 8, sizeof(wrong.k));
	assert_int_equal(mc_connect(f->n[1].addr, &wrong, 500, 500, &conn), -EACCES);
	assert_int_equal(mc_connect(f->n[1].addr, &f->key, 500, 500, &conn), 0);
	void *val;
	size_t n;
	assert_int_equal(mc_get(conn, "s", &val, &n), 0);
	assert_memory_equal(val, "secret", 6);
	free(val);
	mc_close(conn);
	/* without authenticating, only version works */
	assert_int_equal(mc_connect(f->n[1].addr, NULL, 500, 500, &conn), 0);
	assert_int_equal(mc_get(conn, "s", &val, &n), -EPROTO);
	mc_close(conn);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_reaches_every_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_and_handoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_repair, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decided, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decided_races, setup, teardown),
		cmocka_unit_test_setup_teardown(test_authenticated, setup_key, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
