/*
 * nlookup - how many lookups of each inode the kernel holds. Every entry
 * this mount hands out (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK, CREATE, an
 * entry of READDIRPLUS) is one; a FORGET gives back the number it says.
 * Only when an inode's count reaches zero does the kernel no longer know it,
 * and only then may buffered writes be settled and an unlinked inode be
 * purged (ops.c: forget_one). A FORGET for an inode's earlier life can
 * reach the daemon after a LOOKUP that found it again: counted, the newer
 * lookup keeps it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "fs_i.h"

struct fs_nlookup_entry {
	uint64_t ino, count;
	struct fs_nlookup_entry *next;
};

/* With t->mu held (nbuckets > 0). */
static struct fs_nlookup_entry **nl_bucket(struct fs_nlookup *t, uint64_t ino)
{
	return &t->buckets[fs_ino_bucket(ino, t->nbuckets)];
}

/* With t->mu held: doubles the buckets (keeps the old ones on ENOMEM). */
static void nl_grow(struct fs_nlookup *t)
{
	size_t n = t->nbuckets ? 2 * t->nbuckets : 1024, oldn = t->nbuckets;
	struct fs_nlookup_entry **b = calloc(n, sizeof(*b)), **old = t->buckets;

	if (!b)
		return;
	t->buckets = b;
	t->nbuckets = n;
	for (size_t i = 0; i < oldn; i++) {
		for (struct fs_nlookup_entry *e = old[i], *next; e; e = next) {
			next = e->next;
			struct fs_nlookup_entry **to = nl_bucket(t, e->ino);
			e->next = *to;
			*to = e;
		}
	}
	free(old);
}

int fs_nlookup_add(struct fs_nlookup *t, uint64_t ino)
{
	int rc = 0;

	pthread_mutex_lock(&t->mu);
	if (t->n >= t->nbuckets)
		nl_grow(t);
	if (t->nbuckets == 0) {
		rc = -ENOMEM;
	} else {
		struct fs_nlookup_entry **p = nl_bucket(t, ino);
		while (*p && (*p)->ino != ino)
			p = &(*p)->next;
		if (*p) {
			(*p)->count++;
		} else if ((*p = malloc(sizeof(**p))) == NULL) {
			rc = -ENOMEM;
		} else {
			**p = (struct fs_nlookup_entry){ .ino = ino, .count = 1, .next = NULL };
			t->n++;
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

bool fs_nlookup_forget(struct fs_nlookup *t, uint64_t ino, uint64_t n)
{
	struct fs_nlookup_entry *gone = NULL;
	bool known = false;

	pthread_mutex_lock(&t->mu);
	if (t->nbuckets) {
		struct fs_nlookup_entry **p = nl_bucket(t, ino);
		while (*p && (*p)->ino != ino)
			p = &(*p)->next;
		if (*p) {
			known = true;
			if ((*p)->count > n) {
				(*p)->count -= n;
			} else {
				gone = *p;
				*p = gone->next;
				t->n--;
			}
		}
	}
	pthread_mutex_unlock(&t->mu);
	free(gone);
	/* unknown: handed out before a failed count (ENOMEM), forgotten now */
	return gone != NULL || !known;
}

uint64_t fs_nlookup_count(struct fs_nlookup *t, uint64_t ino)
{
	uint64_t count = 0;

	pthread_mutex_lock(&t->mu);
	if (t->nbuckets) {
		struct fs_nlookup_entry *e = *nl_bucket(t, ino);
		while (e && e->ino != ino)
			e = e->next;
		if (e)
			count = e->count;
	}
	pthread_mutex_unlock(&t->mu);
	return count;
}

void fs_nlookup_free(struct fs_nlookup *t)
{
	for (size_t i = 0; i < t->nbuckets; i++) {
		for (struct fs_nlookup_entry *e = t->buckets[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	t->nbuckets = t->n = 0;
}
