/*
 * locate - where a key is kept: each of its N replicas (placement.c) asked
 * for its own record without the value (`get ?KEY`, a local stat that is
 * never forwarded), so a tool can tell which nodes hold a copy without
 * moving any bytes. What `user.caskfs.replicas` shows (docs/USAGE.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_i.h"

struct stat_call {
	const void *key;
	size_t klen;
};

/* `get ?KEY` on conn: 1 the node holds a live value, 0 it does not. */
static int stat_call(void *arg, struct peer *p, struct mc_conn *conn, bool *answered)
{
	struct stat_call *s = arg;
	char cmd[8 + STORE_KEY_MAX];
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	(void)p;
	snprintf(cmd, sizeof(cmd), "get ?%.*s", (int)s->klen, (const char *)s->key);
	rc = mc_fetch(conn, cmd, &val, &vlen);
	if (rc == 0 || rc == -ENOENT || rc == -EIO)
		*answered = true;
	if (rc == 0)
		rc = vlen >= 4 && memcmp((char *)val + vlen - 4, "live", 4) == 0 ? 1 : 0;
	else if (rc == -ENOENT)
		rc = 0;
	free(val);
	return rc;
}

int cluster_locate(struct cluster *c, const void *key, size_t klen, cluster_locate_fn fn,
		   void *arg)
{
	int reps[CLUSTER_MAX_NODES];
	struct store_meta m;

	if (klen == 0 || klen > STORE_KEY_MAX)
		return -EINVAL;
	cluster_placement(c, key, klen, reps);
	for (int k = 0; k < c->n; k++) {
		struct peer *p = &c->peers[reps[k]];
		struct stat_call s = { key, klen };
		int state;

		if (p->self)
			state = store_stat(c->local, key, klen, &m) == 0 ? 1 : 0;
		else if (cluster_peer_is_down(p))
			state = -EHOSTDOWN;
		else
			state = cluster_peer_call(c, p, stat_call, &s);
		fn(arg, c->nnodes == 1 ? "local" : p->addr, p->self, state);
	}
	return 0;
}
