/*
 * sync - hash-tree anti-entropy between two replicas (`caskfs sync A B`, and
 * the mounts' background rounds). Each side is a node (HOST:PORT, over the
 * node protocol) or a DATA_DIR opened here. Two trees are compared from the
 * root down, only into children whose hashes differ; in a leaf bucket the
 * records are matched by key and the newer version of each is copied to the
 * side that lacks it or holds an older one (tombstones included, so a delete
 * is never undone). The same walk serves the store's objects ("data") and the
 * namespace's records ("meta"). Semantics: docs/REPLICATION.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/cli/cli_i.h"
#include "repl_i.h"
#include "store/client.h"

#define TK_MAX (1 + 16 + META_NAME_MAX) /* the sscanf width below is 2 * TK_MAX */

enum kind { DATA, META };

struct sync_ep {
	char name[300];
	struct mc_conn *conn; /* a node */
	struct store *s;      /* a DATA_DIR, or this mount's own */
	struct meta *m;
	const struct fs_repl_sink *sink; /* this mount: records go through fs_repl_apply */
	bool owned;    /* s and m were opened here */
};

struct rec {
	uint8_t key[TK_MAX];
	size_t klen;
	struct store_version v;
	uint64_t hash;
	bool tomb;
};

struct reclist {
	struct rec *r;
	size_t n, cap;
};

struct sync_stats {
	uint64_t differed, a_to_b, b_to_a, bytes, queries;
	uint64_t copy_wire; /* bytes on the wire moving records (the rest is the trees) */
};

struct sync_run {
	struct sync_ep *a, *b;
	struct progress *bar; /* NULL: none */
	bool dry_run, verbose;
	enum kind kind;
	struct sync_stats st;
	int error;
};

/* ---- one side ---- */

static void hexpath(const uint8_t *path, int depth, char *out)
{
	for (int i = 0; i < depth; i++)
		out[i] = "0123456789abcdef"[path[i]];
	out[depth] = 0;
}

static int remote_text(struct sync_ep *e, enum kind k, const uint8_t *path, int depth,
		       char **text, size_t *len)
{
	char cmd[32], hp[8];
	void *val;
	int rc;

	hexpath(path, depth, hp);
	if (k == DATA)
		snprintf(cmd, sizeof(cmd), "get @%s", hp);
	else
		snprintf(cmd, sizeof(cmd), "mtree %s", hp);
	rc = mc_fetch(e->conn, cmd, &val, len);
	if (rc == -ENOENT)
		rc = -EPROTO;
	if (rc == 0) {
		char *t = realloc(val, *len + 1);
		if (!t) {
			free(val);
			return -ENOMEM;
		}
		t[*len] = 0;
		*text = t;
	}
	return rc;
}

static int ep_children(struct sync_ep *e, enum kind k, const uint8_t *path, int depth,
		       struct store_tree_node *self, struct store_tree_node kids[16])
{
	if (!e->conn) {
		if (k == META && !e->m)
			return -ENOENT;
		return k == DATA ? store_tree_children(e->s, path, depth, self, kids)
				 : meta_tree_children(e->m, path, depth, self, kids);
	}
	char *text, *line, *save = NULL;
	size_t len;
	int rc = remote_text(e, k, path, depth, &text, &len), n = 0;

	if (rc < 0)
		return rc;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[8];
		uint64_t h, c;
		if (sscanf(line, "%7s %" SCNx64 " %" SCNu64, name, &h, &c) != 3)
			continue;
		if (strcmp(name, "self") == 0) {
			self->hash = h;
			self->count = c;
		} else if (n < 16) {
			kids[n].hash = h;
			kids[n].count = c;
			n++;
		}
	}
	free(text);
	return n == 16 ? 0 : -EPROTO;
}

static int list_add(struct reclist *l, const uint8_t *key, size_t klen,
		    const struct store_version *v, uint64_t hash, bool tomb)
{
	if (klen == 0 || klen > TK_MAX)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct rec *r = realloc(l->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		l->r = r;
		l->cap = cap;
	}
	struct rec *r = &l->r[l->n++];
	memcpy(r->key, key, klen);
	r->klen = klen;
	r->v = *v;
	r->hash = hash;
	r->tomb = tomb;
	return 0;
}

static int data_rec(void *arg, const void *key, size_t klen, const struct store_meta *m)
{
	return list_add(arg, key, klen, &m->version, m->value_hash, m->tombstone);
}

static int meta_rec(void *arg, const uint8_t *tk, size_t tklen, const struct store_version *v,
		    uint64_t leaf, bool deleted)
{
	return list_add(arg, tk, tklen, v, leaf, deleted);
}

static int ep_bucket(struct sync_ep *e, enum kind k, const uint8_t *path, struct reclist *l)
{
	l->n = 0;
	if (!e->conn)
		return k == DATA ? store_tree_bucket(e->s, path, data_rec, l)
				 : meta_tree_bucket(e->m, path, meta_rec, l);
	char *text, *line, *save = NULL;
	size_t len;
	int rc = remote_text(e, k, path, STORE_TREE_DEPTH, &text, &len);

	if (rc < 0)
		return rc;
	for (line = strtok_r(text, "\n", &save); line && rc == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[2 * TK_MAX + 1], t[2] = "";
		struct store_version v;
		uint64_t h;
		if (sscanf(line, "%544s %" SCNu64 " %" SCNu32 " %" SCNx64 " %1s", key, &v.stamp,
			   &v.node, &h, t) < 4)
			continue;
		if (k == DATA) {
			rc = list_add(l, (const uint8_t *)key, strlen(key), &v, h, t[0] == 'T');
		} else {
			uint8_t tk[TK_MAX];
			size_t hl = strlen(key);
			if (hl % 2 == 0 && hl / 2 <= TK_MAX && auth_unhex(key, hl, tk, hl / 2))
				rc = list_add(l, tk, hl / 2, &v, h, t[0] == 'T');
		}
	}
	free(text);
	return rc;
}

/* A record's full content: data as (value, version, tombstone), meta as the
 * wire record in val. */
static int ep_get(struct sync_ep *e, enum kind k, const struct rec *r, void **val, size_t *vlen,
		  struct store_meta *m)
{
	int rc;

	*val = NULL;
	*vlen = 0;
	if (k == DATA) {
		if (e->conn)
			return mc_xget(e->conn, r->key, r->klen, val, vlen, m);
		rc = store_get(e->s, r->key, r->klen, val, vlen, m);
		return rc == -ENOENT && m->tombstone ? 0 : rc;
	}
	if (e->conn) {
		char cmd[8 + 2 * TK_MAX];
		memcpy(cmd, "mget ", 5);
		auth_hex(r->key, r->klen, cmd + 5);
		return mc_fetch(e->conn, cmd, val, vlen);
	}
	return meta_get_record(e->m, r->key, r->klen, (uint8_t **)val, vlen);
}

static int ep_put(struct sync_ep *e, enum kind k, const struct rec *r, const void *val,
		  size_t vlen, const struct store_meta *m)
{
	char err[256], *line;
	size_t len;
	int rc;

	if (k == DATA) {
		if (!e->conn) {
			rc = store_apply(e->s, r->key, r->klen, val, vlen, &m->version, m->tombstone);
			return rc < 0 ? rc : 0;
		}
		rc = mc_xset_send(e->conn, r->key, r->klen, val, vlen, &m->version, m->tombstone);
		if (rc == 0)
			rc = mc_xset_recv(e->conn, err, sizeof(err));
		return rc < 0 ? rc : 0;
	}
	if (!e->conn) {
		rc = e->sink ? fs_repl_apply(e->sink, val, vlen)
			     : meta_apply(e->m, val, vlen, &(struct meta_change){ 0 });
		return rc < 0 ? rc : 0;
	}
	char head[40], lenb[4] = { (char)(vlen & 0xff), (char)(vlen >> 8 & 0xff),
				   (char)(vlen >> 16 & 0xff), (char)(vlen >> 24 & 0xff) };
	snprintf(head, sizeof(head), "mput %zu\r\n", vlen + 4);
	struct iovec iov[4] = {
		{ head, strlen(head) }, { lenb, 4 }, { (void *)val, vlen }, { "\r\n", 2 }
	};
	if ((rc = mc_send(e->conn, iov, 4)) < 0 || (rc = mc_line(e->conn, &line, &len)) < 0)
		return rc;
	if (strncmp(line, "STORED", 6) != 0) {
		fprintf(stderr, "caskfs sync: %s refused a namespace record: %s\n", e->name, line);
		return -EIO;
	}
	return 0;
}

/* ---- the walk ---- */

static uint64_t wire_bytes(struct sync_ep *a, struct sync_ep *b)
{
	uint64_t s, r, total = 0;

	if (a->conn) {
		mc_traffic(a->conn, &s, &r);
		total += s + r;
	}
	if (b->conn) {
		mc_traffic(b->conn, &s, &r);
		total += s + r;
	}
	return total;
}

static void print_key(const struct sync_run *run, const struct rec *r, const char *dir)
{
	if (!run->verbose)
		return;
	if (run->kind == DATA) {
		printf("  data %.*s %s\n", (int)r->klen, (const char *)r->key, dir);
	} else {
		char hex[2 * TK_MAX + 1];
		auth_hex(r->key, r->klen, hex);
		printf("  meta %s %s\n", hex, dir);
	}
}

/* Copies r from src to dst (unless dry-run) and counts it. */
static void copy(struct sync_run *run, struct sync_ep *src, struct sync_ep *dst,
		 const struct rec *r, bool a_to_b)
{
	struct store_meta m = { 0 };
	void *val;
	size_t vlen;
	int rc;

	run->st.differed++;
	if (a_to_b)
		run->st.a_to_b++;
	else
		run->st.b_to_a++;
	print_key(run, r, a_to_b ? "->" : "<-");
	if (run->dry_run)
		return;
	uint64_t w0 = wire_bytes(src, dst);
	rc = ep_get(src, run->kind, r, &val, &vlen, &m);
	if (rc == 0) {
		if (run->kind == DATA && m.tombstone) {
			free(val);
			val = NULL;
			vlen = 0;
		}
		rc = ep_put(dst, run->kind, r, val, vlen, &m);
		run->st.bytes += vlen;
		free(val);
	}
	run->st.copy_wire += wire_bytes(src, dst) - w0;
	if (rc < 0 && rc != -ENOENT) {
		fprintf(stderr, "caskfs sync: copying %.*s from %s to %s: %s\n",
			run->kind == DATA ? (int)r->klen : 0, (const char *)r->key, src->name,
			dst->name, strerror(-rc));
		run->error = rc;
	}
}

static int cmp_rec(const void *x, const void *y)
{
	const struct rec *a = x, *b = y;
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c = memcmp(a->key, b->key, n);
	return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

static void compare_bucket(struct sync_run *run, const uint8_t *path, struct reclist *la,
			   struct reclist *lb)
{
	int rc = ep_bucket(run->a, run->kind, path, la);

	if (rc == 0)
		rc = ep_bucket(run->b, run->kind, path, lb);
	run->st.queries += 2;
	if (rc < 0) {
		run->error = rc;
		return;
	}
	if (la->n) /* an empty list has no array: qsort(NULL, 0) is undefined */
		qsort(la->r, la->n, sizeof(*la->r), cmp_rec);
	if (lb->n)
		qsort(lb->r, lb->n, sizeof(*lb->r), cmp_rec);
	size_t i = 0, j = 0;
	while (i < la->n || j < lb->n) {
		int c = i == la->n ? 1 : j == lb->n ? -1 : cmp_rec(&la->r[i], &lb->r[j]);
		if (c < 0) {
			copy(run, run->a, run->b, &la->r[i++], true);
		} else if (c > 0) {
			copy(run, run->b, run->a, &lb->r[j++], false);
		} else {
			int v = store_version_cmp(&la->r[i].v, &lb->r[j].v);
			if (v > 0)
				copy(run, run->a, run->b, &la->r[i], true);
			else if (v < 0)
				copy(run, run->b, run->a, &lb->r[j], false);
			i++;
			j++;
		}
	}
}

static void walk(struct sync_run *run, uint8_t *path, int depth, struct reclist *la,
		 struct reclist *lb)
{
	struct store_tree_node sa, sb, ka[16], kb[16];
	int rc = ep_children(run->a, run->kind, path, depth, &sa, ka);

	if (rc == 0)
		rc = ep_children(run->b, run->kind, path, depth, &sb, kb);
	run->st.queries += 2;
	if (rc < 0) {
		run->error = rc;
		return;
	}
	for (int k = 0; k < 16 && !run->error; k++) {
		if (run->bar && depth <= 1)
			progress_step(run->bar, depth == 0 ? (uint64_t)k * 16
							   : (uint64_t)path[0] * 16 + (uint64_t)k);
		if (ka[k].hash == kb[k].hash && ka[k].count == kb[k].count)
			continue;
		path[depth] = (uint8_t)k;
		if (depth + 1 == STORE_TREE_DEPTH)
			compare_bucket(run, path, la, lb);
		else
			walk(run, path, depth + 1, la, lb);
	}
}

static int roots(struct sync_ep *a, struct sync_ep *b, enum kind k, uint64_t *ra, uint64_t *rb)
{
	struct store_tree_node sa, sb, kids[16];
	int rc = ep_children(a, k, NULL, 0, &sa, kids);

	if (rc == 0)
		rc = ep_children(b, k, NULL, 0, &sb, kids);
	*ra = sa.hash;
	*rb = sb.hash;
	return rc;
}


/* Syncs one kind; returns 0 when equal at the end, 1 when not, <0 on error. */
static int sync_kind(struct sync_ep *a, struct sync_ep *b, enum kind k, bool dry_run,
		     bool verbose, bool quiet, struct sync_stats *out)
{
	struct sync_run run = { .a = a, .b = b, .kind = k, .dry_run = dry_run, .verbose = verbose };
	struct progress bar;
	if (!quiet) {
		progress_start(&bar, k == DATA ? "sync data" : "sync meta", 256);
		run.bar = &bar;
	}
	struct reclist la = { 0 }, lb = { 0 };
	uint8_t path[STORE_TREE_DEPTH] = { 0 };
	uint64_t ra, rb, w0 = wire_bytes(a, b);
	struct timespec ts0, ts1;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &ts0);
	rc = roots(a, b, k, &ra, &rb);
	if (rc < 0)
		return rc;
	if (ra != rb) {
		walk(&run, path, 0, &la, &lb);
		if (!run.error && !dry_run)
			run.error = roots(a, b, k, &ra, &rb);
	}
	free(la.r);
	free(lb.r);
	if (run.bar)
		progress_end(run.bar);
	clock_gettime(CLOCK_MONOTONIC, &ts1);
	uint64_t wire = wire_bytes(a, b) - w0;
	if (!quiet)
		printf("%s: %" PRIu64 " differed (%" PRIu64 " %s, %" PRIu64 " %s), %" PRIu64
		       " bytes of values, %" PRIu64 " bytes on the wire (%" PRIu64
		       " for the trees), %.3f s; %s\n",
		       k == DATA ? "data" : "meta", run.st.differed, run.st.a_to_b,
		       dry_run ? "newer on A" : "A->B", run.st.b_to_a,
		       dry_run ? "newer on B" : "B->A", run.st.bytes, wire, wire - run.st.copy_wire,
		       (double)(ts1.tv_sec - ts0.tv_sec) + (double)(ts1.tv_nsec - ts0.tv_nsec) / 1e9,
		       ra == rb ? "equal" : "NOT equal");
	if (out)
		*out = run.st;
	if (run.error)
		return run.error;
	return ra == rb ? 0 : 1;
}

/* ---- endpoints ---- */

static int ep_open(struct sync_ep *e, const char *target, const struct auth_key *key,
		   bool need_meta)
{
	struct stat st;
	int rc;

	char control[4300];

	memset(e, 0, sizeof(*e));
	snprintf(e->name, sizeof(e->name), "%s", target);
	if (stat(target, &st) == 0 && S_ISDIR(st.st_mode) &&
	    node_control_addr(target, control, sizeof(control))) {
		/* the DATA_DIR of a running node: ask the node */
		return mc_connect(control, NULL, 2000, 30000, &e->conn);
	}
	if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
		struct store_options o;
		char mdir[4096];
		store_options_init(&o);
		o.no_background = true;
		rc = store_open(target, &o, &e->s);
		if (rc < 0) {
			if (rc == -EBUSY)
				fprintf(stderr, "caskfs sync: %s is in use: sync a running node by "
						"its HOST:PORT\n",
					target);
			return rc;
		}
		e->owned = true;
		snprintf(mdir, sizeof(mdir), "%s/meta", target);
		if (need_meta && stat(mdir, &st) == 0) {
			struct store_stats ss;
			store_stats(e->s, &ss);
			rc = meta_open(target, ss.node_id ? ss.node_id : 1, store_clock(e->s), &e->m);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (!strchr(target, ':')) {
		fprintf(stderr, "caskfs sync: %s is neither a directory nor HOST:PORT\n", target);
		return -EINVAL;
	}
	rc = mc_connect(target, key, 2000, 30000, &e->conn);
	if (rc < 0)
		fprintf(stderr, "caskfs sync: cannot reach %s: %s\n", target,
			rc == -EACCES ? "authentication failed" : strerror(-rc));
	return rc;
}

static void ep_close(struct sync_ep *e)
{
	mc_close(e->conn);
	if (e->owned) {
		meta_close(e->m);
		store_close(e->s);
	}
	memset(e, 0, sizeof(*e));
}

int cli_sync(const struct sync_args *a)
{
	struct sync_ep ea, eb;
	struct auth_key key;
	char err[512];
	int rc, status = CLI_OK;
	bool do_meta = !a->data_only, do_data = !a->meta_only;

	if (a->secret_file && auth_load(a->secret_file, &key, err, sizeof(err)) < 0) {
		fprintf(stderr, "caskfs sync: %s\n", err);
		return CLI_USAGE;
	}
	const struct auth_key *k = a->secret_file ? &key : NULL;
	if ((rc = ep_open(&ea, a->a, k, do_meta)) < 0) {
		ep_close(&ea);
		return rc == -EINVAL ? CLI_USAGE : CLI_IO;
	}
	if ((rc = ep_open(&eb, a->b, k, do_meta)) < 0) {
		ep_close(&ea);
		ep_close(&eb);
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
	for (int pass = 0; pass < 2 && status == CLI_OK; pass++) {
		bool meta = pass == 1;
		if ((meta && !do_meta) || (!meta && !do_data))
			continue;
		rc = sync_kind(&ea, &eb, meta ? META : DATA, a->dry_run, a->verbose, false, NULL);
		if (rc == -EPROTO && meta && !a->meta_only) {
			/* a node without a mount answers no namespace queries */
			printf("meta: skipped: a node without a namespace (caskfs serve)\n");
			continue;
		}
		if (rc < 0) {
			fprintf(stderr, "caskfs sync: %s: %s\n", meta ? "meta" : "data",
				rc == -EPROTO ? "the node does not answer the tree queries (no namespace?)"
					      : strerror(-rc));
			status = CLI_IO;
		} else if (rc > 0) {
			status = CLI_MISSING;
		}
	}
	ep_close(&ea);
	ep_close(&eb);
	return status;
}

/* ---- background rounds in a mount ---- */

struct fs_ae {
	struct store *store;
	const struct fs_repl_sink *sink;
	char **peers;
	int npeers;
	int interval_s;
	const struct auth_key *key;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

static void round_with(struct fs_ae *ae, const char *peer)
{
	struct sync_ep self = { .s = ae->store, .m = ae->sink->meta, .sink = ae->sink };
	struct sync_ep other;
	struct sync_stats sd = { 0 }, sm = { 0 };

	snprintf(self.name, sizeof(self.name), "this node");
	memset(&other, 0, sizeof(other));
	snprintf(other.name, sizeof(other.name), "%s", peer);
	if (mc_connect(peer, ae->key, 500, 30000, &other.conn) < 0)
		return; /* down: the next round tries again */
	int rd = sync_kind(&self, &other, DATA, false, false, true, &sd);
	int rm = sync_kind(&self, &other, META, false, false, true, &sm);
	if (sd.differed || sm.differed)
		fprintf(stderr,
			"caskfs: anti-entropy with %s: %" PRIu64 " objects and %" PRIu64
			" namespace records repaired%s\n",
			peer, sd.differed, sm.differed, rd || rm ? " (not equal yet)" : "");
	mc_close(other.conn);
}

static void *ae_main(void *arg)
{
	struct fs_ae *ae = arg;

	pthread_mutex_lock(&ae->mu);
	while (!ae->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += ae->interval_s;
		pthread_cond_timedwait(&ae->cv, &ae->mu, &ts);
		if (ae->stop)
			break;
		pthread_mutex_unlock(&ae->mu);
		for (int i = 0; i < ae->npeers; i++)
			round_with(ae, ae->peers[i]);
		pthread_mutex_lock(&ae->mu);
	}
	pthread_mutex_unlock(&ae->mu);
	return NULL;
}

static void add_peer(void *arg, const char *addr, bool self, bool up, uint64_t hints)
{
	struct fs_ae *ae = arg;
	char *copy;

	(void)up;
	(void)hints;
	if (!self && ae->npeers < CLUSTER_MAX_NODES && (copy = strdup(addr)))
		ae->peers[ae->npeers++] = copy;
}

int fs_ae_start(struct store *s, const struct fs_repl_sink *sink, const struct node *n,
		const struct node_args *a, struct fs_ae **out)
{
	struct fs_ae *ae;

	*out = NULL;
	if (!a->peers || a->sync_interval_s <= 0)
		return 0;
	ae = calloc(1, sizeof(*ae));
	if (!ae)
		return -ENOMEM;
	ae->store = s;
	ae->sink = sink;
	ae->interval_s = a->sync_interval_s;
	ae->key = n->have_key ? &n->key : NULL;
	ae->peers = calloc(CLUSTER_MAX_NODES, sizeof(char *));
	if (ae->peers)
		cluster_peers(n->cluster, add_peer, ae);
	pthread_mutex_init(&ae->mu, NULL);
	pthread_cond_init(&ae->cv, NULL);
	if (!ae->peers || pthread_create(&ae->thread, NULL, ae_main, ae) != 0) {
		free(ae->peers);
		free(ae);
		return -ENOMEM;
	}
	*out = ae;
	return 0;
}

void fs_ae_stop(struct fs_ae *ae)
{
	if (!ae)
		return;
	pthread_mutex_lock(&ae->mu);
	ae->stop = true;
	pthread_cond_signal(&ae->cv);
	pthread_mutex_unlock(&ae->mu);
	pthread_join(ae->thread, NULL);
	for (int i = 0; i < ae->npeers; i++)
		free(ae->peers[i]);
	free(ae->peers);
	free(ae);
}
