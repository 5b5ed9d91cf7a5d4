/*
 * cluster - the quorum client (cluster.h). Placement is rendezvous hashing:
 * every node scores xxh3(key, seed = xxh3(node address)) and the N highest
 * hold the key, so every node computes the same replicas from the same list
 * and a node joining or leaving moves only its own share.
 *
 * A put is sent to every replica at once (the remote ones first, so they work
 * while the local one writes), then the replies are collected. A replica that
 * could not take it gets a hint: the record, in the store's record format,
 * appended to DATA_DIR/handoff/<node>.hints; a background thread replays the
 * hints when the node answers again (docs/PROTOCOL.md, "Hinted handoff").
 */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "../endian.h"
#include "../log/record_i.h"
#include "../xxh_i.h"

#define POOL 8		 /* idle connections kept per peer */
#define DOWN_MS 1000	 /* a failed peer is skipped this long before it is tried again */
#define HANDOFF_MS 500	 /* how often hints are replayed */
#define HINT_MAGIC "CASKHINT"
#define HINT_HDR 16

struct peer {
	char addr[256];
	uint64_t seed; /* xxh3 of addr: its rendezvous seed */
	bool self;
	pthread_mutex_t mu;	       /* protects idle, nidle and the hint fields */
	struct mc_conn *idle[POOL];    /* protected by mu */
	int nidle;		       /* protected by mu */
	_Atomic int64_t down_until;    /* monotonic ms; 0 when believed up */
	_Atomic bool was_down;	       /* for logging state changes once */
	int hint_fd;		       /* protected by mu; -1 until the first hint */
	bool hint_dirty;	       /* protected by mu: written since the last fsync */
	uint64_t cur_count, cur_bytes; /* protected by mu: records in the current file */
	uint64_t old_count, old_bytes; /* protected by mu: records in the .replay file */
	char hint_path[PATH_MAX];
	pthread_mutex_t replay_mu; /* one replay of this peer at a time */
};

struct cluster {
	struct store *local;
	int nnodes, n, w, r;
	int connect_ms, io_ms;
	const struct auth_key *key;
	struct auth_key key_copy;
	uint32_t node_id;
	struct peer *peers; /* nnodes, sorted by address */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	bool stopping; /* protected by stop_mu */
	_Atomic uint64_t puts, put_failures, gets, get_misses, read_repairs;
	_Atomic uint64_t hints_queued, hints_replayed;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- nodes and placement ---- */

static int cmp_peer(const void *a, const void *b)
{
	return strcmp(((const struct peer *)a)->addr, ((const struct peer *)b)->addr);
}

static int add_node(struct cluster *c, const char *addr, size_t len, bool self)
{
	char host[256], port[16], buf[256];

	if (len == 0 || len >= sizeof(buf))
		goto bad;
	memcpy(buf, addr, len);
	buf[len] = 0;
	if (mc_split_addr(buf, host, sizeof(host), port, sizeof(port)) < 0)
		goto bad;
	for (int i = 0; i < c->nnodes; i++)
		if (strcmp(c->peers[i].addr, buf) == 0) {
			c->peers[i].self |= self;
			return 0;
		}
	if (c->nnodes == CLUSTER_MAX_NODES) {
		fprintf(stderr, "caskfs: more than %d nodes\n", CLUSTER_MAX_NODES);
		return -EINVAL;
	}
	struct peer *p = &c->peers[c->nnodes++];
	memset(p, 0, sizeof(*p));
	strcpy(p->addr, buf);
	p->seed = XXH3_64bits(buf, len);
	p->self = self;
	p->hint_fd = -1;
	return 0;
bad:
	fprintf(stderr, "caskfs: bad node address '%.*s' (want HOST:PORT)\n", (int)len, addr);
	return -EINVAL;
}

/* Fills reps with the indexes of key's n replicas, best first. */
static void placement(struct cluster *c, const void *key, size_t klen, int *reps)
{
	uint64_t score[CLUSTER_MAX_NODES];
	bool taken[CLUSTER_MAX_NODES] = { false };

	for (int i = 0; i < c->nnodes; i++)
		score[i] = XXH3_64bits_withSeed(key, klen, c->peers[i].seed);
	for (int k = 0; k < c->n; k++) {
		int best = -1;
		for (int i = 0; i < c->nnodes; i++)
			if (!taken[i] && (best < 0 || score[i] > score[best]))
				best = i;
		taken[best] = true;
		reps[k] = best;
	}
}

bool cluster_is_replica(struct cluster *c, const void *key, size_t klen)
{
	int reps[CLUSTER_MAX_NODES];

	placement(c, key, klen, reps);
	for (int k = 0; k < c->n; k++)
		if (c->peers[reps[k]].self)
			return true;
	return false;
}

/* ---- peer connections ---- */

static bool is_down(struct peer *p)
{
	int64_t until = atomic_load(&p->down_until);
	return until && now_ms() < until;
}

static void mark_down(struct peer *p, int err)
{
	atomic_store(&p->down_until, now_ms() + DOWN_MS);
	if (!atomic_exchange(&p->was_down, true))
		fprintf(stderr, "caskfs: peer %s is down: %s\n", p->addr, strerror(-err));
}

static void mark_up(struct peer *p)
{
	atomic_store(&p->down_until, 0);
	if (atomic_exchange(&p->was_down, false))
		fprintf(stderr, "caskfs: peer %s is up again\n", p->addr);
}

/* A connection to p: an idle one (*pooled set) or a new one. */
static int get_conn(struct cluster *c, struct peer *p, struct mc_conn **out, bool *pooled)
{
	pthread_mutex_lock(&p->mu);
	*pooled = p->nidle > 0;
	*out = *pooled ? p->idle[--p->nidle] : NULL;
	pthread_mutex_unlock(&p->mu);
	if (*pooled)
		return 0;
	return mc_connect(p->addr, c->key, c->connect_ms, c->io_ms, out);
}

static void put_conn(struct peer *p, struct mc_conn *conn)
{
	pthread_mutex_lock(&p->mu);
	if (p->nidle < POOL) {
		p->idle[p->nidle++] = conn;
		conn = NULL;
	}
	pthread_mutex_unlock(&p->mu);
	mc_close(conn);
}

/* ---- hints ---- */

static void hint_path(const char *dir, struct peer *p)
{
	char name[256];
	size_t i;

	for (i = 0; p->addr[i] && i < sizeof(name) - 1; i++)
		name[i] = (p->addr[i] == ':' || p->addr[i] == '/' || p->addr[i] == '[' ||
			   p->addr[i] == ']')
				  ? '_'
				  : p->addr[i];
	name[i] = 0;
	snprintf(p->hint_path, sizeof(p->hint_path), "%s/handoff/%s.hints", dir, name);
}

/* Appends a hint for p; logged when it cannot be kept. */
static void hint(struct cluster *c, struct peer *p, const void *key, size_t klen, const void *val,
		 size_t vlen, const struct store_version *v, bool tombstone)
{
	struct store_rec_hdr h = {
		.stamp = v->stamp,
		.value_hash = tombstone ? 0 : XXH3_64bits(val, vlen),
		.node = v->node,
		.stored_len = tombstone ? 0 : (uint32_t)vlen,
		.raw_len = tombstone ? 0 : (uint32_t)vlen,
		.key_len = (uint16_t)klen,
		.flags = tombstone ? STORE_REC_TOMBSTONE : 0,
		.version = STORE_REC_VERSION,
	};
	uint8_t hdr[STORE_REC_HDR];
	int rc = 0;

	store_rec_encode(&h, hdr);
	h.checksum = store_rec_checksum(hdr, key, klen,
					tombstone ? XXH3_64bits(NULL, 0) : h.value_hash);
	store_rec_encode(&h, hdr);
	struct iovec iov[3] = { { hdr, sizeof(hdr) },
				{ (void *)key, klen },
				{ (void *)val, h.stored_len } };
	pthread_mutex_lock(&p->mu);
	if (p->hint_fd < 0) {
		p->hint_fd = open(p->hint_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (p->hint_fd >= 0 && lseek(p->hint_fd, 0, SEEK_END) == 0) {
			uint8_t fh[HINT_HDR] = HINT_MAGIC;
			put_le32(fh + 8, 1);
			if (write(p->hint_fd, fh, sizeof(fh)) != (ssize_t)sizeof(fh))
				rc = -EIO;
		}
	}
	if (p->hint_fd < 0)
		rc = -errno;
	size_t total = sizeof(hdr) + klen + h.stored_len;
	if (rc == 0) {
		ssize_t w = writev(p->hint_fd, iov, 3);
		if (w != (ssize_t)total) {
			rc = w < 0 ? -errno : -ENOSPC;
			/* a short write leaves a torn record that replay stops at */
			close(p->hint_fd);
			p->hint_fd = -1;
		}
	}
	if (rc == 0) {
		p->cur_count++;
		p->cur_bytes += total;
		p->hint_dirty = true;
	}
	pthread_mutex_unlock(&p->mu);
	if (rc < 0)
		fprintf(stderr, "caskfs: cannot keep a hint for %s (key %.*s): %s\n", p->addr,
			(int)klen, (const char *)key, strerror(-rc));
	else
		atomic_fetch_add(&c->hints_queued, 1);
}

int cluster_sync(struct cluster *c)
{
	int rc = 0;

	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		pthread_mutex_lock(&p->mu);
		if (p->hint_dirty && p->hint_fd >= 0) {
			if (fdatasync(p->hint_fd) < 0)
				rc = -errno;
			else
				p->hint_dirty = false;
		}
		pthread_mutex_unlock(&p->mu);
	}
	return rc;
}

/* Sends one stamped record to p and waits for the reply; a pooled connection
 * that turns out dead is replaced once (xset is idempotent). Returns 0 when p
 * took it or already had it, or -errno (p marked down on connection errors). */
static int send_one(struct cluster *c, struct peer *p, const void *key, size_t klen,
		    const void *val, size_t vlen, const struct store_version *v, bool tombstone)
{
	char err[256];
	int rc = -EIO;

	for (int attempt = 0; attempt < 2; attempt++) {
		struct mc_conn *conn;
		bool pooled;
		rc = get_conn(c, p, &conn, &pooled);
		if (rc == 0 && (rc = mc_xset_send(conn, key, klen, val, vlen, v, tombstone)) == 0)
			rc = mc_xset_recv(conn, err, sizeof(err));
		if (rc >= 0 || rc == -EIO) {
			put_conn(p, conn);
			if (rc == -EIO)
				fprintf(stderr, "caskfs: %s refused %.*s: %s\n", p->addr, (int)klen,
					(const char *)key, err);
			return rc < 0 ? rc : 0;
		}
		mc_close(conn);
		if (!pooled)
			break;
	}
	mark_down(p, rc);
	return rc;
}

/* Replays one hint file to p; 0 when every record was delivered (or was a
 * torn tail), -errno when p failed (the file is kept). */
static int replay_file(struct cluster *c, struct peer *p, const char *path, uint64_t *sent)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t fh[HINT_HDR], hdr[STORE_REC_HDR];
	struct store_rec_hdr h;
	char *buf = NULL;
	size_t cap = 0;
	off_t off = HINT_HDR;
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (pread(fd, fh, sizeof(fh), 0) != (ssize_t)sizeof(fh) || memcmp(fh, HINT_MAGIC, 8)) {
		fprintf(stderr, "caskfs: %s: not a hint file; left alone\n", path);
		close(fd);
		return -EBADMSG;
	}
	while (pread(fd, hdr, sizeof(hdr), off) == (ssize_t)sizeof(hdr)) {
		if (store_rec_decode(hdr, &h) < 0)
			break;
		size_t body = (size_t)h.key_len + h.stored_len;
		if (body > cap) {
			char *nb = realloc(buf, body);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			buf = nb;
			cap = body;
		}
		if (pread(fd, buf, body, off + STORE_REC_HDR) != (ssize_t)body)
			break;
		uint64_t seed = XXH3_64bits(buf + h.key_len, h.stored_len);
		if (store_rec_checksum(hdr, buf, h.key_len, seed) != h.checksum)
			break;
		struct store_version v = { h.stamp, h.node };
		rc = send_one(c, p, buf, h.key_len, buf + h.key_len, h.stored_len, &v,
			      h.flags & STORE_REC_TOMBSTONE);
		if (rc < 0)
			break;
		(*sent)++;
		off += STORE_REC_HDR + (off_t)body;
	}
	struct stat st;
	if (rc == 0 && fstat(fd, &st) == 0 && off < st.st_size)
		fprintf(stderr, "caskfs: %s: %lld bytes of a torn hint at the end dropped\n", path,
			(long long)(st.st_size - off));
	free(buf);
	close(fd);
	return rc;
}

/* Counts the records of a hint file (at open, for the stats). */
static void count_file(const char *path, uint64_t *count, uint64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t hdr[STORE_REC_HDR];
	struct store_rec_hdr h;
	off_t off = HINT_HDR;

	if (fd < 0)
		return;
	while (pread(fd, hdr, sizeof(hdr), off) == (ssize_t)sizeof(hdr) &&
	       store_rec_decode(hdr, &h) == 0) {
		off += (off_t)store_rec_size(&h);
		(*count)++;
	}
	*bytes += (uint64_t)off;
	close(fd);
}

static int replay_peer(struct cluster *c, struct peer *p)
{
	char replay[PATH_MAX + 8];
	uint64_t sent = 0;
	struct stat st;
	int rc;

	snprintf(replay, sizeof(replay), "%s.replay", p->hint_path);
	pthread_mutex_lock(&p->replay_mu);
	/* the current file becomes the one being replayed; new hints start a new one */
	if (stat(replay, &st) < 0) {
		pthread_mutex_lock(&p->mu);
		if (p->hint_fd >= 0) {
			fdatasync(p->hint_fd);
			close(p->hint_fd);
			p->hint_fd = -1;
			p->hint_dirty = false;
		}
		rc = rename(p->hint_path, replay) < 0 && errno != ENOENT ? -errno : 0;
		if (rc == 0) {
			p->old_count += p->cur_count;
			p->old_bytes += p->cur_bytes;
			p->cur_count = p->cur_bytes = 0;
		}
		pthread_mutex_unlock(&p->mu);
		if (rc < 0)
			goto out;
	}
	rc = replay_file(c, p, replay, &sent);
	if (rc == 0) {
		unlink(replay);
		pthread_mutex_lock(&p->mu);
		p->old_count = p->old_bytes = 0;
		pthread_mutex_unlock(&p->mu);
		mark_up(p);
	}
	if (sent) {
		atomic_fetch_add(&c->hints_replayed, sent);
		fprintf(stderr, "caskfs: handed %" PRIu64 " hinted records to %s%s\n", sent,
			p->addr, rc < 0 ? " (more pending)" : "");
	}
out:
	pthread_mutex_unlock(&p->replay_mu);
	return rc < 0 ? rc : (int)sent;
}

int cluster_handoff(struct cluster *c)
{
	int total = 0;

	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		pthread_mutex_lock(&p->mu);
		bool pending = p->cur_count + p->old_count > 0;
		pthread_mutex_unlock(&p->mu);
		if (p->self || !pending)
			continue;
		int rc = replay_peer(c, p);
		if (rc > 0)
			total += rc;
	}
	return total;
}

static void *handoff_main(void *arg)
{
	struct cluster *c = arg;

	pthread_mutex_lock(&c->stop_mu);
	while (!c->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HANDOFF_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&c->stop_cv, &c->stop_mu, &ts);
		if (c->stopping)
			break;
		pthread_mutex_unlock(&c->stop_mu);
		cluster_sync(c);
		cluster_handoff(c);
		pthread_mutex_lock(&c->stop_mu);
	}
	pthread_mutex_unlock(&c->stop_mu);
	return NULL;
}

/* ---- open and close ---- */

static int clamp(int v, int def, int lo, int hi)
{
	if (v <= 0)
		v = def;
	return v < lo ? lo : v > hi ? hi : v;
}

int cluster_open(struct store *local, const struct cluster_options *opt, struct cluster **out)
{
	struct cluster *c = calloc(1, sizeof(*c));
	struct store_stats ss;
	int rc = 0;

	*out = NULL;
	if (!c || !(c->peers = calloc(CLUSTER_MAX_NODES, sizeof(*c->peers)))) {
		free(c);
		return -ENOMEM;
	}
	c->local = local;
	store_stats(local, &ss);
	c->node_id = ss.node_id;
	c->connect_ms = opt->connect_ms > 0 ? opt->connect_ms : 300;
	c->io_ms = opt->io_ms > 0 ? opt->io_ms : 800;
	if (opt->key) {
		c->key_copy = *opt->key;
		c->key = &c->key_copy;
	}
	if (opt->self) {
		rc = add_node(c, opt->self, strlen(opt->self), true);
		for (const char *s = opt->peers; rc == 0 && s && *s;) {
			const char *comma = strchr(s, ',');
			size_t len = comma ? (size_t)(comma - s) : strlen(s);
			if (len)
				rc = add_node(c, s, len, false);
			s += len + (comma ? 1 : 0);
		}
	} else {
		rc = add_node(c, "local:0", 7, true);
	}
	if (rc < 0)
		goto fail;
	qsort(c->peers, (size_t)c->nnodes, sizeof(*c->peers), cmp_peer);
	c->n = clamp(opt->replicas, 3, 1, c->nnodes);
	c->w = clamp(opt->write_quorum, 2, 1, c->n);
	c->r = clamp(opt->read_quorum, 1, 1, c->n);
	if (c->nnodes > 1 && opt->data_dir) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/handoff", opt->data_dir);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
			fprintf(stderr, "caskfs: cannot create %s: %s\n", dir, strerror(errno));
			goto fail;
		}
	}
	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		pthread_mutex_init(&p->mu, NULL);
		pthread_mutex_init(&p->replay_mu, NULL);
		if (p->self || !opt->data_dir)
			continue;
		hint_path(opt->data_dir, p);
		char replay[PATH_MAX + 8];
		snprintf(replay, sizeof(replay), "%s.replay", p->hint_path);
		count_file(p->hint_path, &p->cur_count, &p->cur_bytes);
		count_file(replay, &p->old_count, &p->old_bytes);
	}
	pthread_mutex_init(&c->stop_mu, NULL);
	pthread_cond_init(&c->stop_cv, NULL);
	if (c->nnodes > 1 && !opt->no_background) {
		if ((rc = -pthread_create(&c->thread, NULL, handoff_main, c)) < 0)
			goto fail;
		c->thread_started = true;
	}
	*out = c;
	return 0;
fail:
	free(c->peers);
	free(c);
	return rc;
}

void cluster_close(struct cluster *c)
{
	if (!c)
		return;
	if (c->thread_started) {
		pthread_mutex_lock(&c->stop_mu);
		c->stopping = true;
		pthread_cond_signal(&c->stop_cv);
		pthread_mutex_unlock(&c->stop_mu);
		pthread_join(c->thread, NULL);
	}
	cluster_sync(c);
	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		for (int k = 0; k < p->nidle; k++)
			mc_close(p->idle[k]);
		if (p->hint_fd >= 0)
			close(p->hint_fd);
		pthread_mutex_destroy(&p->mu);
		pthread_mutex_destroy(&p->replay_mu);
	}
	pthread_mutex_destroy(&c->stop_mu);
	pthread_cond_destroy(&c->stop_cv);
	free(c->peers);
	free(c);
}

/* ---- quorum operations ---- */

static int check_args(size_t klen, size_t vlen)
{
	return klen == 0 || klen > STORE_KEY_MAX || vlen > STORE_VALUE_MAX ? -EINVAL : 0;
}

/* Writes one version of key to its replicas; see cluster_put(). */
static int replicate(struct cluster *c, const void *key, size_t klen, const void *val,
		     size_t vlen, const struct store_version *v, bool tombstone)
{
	int reps[CLUSTER_MAX_NODES], acks = 0, rc, local_rc = 0;
	struct mc_conn *conns[CLUSTER_MAX_NODES] = { NULL };
	bool pooled[CLUSTER_MAX_NODES], ok[CLUSTER_MAX_NODES] = { false };
	char err[256];

	placement(c, key, klen, reps);
	/* remote replicas first, so they store while this node does */
	for (int k = 0; k < c->n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (p->self || is_down(p))
			continue;
		rc = get_conn(c, p, &conns[k], &pooled[k]);
		if (rc == 0 && (rc = mc_xset_send(conns[k], key, klen, val, vlen, v, tombstone)) <
				       0) {
			mc_close(conns[k]);
			conns[k] = NULL;
			/* a dead pooled connection: the retry below uses a new one */
			if (!pooled[k])
				mark_down(p, rc);
		} else if (rc < 0) {
			mark_down(p, rc);
		}
	}
	for (int k = 0; k < c->n; k++) {
		if (!c->peers[reps[k]].self)
			continue;
		local_rc = store_apply(c->local, key, klen, val, vlen, v, tombstone);
		ok[k] = local_rc >= 0;
		if (local_rc < 0)
			fprintf(stderr, "caskfs: local store refused %.*s: %s\n", (int)klen,
				(const char *)key, strerror(-local_rc));
	}
	for (int k = 0; k < c->n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (p->self)
			continue;
		if (conns[k]) {
			rc = mc_xset_recv(conns[k], err, sizeof(err));
			if (rc >= 0 || rc == -EIO) {
				put_conn(p, conns[k]);
				ok[k] = rc >= 0;
				if (rc == -EIO)
					fprintf(stderr, "caskfs: %s refused %.*s: %s\n", p->addr,
						(int)klen, (const char *)key, err);
				continue;
			}
			mc_close(conns[k]);
			if (!pooled[k]) {
				mark_down(p, rc);
				continue;
			}
		} else if (is_down(p)) {
			continue;
		}
		/* a pooled connection had died: once more on a fresh one */
		ok[k] = send_one(c, p, key, klen, val, vlen, v, tombstone) == 0;
	}
	char missing[CLUSTER_MAX_NODES * 32] = "";
	size_t mlen = 0;
	for (int k = 0; k < c->n; k++) {
		struct peer *p = &c->peers[reps[k]];
		if (ok[k]) {
			acks++;
			continue;
		}
		if (!p->self)
			hint(c, p, key, klen, val, vlen, v, tombstone);
		mlen += (size_t)snprintf(missing + mlen, sizeof(missing) - mlen, "%s%s",
					 mlen ? ", " : "", p->self ? "this node" : p->addr);
		if (mlen >= sizeof(missing))
			mlen = sizeof(missing) - 1;
	}
	if (acks >= c->w)
		return 0;
	atomic_fetch_add(&c->put_failures, 1);
	fprintf(stderr,
		"caskfs: %s %.*s: %d of %d replicas acknowledged, %d needed (W); missing: %s\n",
		tombstone ? "delete" : "put", (int)klen, (const char *)key, acks, c->n, c->w,
		missing);
	return local_rc < 0 && c->n == 1 ? local_rc : -EIO;
}

int cluster_put(struct cluster *c, const void *key, size_t klen, const void *val, size_t vlen)
{
	int rc = check_args(klen, vlen);

	if (rc < 0)
		return rc;
	atomic_fetch_add(&c->puts, 1);
	if (c->nnodes == 1)
		return store_put(c->local, key, klen, val, vlen, NULL);
	struct store_version v = { store_clock_now(store_clock(c->local)), c->node_id };
	return replicate(c, key, klen, val, vlen, &v, false);
}

/* One replica's record of key: 0 live (value in *val when val), -ENOENT with
 * m->tombstone or not, -EBADMSG for a damaged copy, or a connection error
 * (the peer is then marked down). */
static int fetch(struct cluster *c, struct peer *p, const void *key, size_t klen, void **val,
		 size_t *vlen, struct store_meta *m)
{
	int rc = -EIO;

	if (p->self) {
		rc = val ? store_get(c->local, key, klen, val, vlen, m)
			 : store_stat(c->local, key, klen, m);
		return rc;
	}
	if (is_down(p))
		return -EHOSTDOWN;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct mc_conn *conn;
		bool pooled;
		void *v = NULL;
		size_t n = 0;
		rc = get_conn(c, p, &conn, &pooled);
		if (rc == 0)
			rc = mc_xget(conn, key, klen, &v, &n, m);
		if (rc == 0 || rc == -ENOENT) {
			put_conn(p, conn);
			if (rc == -ENOENT)
				memset(m, 0, sizeof(*m));
			if (rc == 0 && !m->tombstone && XXH3_64bits(v, n) != m->value_hash) {
				fprintf(stderr, "caskfs: %s sent %.*s with a wrong hash\n", p->addr,
					(int)klen, (const char *)key);
				rc = -EBADMSG;
			} else if (rc == 0 && m->tombstone) {
				rc = -ENOENT;
			}
			if (rc == 0 && val) {
				*val = v;
				*vlen = n;
			} else {
				free(v);
			}
			return rc;
		}
		mc_close(conn);
		if (!pooled)
			break;
	}
	mark_down(p, rc);
	return rc;
}

/* Puts the copy found back on the replicas that lacked it or held an older
 * or damaged one. */
static void repair(struct cluster *c, const int *order, const bool *stale, int count,
		   const void *key, size_t klen, const void *val, size_t vlen,
		   const struct store_meta *m)
{
	for (int k = 0; k < count; k++) {
		if (!stale[k])
			continue;
		struct peer *p = &c->peers[order[k]];
		int rc = p->self ? store_apply(c->local, key, klen, val, vlen, &m->version, false)
				 : send_one(c, p, key, klen, val, vlen, &m->version, false);
		if (rc >= 0)
			atomic_fetch_add(&c->read_repairs, 1);
	}
}

/* The replicas in the order a read asks them: this node first. */
static int read_order(struct cluster *c, const void *key, size_t klen, int *order)
{
	int reps[CLUSTER_MAX_NODES], n = 0;

	placement(c, key, klen, reps);
	for (int k = 0; k < c->n; k++)
		if (c->peers[reps[k]].self)
			order[n++] = reps[k];
	for (int k = 0; k < c->n; k++)
		if (!c->peers[reps[k]].self)
			order[n++] = reps[k];
	return n;
}

static int get_or_stat(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		       struct store_meta *meta)
{
	int order[CLUSTER_MAX_NODES], count, rc = -EIO, answered = 0;
	bool stale[CLUSTER_MAX_NODES] = { false }, damaged = false;
	struct store_meta m;

	atomic_fetch_add(&c->gets, 1);
	count = read_order(c, key, klen, order);
	for (int k = 0; k < count; k++) {
		rc = fetch(c, &c->peers[order[k]], key, klen, val, vlen, &m);
		if (rc == 0) {
			if (meta)
				*meta = m;
			if (val)
				repair(c, order, stale, k, key, klen, *val, *vlen, &m);
			return 0;
		}
		if (rc == -ENOENT && m.tombstone) {
			/* the first replica that knows the key answers, as R=1 reads do */
			if (meta)
				*meta = m;
			atomic_fetch_add(&c->get_misses, 1);
			return -ENOENT;
		}
		if (rc == -ENOENT || rc == -EBADMSG) {
			answered++;
			stale[k] = true;
			damaged |= rc == -EBADMSG;
		}
	}
	if (answered == 0 && count > 0)
		return rc == -EHOSTDOWN ? -EIO : rc;
	atomic_fetch_add(&c->get_misses, 1);
	return damaged ? -EBADMSG : -ENOENT;
}

int cluster_get(struct cluster *c, const void *key, size_t klen, void **val, size_t *vlen,
		struct store_meta *meta)
{
	if (c->nnodes == 1)
		return store_get(c->local, key, klen, val, vlen, meta);
	return get_or_stat(c, key, klen, val, vlen, meta);
}

int cluster_stat(struct cluster *c, const void *key, size_t klen, struct store_meta *meta)
{
	if (c->nnodes == 1)
		return store_stat(c->local, key, klen, meta);
	return get_or_stat(c, key, klen, NULL, NULL, meta);
}

struct store *cluster_local(struct cluster *c)
{
	return c->local;
}

int cluster_read(struct cluster *c, const void *key, size_t klen, void *buf, size_t cap,
		 size_t *vlen, struct store_meta *meta)
{
	struct store_meta m;
	void *val;
	int rc;

	if (!meta)
		meta = &m;
	if (c->nnodes == 1 || cluster_is_replica(c, key, klen)) {
		rc = store_read(c->local, key, klen, buf, cap, vlen, meta);
		if (c->nnodes == 1 || rc == 0 || rc == -ERANGE || (rc == -ENOENT && meta->tombstone))
			return rc;
	}
	rc = get_or_stat(c, key, klen, &val, vlen, meta);
	meta->segment = 0;
	if (rc < 0)
		return rc;
	if (*vlen > cap)
		rc = -ERANGE;
	else
		memcpy(buf, val, *vlen);
	free(val);
	return rc;
}

int cluster_delete(struct cluster *c, const void *key, size_t klen)
{
	struct store_meta m;
	int rc = check_args(klen, 0);

	if (rc < 0)
		return rc;
	if (c->nnodes == 1)
		return store_delete(c->local, key, klen, NULL);
	rc = cluster_stat(c, key, klen, &m);
	if (rc < 0)
		return rc;
	struct store_version v = { store_clock_now(store_clock(c->local)), c->node_id };
	return replicate(c, key, klen, NULL, 0, &v, true);
}

/* ---- reporting ---- */

void cluster_stats(struct cluster *c, struct cluster_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->nodes = c->nnodes;
	st->n = c->n;
	st->w = c->w;
	st->r = c->r;
	st->puts = atomic_load(&c->puts);
	st->put_failures = atomic_load(&c->put_failures);
	st->gets = atomic_load(&c->gets);
	st->get_misses = atomic_load(&c->get_misses);
	st->read_repairs = atomic_load(&c->read_repairs);
	st->hints_queued = atomic_load(&c->hints_queued);
	st->hints_replayed = atomic_load(&c->hints_replayed);
	for (int i = 0; i < c->nnodes; i++) {
		pthread_mutex_lock(&c->peers[i].mu);
		st->hints_pending += c->peers[i].cur_count + c->peers[i].old_count;
		st->hint_bytes_pending += c->peers[i].cur_bytes + c->peers[i].old_bytes;
		pthread_mutex_unlock(&c->peers[i].mu);
	}
}

void cluster_describe(struct cluster *c, char *buf, size_t cap)
{
	if (c->nnodes == 1)
		snprintf(buf, cap, "one node: N=1 W=1 R=1");
	else
		snprintf(buf, cap, "N=%d W=%d R=%d over %d nodes", c->n, c->w, c->r, c->nnodes);
}

void cluster_peers(struct cluster *c, cluster_peer_fn fn, void *arg)
{
	for (int i = 0; i < c->nnodes; i++) {
		struct peer *p = &c->peers[i];
		pthread_mutex_lock(&p->mu);
		uint64_t hints = p->cur_count + p->old_count;
		pthread_mutex_unlock(&p->mu);
		fn(arg, p->addr, p->self, p->self || !is_down(p), hints);
	}
}
