/*
 * mountinfo - what is mounted at a path, from /proc/self/mountinfo: the mount
 * point is field 5; after the " - " separator come the type and the source.
 * `caskfs mount` asks whether its mountpoint is busy, `caskfs bench` which
 * DATA_DIR a mount serves (the source of a caskfs mount names it).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common_i.h"

bool fs_mountinfo_lookup(const char *path, char *type, size_t tcap, char *source, size_t scap)
{
	char real[PATH_MAX], line[8192];
	FILE *f;
	bool found = false;

	if (!realpath(path, real))
		return false;
	f = fopen("/proc/self/mountinfo", "r");
	while (f && !found && fgets(line, sizeof(line), f)) {
		char point[PATH_MAX], t[64] = "", src[PATH_MAX] = "";
		char *dash = strstr(line, " - ");

		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || strcmp(point, real) != 0)
			continue;
		found = true;
		if (dash)
			sscanf(dash + 3, "%63s %4095s", t, src);
		if (type)
			snprintf(type, tcap, "%s", t);
		if (source)
			snprintf(source, scap, "%s", src);
	}
	if (f)
		fclose(f);
	return found;
}
