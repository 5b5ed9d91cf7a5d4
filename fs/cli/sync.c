/*
 * sync - `caskfs sync A B`: the tree walk of fs/repl between two replicas,
 * each a node's HOST:PORT or a DATA_DIR, over the objects and then the
 * namespace records, with the exit status of docs/USAGE.md ("caskfs sync").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli_i.h"
#include "fs/repl/repl_i.h"

static struct fs_sync_plan the_plan;

/* Restricts the objects' walk to the buckets both sides own (their cluster
 * map says which), and says so. A CLI exit status. */
static int plan(struct fs_sync_ep *ea, struct fs_sync_ep *eb, const struct sync_args *a)
{
	int rc = fs_sync_plan(ea, eb, CLUSTER_SET_SHARED, &the_plan);

	if (rc == -ESTALE) {
		fprintf(stderr,
			"caskfs sync: %s and %s are taking a new cluster map; try again "
			"in a moment\n",
			a->a, a->b);
		return CLI_IO;
	}
	if (rc == -ENOENT) {
		fprintf(stderr, "caskfs sync: %s or %s is not in the cluster map\n", a->a, a->b);
		return CLI_USAGE;
	}
	if (rc == -EINVAL)
		return CLI_USAGE; /* said: the two place with different N */
	if (rc < 0) {
		fprintf(stderr, "caskfs sync: cannot learn the cluster map: %s\n", strerror(-rc));
		return CLI_IO;
	}
	if (the_plan.restricted)
		printf("data: over the %u of %u buckets both own (cluster map epoch %llu)\n",
		       the_plan.buckets, CLUSTER_BUCKETS, (unsigned long long)the_plan.epoch);
	return CLI_OK;
}

int cli_sync(const struct sync_args *a)
{
	struct fs_sync_ep ea, eb;
	struct auth_key key;
	char err[512];
	int rc, status = CLI_OK;
	bool do_meta = !a->data_only, do_data = !a->meta_only;

	if (a->secret_file && auth_load(a->secret_file, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs sync: %s\n", err);
		return CLI_USAGE;
	}
	const struct auth_key *k = a->secret_file ? &key : NULL;
	if ((rc = fs_sync_ep_open(&ea, a->a, k, do_meta)) < 0) {
		fs_sync_ep_close(&ea);
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	if ((rc = fs_sync_ep_open(&eb, a->b, k, do_meta)) < 0) {
		fs_sync_ep_close(&ea);
		fs_sync_ep_close(&eb);
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	if (do_meta && ((!ea.conn && !ea.m) || (!eb.conn && !eb.m))) {
		/* a DATA_DIR that never held a namespace (a serve node): data only */
		do_meta = false;
		if (a->meta_only) {
			fprintf(stderr, "caskfs sync: %s holds no namespace\n",
				!ea.conn && !ea.m ? a->a : a->b);
			status = CLI_USAGE;
		}
	}
	struct fs_sync_opts o = { .dry_run = a->dry_run, .verbose = a->verbose };
	for (int pass = 0; pass < 2 && status == CLI_OK; pass++) {
		bool meta = pass == 1;
		if ((meta && !do_meta) || (!meta && !do_data))
			continue;
		if (!meta && (rc = plan(&ea, &eb, a)) != CLI_OK) {
			status = rc;
			break;
		}
		rc = fs_sync_run(&ea, &eb, meta ? FS_SYNC_META : FS_SYNC_DATA, &o, NULL);
		ea.set = eb.set = NULL;
		ea.query[0] = eb.query[0] = 0;
		if (rc == -EPROTO && meta && !a->meta_only) {
			/* a node without a mount answers no namespace queries */
			printf("meta: skipped: a node without a namespace (caskfs serve)\n");
			continue;
		}
		if (rc < 0) {
			fprintf(stderr, "caskfs sync: %s: %s\n", meta ? "meta" : "data",
				rc == -EPROTO
				    ? "the node does not answer the tree queries (no namespace?)"
				    : strerror(-rc));
			status = CLI_IO;
		} else if (rc > 0) {
			status = CLI_MISSING;
		}
	}
	fs_sync_plan_free(&the_plan);
	fs_sync_ep_close(&ea);
	fs_sync_ep_close(&eb);
	return status;
}
