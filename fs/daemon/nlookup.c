/*
 * nlookup - how many lookups of each inode the kernel holds. Every entry
 * this mount hands out (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE, an
 * entry of READDIRPLUS) is one; a FORGET gives back the number it says.
 * Only when an inode's count reaches zero does the kernel no longer know it,
 * and only then may buffered writes be settled and an unlinked inode be
 * purged (ops_name.c: forget_one). A FORGET for an inode's earlier life can
 * reach the daemon after a LOOKUP that found it again: counted, the newer
 * lookup keeps it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "daemon_i.h"

struct fs_nlookup_entry {
	struct fs_ino_node node; /* ino, in the table */
	uint64_t count;
};

/* With t->mu held. */
static struct fs_nlookup_entry *entry_of(struct fs_nlookup *t, uint64_t ino)
{
	struct fs_ino_node *n = fs_ino_find(&t->table, ino);

	return n ? fs_container_of(n, struct fs_nlookup_entry, node) : NULL;
}

int fs_nlookup_add(struct fs_nlookup *t, uint64_t ino)
{
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	struct fs_nlookup_entry *e = entry_of(t, ino);
	if (e) {
		e->count++;
	} else if ((e = malloc(sizeof(*e))) == NULL) {
		rc = -ENOMEM;
	} else {
		e->node.ino = ino;
		e->count = 1;
		rc = fs_ino_insert(&t->table, &e->node);
		if (rc)
			free(e);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

bool fs_nlookup_forget(struct fs_nlookup *t, uint64_t ino, uint64_t n)
{
	bool gone = false;

	pthread_mutex_lock(&t->mu);
	struct fs_nlookup_entry *e = entry_of(t, ino);
	if (e && e->count > n) {
		e->count -= n;
	} else if (e) {
		fs_ino_remove(&t->table, &e->node);
		gone = true;
	}
	pthread_mutex_unlock(&t->mu);
	if (gone)
		free(e);
	/* unknown: handed out before a failed count (ENOMEM), forgotten now */
	return gone || !e;
}

uint64_t fs_nlookup_count(struct fs_nlookup *t, uint64_t ino)
{
	pthread_mutex_lock(&t->mu);
	struct fs_nlookup_entry *e = entry_of(t, ino);
	uint64_t count = e ? e->count : 0;
	pthread_mutex_unlock(&t->mu);
	return count;
}

void fs_nlookup_free(struct fs_nlookup *t)
{
	struct fs_ino_node *n = fs_ino_next(&t->table, NULL);

	while (n) {
		struct fs_ino_node *next = fs_ino_next(&t->table, n);
		free(fs_container_of(n, struct fs_nlookup_entry, node));
		n = next;
	}
	fs_ino_table_free(&t->table);
}
