/*
 * datadir - a DATA_DIR opened by a command (gc, fsck, status, sync) while
 * no node holds it: the namespace beside the store, when the DATA_DIR has
 * one (a mount's does; a `caskfs serve` node's holds only objects). Layout
 * of a DATA_DIR: DESIGN.md ("DATA_DIR").
 */
#include <stdio.h>
#include <sys/stat.h>

#include "common_i.h"

int fs_datadir_open_meta(const char *dir, struct store *s, struct meta **out)
{
	char path[4200];
	struct stat st;
	struct store_stats ss;

	*out = NULL;
	snprintf(path, sizeof(path), "%s/meta", dir);
	if (stat(path, &st) < 0)
		return 0;
	store_stats(s, &ss);
	return meta_open(dir, ss.node_id ? ss.node_id : 1, store_clock(s), out);
}
