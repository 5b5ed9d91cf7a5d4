/*
 * open - the namespace's LMDB environment (DATA_DIR/meta/data.mdb) opened
 * and closed: its tables, a root directory when new, the outbox's next seq,
 * the names table when it was never built, and the orphans a crash left
 * (no process holds a file open across a restart, so they go now). docs/FORMAT.md ("Namespace").
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "meta_i.h"

#define MAP_SIZE (1ull << 38)

static int init_root(struct meta *m, MDB_txn *txn, void *arg)
{
	uint64_t next;
	MDB_val key, val;
	MDB_cursor *c;
	bool created;
	int rc;

	(void)arg;
	rc = meta_dir_ensure(m, txn, META_ROOT_INO, 0755, &created);
	if (rc == 0 && created)
		rc = meta_count_put(m, txn, META_ROOT_INO, 1, 0);
	if (rc == 0 && created)
		rc = meta_parent_put(m, txn, META_ROOT_INO, META_ROOT_INO);
	if (rc)
		return rc;
	if (meta_state_read(m, txn, "next_ino", &next) == -ENOENT) {
		rc = meta_state_write(m, txn, "next_ino",
				      ((uint64_t)m->node << META_INO_NODE_SHIFT) | 2);
		if (rc)
			return rc;
	}
	/* a namespace from before the names table gets it now, once */
	if ((rc = meta_names_build(m, txn)) != 0)
		return rc;
	/* No process holds files open across a restart: orphans can go. */
	rc = mdb_cursor_open(txn, m->orphans, &c);
	if (rc)
		return meta_errno(rc);
	while ((rc = mdb_cursor_get(c, &key, &val, MDB_FIRST)) == 0) {
		uint64_t ino = meta_get_be64(key.mv_data);
		mdb_cursor_close(c);
		rc = meta_orphan_purge(m, txn, ino);
		if (rc)
			return rc;
		rc = mdb_cursor_open(txn, m->orphans, &c);
		if (rc)
			return meta_errno(rc);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND ? 0 : meta_errno(rc);
}

int meta_open(const char *dir, uint32_t node_id, struct store_clock *clock, struct meta **out)
{
	struct meta *m;
	MDB_txn *txn;
	char path[4096];
	int rc;

	if (!dir || !clock || node_id == 0 || node_id > 0xFFFF)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->node = node_id;
	m->clock = clock;
	snprintf(path, sizeof(path), "%s/meta", dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		rc = -errno;
		fprintf(stderr, "caskfs: cannot create %s: %s\n", path, strerror(errno));
		free(m);
		return rc;
	}
	rc = mdb_env_create(&m->env);
	if (rc == 0)
		rc = mdb_env_set_maxdbs(m->env, 12);
	if (rc == 0)
		rc = mdb_env_set_mapsize(m->env, MAP_SIZE);
	if (rc == 0)
		rc = mdb_env_open(m->env, path, MDB_NOSYNC | MDB_NOTLS, 0644);
	if (rc == 0)
		rc = mdb_txn_begin(m->env, NULL, 0, &txn);
	if (rc) {
		fprintf(stderr, "caskfs: cannot open the namespace in %s: %s\n", path,
			mdb_strerror(rc));
		mdb_env_close(m->env);
		free(m);
		return meta_errno(rc);
	}
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = { { "inodes", &m->inodes },	{ "entries", &m->entries },
		    { "xattrs", &m->xattrs },	{ "counts", &m->counts },
		    { "parents", &m->parents }, { "orphans", &m->orphans },
		    { "state", &m->state },	{ "outbox", &m->outbox },
		    { "names", &m->names },	{ "folded", &m->folded } };
	for (size_t i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++)
		rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi);
	if (rc == 0) {
		/* the outbox continues after its last record */
		MDB_cursor *c;
		MDB_val k, v;
		rc = mdb_cursor_open(txn, m->outbox, &c);
		if (rc == 0) {
			if (mdb_cursor_get(c, &k, &v, MDB_LAST) == 0 && k.mv_size == 8)
				m->outbox_seq = meta_get_be64(k.mv_data);
			mdb_cursor_close(c);
		}
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	rc = meta_errno(rc);
	if (rc == 0)
		rc = meta_txn_write(m, init_root, NULL);
	if (rc == 0)
		rc = meta_sync(m);
	if (rc) {
		fprintf(stderr, "caskfs: cannot initialise the namespace in %s: %s\n", path,
			strerror(-rc));
		mdb_env_close(m->env);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

void meta_close(struct meta *m)
{
	if (!m)
		return;
	mdb_env_sync(m->env, 1);
	mdb_env_close(m->env);
	meta_tree_free(m);
	free(m);
}
