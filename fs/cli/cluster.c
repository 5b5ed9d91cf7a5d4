/*
 * cluster - `caskfs cluster show|add|remove NODE [HOST:PORT]`: the cluster
 * map as an operator sees and changes it. NODE is any member, by HOST:PORT
 * or by the DATA_DIR of a running node (its control socket). A change is
 * made here on the map NODE holds (cmap.h), in a new epoch, and offered to
 * NODE, which passes it on to every node; then the command waits until the
 * buckets that moved are held by their new owners and the old copies are
 * gone, with a progress bar on a terminal. No node restarts.
 * Usage: docs/USAGE.md ("caskfs cluster"); how it works: docs/REPLICATION.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli_i.h"
#include "store/node/client.h"
#include "store/node/cmap.h"

#define POLL_MS 300

struct ctx {
	const struct cluster_args *a;
	struct auth_key key;
	const struct auth_key *k;
};

/* The address to reach target at: HOST:PORT, or a running DATA_DIR's
 * control socket. false (said) when target is neither. */
static bool resolve(const char *target, char *out, size_t cap)
{
	struct stat st;

	if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
		if (node_control_addr(target, out, cap))
			return true;
		fprintf(stderr, "caskfs cluster: no node runs on %s\n", target);
		return false;
	}
	if (!strchr(target, ':')) {
		fprintf(stderr, "caskfs cluster: %s is neither a DATA_DIR nor HOST:PORT\n", target);
		return false;
	}
	snprintf(out, cap, "%s", target);
	return true;
}

/* One map exchange with addr (push may be NULL). 0 or -errno, said unless quiet. */
static int ask(struct ctx *x, const char *addr, const struct cmap *push, struct cmap *m,
	       struct cmap_peer_info *info, bool quiet)
{
	struct mc_conn *conn;
	int rc = mc_connect(addr, x->k, 1000, 10000, &conn);

	if (rc == 0)
		rc = cmap_exchange(conn, push, m, info);
	mc_close(conn);
	if (rc < 0 && !quiet)
		fprintf(stderr, "caskfs cluster: %s: %s\n", addr,
			rc == -EACCES  ? "authentication failed"
			: rc == -EXDEV ? "it belongs to another cluster"
			: rc == -EIO   ? "it does not answer xmap (an older caskfs?)"
				       : strerror(-rc));
	return rc;
}

/* Numbers from a node's stats. */
struct node_nums {
	uint64_t clean_epoch, bytes_in, bytes_out, to_drop;
};

static int nums_line(void *arg, const char *line, size_t len)
{
	struct node_nums *n = arg;
	char name[64];
	uint64_t v;

	(void)len;
	if (sscanf(line, "STAT %63s %" SCNu64, name, &v) != 2)
		return 0;
	if (strcmp(name, "caskfs_rebalance_clean_epoch") == 0)
		n->clean_epoch = v;
	else if (strcmp(name, "caskfs_rebalance_bytes_in") == 0)
		n->bytes_in = v;
	else if (strcmp(name, "caskfs_rebalance_bytes_out") == 0)
		n->bytes_out = v;
	else if (strcmp(name, "caskfs_rebalance_to_drop") == 0)
		n->to_drop = v;
	return 0;
}

static int nums(struct ctx *x, const char *addr, struct node_nums *n)
{
	struct mc_conn *conn;
	int rc = mc_connect(addr, x->k, 1000, 10000, &conn);

	memset(n, 0, sizeof(*n));
	if (rc == 0)
		rc = mc_lines(conn, "stats", nums_line, n);
	mc_close(conn);
	return rc;
}

static const char *state_name(uint8_t flags)
{
	return flags == CMAP_FLAGS ? "member" : flags & CMAP_MEMBER ? "joining" : "leaving";
}

static int show(struct ctx *x, const char *addr)
{
	struct cmap *m = malloc(sizeof(*m)), *their = malloc(sizeof(*their));
	struct cmap_peer_info info, pi;
	int status = CLI_IO;

	if (!m || !their || ask(x, addr, NULL, m, &info, false) < 0)
		goto out;
	printf("cluster map epoch %" PRIu64 "%s, %s, N=%u, cluster id %016" PRIx64 "\n", m->epoch,
	       m->epoch ? ""
			: " (provisional: the nodes named by --peers have not all "
			  "answered yet)",
	       cmap_settled(m) ? "settled" : "buckets moving", info.replicas, m->cluster_id);
	printf("  %-24s %6s  %-8s %s\n", "node", "id", "state", "as it answers");
	for (int i = 0; i < m->count; i++) {
		const struct cmap_node *n = &m->node[i];
		char seen[160];
		if (ask(x, n->addr, NULL, their, &pi, true) == 0)
			snprintf(seen, sizeof(seen),
				 "up, map epoch %" PRIu64 ", holds its buckets of "
				 "epoch %" PRIu64,
				 their->epoch, pi.done_epoch);
		else
			snprintf(seen, sizeof(seen), "does not answer");
		printf("  %-24s %6" PRIu32 "  %-8s %s\n", n->addr, n->id ? n->id : pi.id,
		       state_name(n->flags), seen);
	}
	status = CLI_OK;
out:
	free(m);
	free(their);
	return status;
}

static double now_s(void)
{
	return fs_now_seconds();
}

/*
 * Waits until the change of epoch `changed` is over: every member holds
 * what it gained (a bar of members done), the map is settled past it, and
 * every node that held anything (members, and `gone` if it answers) has let
 * go of what it no longer owns. Asks `via` (or, when it fails, any member).
 */
/* The bytes of objects every node of m moved so far (rebalancing). */
static uint64_t moved(struct ctx *x, const struct cmap *m)
{
	uint64_t sum = 0;

	for (int i = 0; i < m->count; i++) {
		struct node_nums nn;
		if (nums(x, m->node[i].addr, &nn) == 0)
			sum += nn.bytes_in + nn.bytes_out;
	}
	return sum;
}

static int wait_done(struct ctx *x, const char *via, uint64_t changed, const char *gone,
		     const struct cmap *start, uint64_t before)
{
	struct cmap *m = malloc(sizeof(*m)), *their = malloc(sizeof(*their));
	struct cmap_peer_info info, pi;
	struct progress bar;
	double deadline = x->a->timeout_s ? now_s() + x->a->timeout_s : 0;
	uint64_t after = 0;
	int status = CLI_IO, members = cmap_count(start, CMAP_MEMBER);
	bool moving = true;

	if (!m || !their)
		goto out;
	progress_start(&bar, "rebalance", (uint64_t)members);
	for (;;) {
		if (deadline && now_s() > deadline) {
			progress_end(&bar);
			fprintf(stderr,
				"caskfs cluster: not done after %d s; the move goes on in "
				"the background (caskfs status shows it)\n",
				x->a->timeout_s);
			goto out;
		}
		if (ask(x, via, NULL, m, &info, true) < 0) {
			/* via may be the node just removed, gone: ask a member */
			bool asked = false;
			for (int i = 0; i < start->count && !asked; i++)
				if (start->node[i].flags & CMAP_MEMBER)
					asked =
					    ask(x, start->node[i].addr, NULL, m, &info, true) == 0;
			if (!asked) {
				usleep(POLL_MS * 1000);
				continue;
			}
		}
		if (moving) {
			int done = 0;
			for (int i = 0; i < m->count; i++)
				if ((m->node[i].flags & CMAP_MEMBER) &&
				    ask(x, m->node[i].addr, NULL, their, &pi, true) == 0 &&
				    pi.done_epoch >= changed)
					done++;
			progress_step(&bar, (uint64_t)done);
			moving = !(cmap_settled(m) && m->epoch > changed);
		}
		if (!moving) {
			/* settled: wait for the old copies to go */
			bool clean = true;
			after = 0;
			for (int i = 0; i < start->count; i++) {
				struct node_nums nn;
				const char *a = start->node[i].addr;
				bool member = cmap_find(m, a) >= 0;
				if (nums(x, a, &nn) < 0) {
					clean &= !member; /* a member must answer; the removed may
							     be gone */
					continue;
				}
				after += nn.bytes_in + nn.bytes_out;
				clean &= nn.clean_epoch >= m->epoch && nn.to_drop == 0;
			}
			if (gone) {
				struct node_nums nn;
				if (nums(x, gone, &nn) == 0 &&
				    (nn.clean_epoch < m->epoch || nn.to_drop))
					clean = false;
			}
			if (clean)
				break;
		}
		usleep(POLL_MS * 1000);
	}
	progress_end(&bar);
	printf("done: map epoch %" PRIu64 " settled, %" PRIu64 " bytes of objects moved\n",
	       m->epoch, after > before ? after - before : 0);
	status = CLI_OK;
out:
	free(m);
	free(their);
	return status;
}

/* Makes the change on the map node holds and offers it until node took it
 * (another change may have won the same epoch: then again on that map). */
static int change(struct ctx *x, const char *via, bool add, const char *addr, uint32_t id,
		  struct cmap *m, uint64_t *epoch)
{
	struct cmap *got = malloc(sizeof(*got));
	struct cmap_peer_info info;
	int rc = -EIO;

	if (!got)
		return -ENOMEM;
	for (int attempt = 0; attempt < 5; attempt++) {
		if ((rc = ask(x, via, NULL, m, &info, false)) < 0)
			break;
		if (m->epoch == 0) {
			/* the nodes have not agreed on a first map (one of them may be gone
			 * for good, or this is one node growing into a cluster): the
			 * operator's change makes NODE's list the first map */
			if (cmap_count(m, CMAP_MEMBER) > 1 && attempt == 0)
				printf("%s holds a provisional map (not every node its --peers "
				       "name answered); taking its %d nodes as the cluster\n",
				       via, cmap_count(m, CMAP_MEMBER));
			cmap_promote(m);
		}
		rc = add ? cmap_add(m, addr, id, CLUSTER_MAX_NODES) : cmap_remove(m, addr);
		if (rc == -EEXIST || rc == -ENOENT || rc == -EINVAL || rc == -ENOSPC)
			break;
		*epoch = m->epoch;
		if ((rc = ask(x, via, m, got, &info, false)) < 0)
			break;
		int at = cmap_find(got, addr);
		bool member = at >= 0 && (got->node[at].flags & CMAP_MEMBER);
		if (got->epoch >= *epoch && member == add) {
			*m = *got;
			free(got);
			return 0;
		}
	}
	free(got);
	return rc;
}

static int add_node(struct ctx *x, const char *via)
{
	const char *addr = x->a->addr;
	struct cmap *m = malloc(sizeof(*m)), *theirs = malloc(sizeof(*theirs));
	struct cmap_peer_info info, ni;
	uint64_t epoch = 0;
	int status = CLI_IO, rc;

	if (!m || !theirs)
		goto out;
	if (!cmap_addr_ok(addr, strlen(addr))) {
		fprintf(stderr, "caskfs cluster: bad node address '%s' (want HOST:PORT)\n", addr);
		status = CLI_USAGE;
		goto out;
	}
	if (ask(x, via, NULL, m, &info, false) < 0 || ask(x, addr, NULL, theirs, &ni, false) < 0)
		goto out;
	if (strcmp(ni.self, addr) != 0) {
		fprintf(stderr,
			"caskfs cluster: %s answers as '%s': give the address it listens "
			"on (--listen)\n",
			addr, ni.self);
		status = CLI_USAGE;
		goto out;
	}
	if (theirs->epoch > 0 && m->epoch > 0 && theirs->cluster_id != m->cluster_id &&
	    cmap_count(theirs, CMAP_MEMBER) > 1) {
		fprintf(stderr, "caskfs cluster: %s is a member of another cluster\n", addr);
		status = CLI_USAGE;
		goto out;
	}
	for (int i = 0; i < m->count; i++)
		if (m->node[i].id == ni.id && strcmp(m->node[i].addr, addr) != 0) {
			fprintf(stderr,
				"caskfs cluster: node id %u of %s is taken by %s: start it "
				"with another --node-id\n",
				ni.id, addr, m->node[i].addr);
			status = CLI_USAGE;
			goto out;
		}
	uint64_t before = moved(x, m);
	rc = change(x, via, true, addr, ni.id, m, &epoch);
	if (rc == -EEXIST) {
		printf("%s is a member already\n", addr);
		status = CLI_OK;
	} else if (rc == 0) {
		ask(x, addr, m, theirs, &ni, true); /* it learns at once, not at the next gossip */
		printf("added %s: cluster map epoch %" PRIu64 ", %d members\n", addr, m->epoch,
		       cmap_count(m, CMAP_MEMBER));
		status = x->a->no_wait ? CLI_OK : wait_done(x, via, epoch, NULL, m, before);
	}
out:
	free(m);
	free(theirs);
	return status;
}

static int remove_node(struct ctx *x, const char *via)
{
	const char *addr = x->a->addr;
	struct cmap *m = malloc(sizeof(*m)), *theirs = malloc(sizeof(*theirs));
	struct cmap_peer_info ni;
	uint64_t epoch = 0;
	int status = CLI_IO;

	if (!m || !theirs || ask(x, via, NULL, m, &ni, false) < 0)
		goto out;
	uint64_t before = moved(x, m);
	int rc = change(x, via, false, addr, 0, m, &epoch);
	if (rc == -ENOENT) {
		fprintf(stderr, "caskfs cluster: %s is no member\n", addr);
		status = CLI_MISSING;
	} else if (rc == -EINVAL) {
		fprintf(stderr, "caskfs cluster: %s is the last member\n", addr);
		status = CLI_USAGE;
	} else if (rc == 0) {
		/* the node leaving, if it runs, learns it hands its buckets on */
		bool up = ask(x, addr, m, theirs, &ni, true) == 0;
		printf("removing %s%s: cluster map epoch %" PRIu64 ", %d members; its buckets "
		       "go to the others\n",
		       addr, up ? "" : " (it does not answer)", m->epoch,
		       cmap_count(m, CMAP_MEMBER));
		status =
		    x->a->no_wait ? CLI_OK : wait_done(x, via, epoch, up ? addr : NULL, m, before);
		if (status == CLI_OK && !x->a->no_wait && up)
			printf("%s holds nothing the cluster needs; it can be stopped\n", addr);
	}
out:
	free(m);
	free(theirs);
	return status;
}

int cli_cluster(const struct cluster_args *a)
{
	struct ctx x = { .a = a };
	char via[4300], err[512];

	if (a->secret_file) {
		if (auth_load(a->secret_file, &x.key, err, sizeof(err)) < 0) {
			fprintf(stderr, "caskfs cluster: %s\n", err);
			return CLI_USAGE;
		}
		x.k = &x.key;
	}
	if (!resolve(a->node, via, sizeof(via)))
		return CLI_USAGE;
	if (strcmp(a->op, "show") == 0)
		return show(&x, via);
	if (strcmp(a->op, "add") == 0)
		return add_node(&x, via);
	return remove_node(&x, via);
}
