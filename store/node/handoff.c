/*
 * handoff - hinted handoff: a replica that could not take a write gets a
 * hint, the record in the store's own record format, appended to
 * DATA_DIR/handoff/<node>.hints; a background thread replays the hints when
 * the node answers again. The one idea: replay renames the file first (to
 * .replay), so new hints go on into a new file while the old one drains,
 * and a file is removed only once every record in it was delivered.
 * Formats: docs/PROTOCOL.md ("Hinted handoff"), docs/FORMAT.md ("Records").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "cluster_i.h"
#include "../endian.h"
#include "../log/record_i.h"
#include "../xxh_i.h"

#define HINT_MAGIC "CASKHINT"
#define HINT_HDR 16

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

void cluster_hint_add(struct cluster *c, struct peer *p, const void *key, size_t klen,
		      const void *val, size_t vlen, const struct store_version *v, bool tombstone,
		      const struct store_attr *attr)
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
		.client_flags = tombstone || !attr ? 0 : attr->flags,
		.expires = tombstone || !attr ? 0 : attr->expires,
	};
	uint8_t hdr[STORE_REC_HDR];
	int rc = 0;

	store_rec_encode(&h, hdr);
	h.checksum =
	    store_rec_checksum(hdr, key, klen, tombstone ? XXH3_64bits(NULL, 0) : h.value_hash);
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
	ssize_t got;
	while ((got = pread(fd, hdr, sizeof(hdr), off)) > 0) {
		if (store_rec_decode(hdr, (size_t)got, &h) < 0)
			break;
		size_t hl = store_rec_hdr_len(h.version);
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
		if (pread(fd, buf, body, off + (off_t)hl) != (ssize_t)body)
			break;
		uint64_t seed = XXH3_64bits(buf + h.key_len, h.stored_len);
		if (store_rec_checksum(hdr, buf, h.key_len, seed) != h.checksum)
			break;
		struct store_version v = { h.stamp, h.node };
		struct store_attr attr = { h.client_flags, h.expires };
		rc = cluster_peer_send(c, p, buf, h.key_len, buf + h.key_len, h.stored_len, &v,
				       h.flags & STORE_REC_TOMBSTONE, &attr);
		if (rc < 0)
			break;
		(*sent)++;
		off += (off_t)(hl + body);
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
	ssize_t got;
	while ((got = pread(fd, hdr, sizeof(hdr), off)) > 0 &&
	       store_rec_decode(hdr, (size_t)got, &h) == 0) {
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
		cluster_peer_mark_up(p);
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

void cluster_hint_open(struct peer *p, const char *data_dir)
{
	char replay[PATH_MAX + 8];

	hint_path(data_dir, p);
	snprintf(replay, sizeof(replay), "%s.replay", p->hint_path);
	count_file(p->hint_path, &p->cur_count, &p->cur_bytes);
	count_file(replay, &p->old_count, &p->old_bytes);
}

int cluster_handoff_start(struct cluster *c)
{
	int rc = -pthread_create(&c->thread, NULL, handoff_main, c);

	if (rc == 0)
		c->thread_started = true;
	return rc;
}

void cluster_handoff_stop(struct cluster *c)
{
	if (!c->thread_started)
		return;
	pthread_mutex_lock(&c->stop_mu);
	c->stopping = true;
	pthread_cond_signal(&c->stop_cv);
	pthread_mutex_unlock(&c->stop_mu);
	pthread_join(c->thread, NULL);
}
