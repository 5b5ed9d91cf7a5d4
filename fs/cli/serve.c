/*
 * serve - `caskfs serve DATA_DIR`: a node without a mount. It holds objects
 * for the cluster (no namespace: that lives with the mounts) and runs until
 * SIGINT or SIGTERM, taken with sigwait() in this thread so that the
 * server's threads never see them. Usage: docs/USAGE.md ("caskfs serve").
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli_i.h"
#include "fs/repl/repl_i.h"

int cli_serve(const struct serve_args *a)
{
	struct store_options so = a->store;
	struct store *s;
	struct node node;
	sigset_t set;
	int sig, rc, status;

	/* the threads started below inherit the mask: only sigwait() sees these */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (log_setup("caskfs-serve", a->node.syslog, a->node.log_level ? a->node.log_level : 6) < 0)
		fprintf(stderr, "caskfs serve: cannot set up logging; messages stay on stderr\n");
	node_pick_id(&a->node, &so);
	node_wait_shutdown(a->data_dir);
	rc = store_open(a->data_dir, &so, &s);
	if (rc < 0) {
		if (rc != -EBUSY)
			fprintf(stderr, "caskfs serve: cannot open %s: %s\n", a->data_dir,
				strerror(-rc));
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	status = node_start(s, a->data_dir, &a->node, "caskfs serve", NULL, NULL, NULL, &node);
	if (status != 0) {
		store_close(s);
		return status;
	}
	/* anti-entropy over the buckets this node owns, and the rebalancer */
	struct fs_ae *ae = NULL;
	if ((rc = fs_ae_start(s, NULL, &node, &a->node, &ae)) < 0) {
		fprintf(stderr, "caskfs serve: cannot start anti-entropy: %s\n", strerror(-rc));
		node_stop(&node);
		store_close(s);
		return CLI_IO;
	}
	fprintf(stderr, "caskfs serve: %s ready (sync %s)\n", a->data_dir,
		store_sync_mode_name(so.sync));
	do
		rc = sigwait(&set, &sig);
	while (rc == 0 && sig == SIGHUP);
	fprintf(stderr, "caskfs serve: %s, stopping\n", strsignal(sig));
	fs_ae_stop(ae);
	node_stop(&node);
	rc = store_close(s);
	if (rc < 0) {
		fprintf(stderr, "caskfs serve: cannot make %s durable: %s\n", a->data_dir,
			strerror(-rc));
		return CLI_IO;
	}
	return CLI_OK;
}
