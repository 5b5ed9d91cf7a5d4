/*
 * sync_ep - one side of the tree walk of sync.c: a node asked over the node
 * protocol (`get @PATH` and `mtree PATH` for a tree node's children or a leaf
 * bucket's records, `xget` and `mget` for a record, `xset` and `mput` to write
 * one), or a DATA_DIR opened here, or this mount's own store and namespace.
 * The text replies are parsed here, so the walk sees the same tree nodes and
 * records from every kind of side. Commands: docs/PROTOCOL.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sync_i.h"
#include "store/node/client.h"

static void hexpath(const uint8_t *path, int depth, char *out)
{
	for (int i = 0; i < depth; i++)
		out[i] = "0123456789abcdef"[path[i]];
	out[depth] = 0;
}

static int remote_text(struct fs_sync_ep *e, enum fs_sync_kind k, const uint8_t *path, int depth,
		       char **text, size_t *len)
{
	char cmd[32], hp[8];
	void *val;
	int rc;

	hexpath(path, depth, hp);
	if (k == FS_SYNC_DATA)
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

int fs_sync_ep_children(struct fs_sync_ep *e, enum fs_sync_kind k, const uint8_t *path, int depth,
			struct store_tree_node *self, struct store_tree_node kids[16])
{
	if (!e->conn) {
		if (k == FS_SYNC_META && !e->m)
			return -ENOENT;
		return k == FS_SYNC_DATA ? store_tree_children(e->s, path, depth, self, kids)
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

static int list_add(struct fs_sync_reclist *l, const uint8_t *key, size_t klen,
		    const struct store_version *v, uint64_t hash, bool tomb)
{
	if (klen == 0 || klen > FS_SYNC_TK_MAX)
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct fs_sync_rec *r = realloc(l->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		l->r = r;
		l->cap = cap;
	}
	struct fs_sync_rec *r = &l->r[l->n++];
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

int fs_sync_ep_bucket(struct fs_sync_ep *e, enum fs_sync_kind k, const uint8_t *path,
		      struct fs_sync_reclist *l)
{
	l->n = 0;
	if (!e->conn)
		return k == FS_SYNC_DATA ? store_tree_bucket(e->s, path, data_rec, l)
					 : meta_tree_bucket(e->m, path, meta_rec, l);
	char *text, *line, *save = NULL;
	size_t len;
	int rc = remote_text(e, k, path, STORE_TREE_DEPTH, &text, &len);

	if (rc < 0)
		return rc;
	for (line = strtok_r(text, "\n", &save); line && rc == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char key[2 * FS_SYNC_TK_MAX + 1], t[2] = "";
		struct store_version v;
		uint64_t h;
		if (sscanf(line, "%544s %" SCNu64 " %" SCNu32 " %" SCNx64 " %1s", key, &v.stamp,
			   &v.node, &h, t) < 4)
			continue;
		if (k == FS_SYNC_DATA) {
			rc = list_add(l, (const uint8_t *)key, strlen(key), &v, h, t[0] == 'T');
		} else {
			uint8_t tk[FS_SYNC_TK_MAX];
			size_t hl = strlen(key);
			if (hl % 2 == 0 && hl / 2 <= FS_SYNC_TK_MAX &&
			    auth_unhex(key, hl, tk, hl / 2))
				rc = list_add(l, tk, hl / 2, &v, h, t[0] == 'T');
		}
	}
	free(text);
	return rc;
}

/* A record's full content: data as (value, version, tombstone), meta as the
 * wire record in val. */
int fs_sync_ep_get(struct fs_sync_ep *e, enum fs_sync_kind k, const struct fs_sync_rec *r,
		   void **val, size_t *vlen, struct store_meta *m)
{
	int rc;

	*val = NULL;
	*vlen = 0;
	if (k == FS_SYNC_DATA) {
		if (e->conn)
			return mc_xget(e->conn, r->key, r->klen, val, vlen, m);
		rc = store_get(e->s, r->key, r->klen, val, vlen, m);
		return rc == -ENOENT && m->tombstone ? 0 : rc;
	}
	if (e->conn) {
		char cmd[8 + 2 * FS_SYNC_TK_MAX];
		memcpy(cmd, "mget ", 5);
		auth_hex(r->key, r->klen, cmd + 5);
		return mc_fetch(e->conn, cmd, val, vlen);
	}
	return meta_get_record(e->m, r->key, r->klen, (uint8_t **)val, vlen);
}

int fs_sync_ep_put(struct fs_sync_ep *e, enum fs_sync_kind k, const struct fs_sync_rec *r,
		   const void *val, size_t vlen, const struct store_meta *m)
{
	char err[256], *line;
	size_t len;
	int rc;

	if (k == FS_SYNC_DATA) {
		if (!e->conn) {
			rc = store_apply_attr(e->s, r->key, r->klen, val, vlen, &m->version,
					      m->tombstone, &m->attr);
			return rc < 0 ? rc : 0;
		}
		rc = mc_xset_send(e->conn, r->key, r->klen, val, vlen, &m->version, m->tombstone,
				  &m->attr);
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

int fs_sync_ep_open(struct fs_sync_ep *e, const char *target, const struct auth_key *key,
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
		store_options_init(&o);
		o.no_background = true;
		rc = store_open(target, &o, &e->s);
		if (rc < 0) {
			if (rc == -EBUSY)
				fprintf(stderr,
					"caskfs sync: %s is in use: sync a running node by "
					"its HOST:PORT\n",
					target);
			return rc;
		}
		e->owned = true;
		return need_meta ? fs_datadir_open_meta(target, e->s, &e->m) : 0;
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

void fs_sync_ep_close(struct fs_sync_ep *e)
{
	mc_close(e->conn);
	if (e->owned) {
		meta_close(e->m);
		store_close(e->s);
	}
	memset(e, 0, sizeof(*e));
}
