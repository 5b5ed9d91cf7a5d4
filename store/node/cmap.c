/*
 * cmap - the cluster map as a value (cmap.h): building and editing it, the
 * merge rule that makes every node end with the same map, its encoding on
 * the wire and in DATA_DIR/cluster.map. The one idea: a map is replaced
 * only by one of a higher epoch (or, made at the same moment elsewhere, by
 * the one with the higher digest), so gossip needs no coordination.
 * Formats: docs/FORMAT.md ("Cluster map").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmap.h"
#include "../endian.h"
#include "../xxh_i.h"

#define WIRE_MAGIC "CASKMAP\0"
#define FILE_MAGIC "CASKCLST"
#define CMAP_VERSION 1
#define WIRE_HDR 32
#define FILE_HDR 64

void cmap_init(struct cmap *m)
{
	m->epoch = 0;
	m->cluster_id = 0;
	m->count = 0;
}

int cmap_find(const struct cmap *m, const char *addr)
{
	int lo = 0, hi = m->count - 1;

	while (lo <= hi) {
		int mid = (lo + hi) / 2, c = strcmp(m->node[mid].addr, addr);
		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

bool cmap_addr_ok(const char *addr, size_t len)
{
	size_t colon = len;

	if (len < 3 || len > CMAP_ADDR_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)addr[i];
		if (ch <= ' ' || ch >= 0x7f || ch == ',')
			return false;
		if (ch == ':')
			colon = i;
	}
	if (colon == 0 || colon + 1 >= len)
		return false;
	for (size_t i = colon + 1; i < len; i++)
		if (addr[i] < '0' || addr[i] > '9')
			return false;
	return true;
}

int cmap_count(const struct cmap *m, uint8_t flags)
{
	int n = 0;

	for (int i = 0; i < m->count; i++)
		n += (m->node[i].flags & flags) == flags;
	return n;
}

/* Inserts addr in order; the index of its entry, or -ENOSPC. */
static int insert(struct cmap *m, const char *addr, size_t len, uint32_t id, uint8_t flags)
{
	char a[CMAP_ADDR_MAX + 1];
	int at;

	memcpy(a, addr, len);
	a[len] = 0;
	if ((at = cmap_find(m, a)) >= 0)
		return at;
	if (m->count == CMAP_MAX)
		return -ENOSPC;
	for (at = 0; at < m->count && strcmp(m->node[at].addr, a) < 0; at++)
		;
	memmove(&m->node[at + 1], &m->node[at], (size_t)(m->count - at) * sizeof(m->node[0]));
	m->count++;
	m->node[at].id = id;
	m->node[at].flags = flags;
	memcpy(m->node[at].addr, a, len + 1);
	return at;
}

static void drop(struct cmap *m, int at)
{
	memmove(&m->node[at], &m->node[at + 1], (size_t)(m->count - at - 1) * sizeof(m->node[0]));
	m->count--;
}

/* Adds a node of a bootstrap list; 0, or -EINVAL / -ENOSPC said in err. */
static int boot_add(struct cmap *m, const char *a, size_t len, uint32_t id, int max_members,
		    char *err, size_t errcap)
{
	if (!cmap_addr_ok(a, len)) {
		snprintf(err, errcap, "bad node address '%.*s' (want HOST:PORT)", (int)len, a);
		return -EINVAL;
	}
	if (insert(m, a, len, id, CMAP_FLAGS) < 0 || cmap_count(m, CMAP_MEMBER) > max_members) {
		snprintf(err, errcap, "more than %d nodes", max_members);
		return -ENOSPC;
	}
	return 0;
}

int cmap_bootstrap(struct cmap *m, const char *self, uint32_t self_id, const char *peers,
		   int max_members, char *err, size_t errcap)
{
	int rc;

	cmap_init(m);
	rc = boot_add(m, self, strlen(self), self_id, max_members, err, errcap);
	for (const char *s = peers; rc == 0 && s && *s;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (len)
			rc = boot_add(m, s, len, 0, max_members, err, errcap);
		s += len + (comma ? 1 : 0);
	}
	return rc;
}

uint64_t cmap_digest(const struct cmap *m)
{
	XXH3_state_t st;
	uint8_t b[17];

	XXH3_64bits_reset(&st);
	put_le64(b, m->epoch);
	put_le64(b + 8, m->cluster_id);
	XXH3_64bits_update(&st, b, 16);
	for (int i = 0; i < m->count; i++) {
		b[0] = m->node[i].flags;
		XXH3_64bits_update(&st, b, 1);
		XXH3_64bits_update(&st, m->node[i].addr, strlen(m->node[i].addr) + 1);
	}
	return XXH3_64bits_digest(&st);
}

void cmap_promote(struct cmap *m)
{
	m->epoch = 1;
	m->cluster_id = 0;
	m->cluster_id = cmap_digest(m) | 1; /* never 0, which means provisional */
}

int cmap_add(struct cmap *m, const char *addr, uint32_t id, int max_members)
{
	size_t len = strlen(addr);
	int at = cmap_find(m, addr);

	if (!cmap_addr_ok(addr, len))
		return -EINVAL;
	if (at >= 0 && (m->node[at].flags & CMAP_MEMBER))
		return -EEXIST;
	if (cmap_count(m, CMAP_MEMBER) >= max_members)
		return -ENOSPC;
	if (at < 0 && (at = insert(m, addr, len, id, 0)) < 0)
		return at;
	m->node[at].flags |= CMAP_MEMBER;
	if (id)
		m->node[at].id = id;
	m->epoch++;
	return 0;
}

int cmap_remove(struct cmap *m, const char *addr)
{
	int at = cmap_find(m, addr);

	if (at < 0 || !(m->node[at].flags & CMAP_MEMBER))
		return -ENOENT;
	if (cmap_count(m, CMAP_MEMBER) == 1)
		return -EINVAL;
	m->node[at].flags &= (uint8_t)~CMAP_MEMBER;
	if (!m->node[at].flags)
		drop(m, at); /* added and removed before it owned anything */
	m->epoch++;
	return 0;
}

bool cmap_settled(const struct cmap *m)
{
	for (int i = 0; i < m->count; i++)
		if (m->node[i].flags != CMAP_FLAGS)
			return false;
	return true;
}

void cmap_settle(struct cmap *m)
{
	for (int i = m->count - 1; i >= 0; i--) {
		if (m->node[i].flags & CMAP_MEMBER)
			m->node[i].flags = CMAP_FLAGS;
		else
			drop(m, i);
	}
	m->epoch++;
}

/* Whether a and b name the same nodes in the same states. */
static bool same_nodes(const struct cmap *a, const struct cmap *b)
{
	if (a->count != b->count || a->cluster_id != b->cluster_id)
		return false;
	for (int i = 0; i < a->count; i++)
		if (a->node[i].flags != b->node[i].flags ||
		    strcmp(a->node[i].addr, b->node[i].addr) != 0)
			return false;
	return true;
}

int cmap_merge(struct cmap *local, const struct cmap *in)
{
	if (in->epoch == 0)
		return 0;
	if (local->epoch > 0 && in->cluster_id != local->cluster_id)
		return -EXDEV;
	if (in->epoch > local->epoch) {
		*local = *in;
		return 1;
	}
	if (in->epoch < local->epoch)
		return 0;
	if (!same_nodes(local, in)) {
		if (cmap_digest(in) <= cmap_digest(local))
			return 0;
		*local = *in;
		return 1;
	}
	int changed = 0;
	for (int i = 0; i < local->count; i++)
		if (!local->node[i].id && in->node[i].id) {
			local->node[i].id = in->node[i].id;
			changed = 1;
		}
	return changed;
}

size_t cmap_encode(const struct cmap *m, uint8_t *out, size_t cap)
{
	size_t len = WIRE_HDR + 8;

	for (int i = 0; i < m->count; i++)
		len += 6 + strlen(m->node[i].addr);
	if (len > cap)
		return 0;
	memcpy(out, WIRE_MAGIC, 8);
	put_le32(out + 8, CMAP_VERSION);
	put_le32(out + 12, (uint32_t)m->count);
	put_le64(out + 16, m->epoch);
	put_le64(out + 24, m->cluster_id);
	size_t pos = WIRE_HDR;
	for (int i = 0; i < m->count; i++) {
		size_t al = strlen(m->node[i].addr);
		put_le32(out + pos, m->node[i].id);
		out[pos + 4] = m->node[i].flags;
		out[pos + 5] = (uint8_t)al;
		memcpy(out + pos + 6, m->node[i].addr, al);
		pos += 6 + al;
	}
	put_le64(out + pos, XXH3_64bits(out, pos));
	return pos + 8;
}

int cmap_decode(const uint8_t *in, size_t len, struct cmap *out)
{
	if (len < WIRE_HDR + 8 || len > CMAP_WIRE_MAX || memcmp(in, WIRE_MAGIC, 8) != 0 ||
	    get_le32(in + 8) != CMAP_VERSION)
		return -EBADMSG;
	if (get_le64(in + len - 8) != XXH3_64bits(in, len - 8))
		return -EBADMSG;
	uint32_t count = get_le32(in + 12);
	if (count > CMAP_MAX)
		return -EBADMSG;
	out->epoch = get_le64(in + 16);
	out->cluster_id = get_le64(in + 24);
	out->count = 0;
	if ((out->epoch == 0) != (out->cluster_id == 0))
		return -EBADMSG;
	size_t pos = WIRE_HDR, end = len - 8;
	for (uint32_t i = 0; i < count; i++) {
		if (end - pos < 6)
			return -EBADMSG;
		uint8_t flags = in[pos + 4], al = in[pos + 5];
		if (al > end - pos - 6 || !cmap_addr_ok((const char *)in + pos + 6, al) ||
		    (flags & ~CMAP_FLAGS) || !flags)
			return -EBADMSG;
		struct cmap_node *n = &out->node[i];
		n->id = get_le32(in + pos);
		n->flags = flags;
		memcpy(n->addr, in + pos + 6, al);
		n->addr[al] = 0;
		if (i > 0 && strcmp(out->node[i - 1].addr, n->addr) >= 0)
			return -EBADMSG;
		out->count = (int)i + 1;
		pos += 6 + (size_t)al;
	}
	return pos == end ? 0 : -EBADMSG;
}

/* ---- DATA_DIR/cluster.map ---- */

static void file_path(const char *dir, const char *suffix, char *out, size_t cap)
{
	snprintf(out, cap, "%s/cluster.map%s", dir, suffix);
}

int cmap_file_decode(const uint8_t *in, size_t len, struct cmap *m, struct cmap_local *l)
{
	if (len < FILE_HDR + 1 + 4 + 8 || memcmp(in, FILE_MAGIC, 8) != 0 ||
	    get_le32(in + 8) != CMAP_VERSION || get_le64(in + len - 8) != XXH3_64bits(in, len - 8))
		return -EBADMSG;
	memset(l, 0, sizeof(*l));
	l->replicas = get_le32(in + 12);
	l->done_epoch = get_le64(in + 16);
	l->work_epoch = get_le64(in + 24);
	memcpy(l->pulled, in + 32, sizeof(l->pulled));
	size_t sl = in[FILE_HDR], pos = FILE_HDR + 1, end = len - 8;
	if (sl > end - pos || (sl && !cmap_addr_ok((const char *)in + pos, sl)))
		return -EBADMSG;
	memcpy(l->self, in + pos, sl);
	l->self[sl] = 0;
	pos += sl;
	if (end - pos < 4)
		return -EBADMSG;
	uint32_t ml = get_le32(in + pos);
	pos += 4;
	if (ml != end - pos)
		return -EBADMSG;
	return cmap_decode(in + pos, ml, m);
}

int cmap_file_load(const char *data_dir, struct cmap *m, struct cmap_local *l)
{
	char path[4200];
	size_t cap = FILE_HDR + 1 + CMAP_ADDR_MAX + 4 + CMAP_WIRE_MAX + 8, len = 0;
	uint8_t *buf = malloc(cap + 1);
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	file_path(data_dir, "", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return -errno;
	}
	for (;;) {
		ssize_t r = read(fd, buf + len, cap + 1 - len);
		if (r < 0) {
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > cap) {
			rc = -EBADMSG;
			break;
		}
	}
	close(fd);
	if (rc == 0)
		rc = cmap_file_decode(buf, len, m, l);
	free(buf);
	return rc;
}

int cmap_file_save(const char *data_dir, const struct cmap *m, const struct cmap_local *l)
{
	size_t cap = FILE_HDR + 1 + CMAP_ADDR_MAX + 4 + CMAP_WIRE_MAX + 8;
	uint8_t *buf = calloc(1, cap);
	char path[4200], tmp[4200];
	size_t sl = strlen(l->self), pos, ml;
	int fd, rc = 0;

	if (!buf)
		return -ENOMEM;
	memcpy(buf, FILE_MAGIC, 8);
	put_le32(buf + 8, CMAP_VERSION);
	put_le32(buf + 12, l->replicas);
	put_le64(buf + 16, l->done_epoch);
	put_le64(buf + 24, l->work_epoch);
	memcpy(buf + 32, l->pulled, sizeof(l->pulled));
	buf[FILE_HDR] = (uint8_t)sl;
	memcpy(buf + FILE_HDR + 1, l->self, sl);
	pos = FILE_HDR + 1 + sl;
	ml = cmap_encode(m, buf + pos + 4, cap - pos - 4 - 8);
	put_le32(buf + pos, (uint32_t)ml);
	pos += 4 + ml;
	put_le64(buf + pos, XXH3_64bits(buf, pos));
	pos += 8;
	file_path(data_dir, "", path, sizeof(path));
	file_path(data_dir, ".tmp", tmp, sizeof(tmp));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
	} else {
		if (write(fd, buf, pos) != (ssize_t)pos)
			rc = errno ? -errno : -ENOSPC;
		if (rc == 0 && fsync(fd) < 0)
			rc = -errno;
		close(fd);
		if (rc == 0 && rename(tmp, path) < 0)
			rc = -errno;
		if (rc < 0)
			unlink(tmp);
	}
	if (rc == 0 && (fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	free(buf);
	return rc;
}
