/*
 * status - `caskfs status DATA_DIR|HOST:PORT [--json]`: the report of
 * fs/common/status.c (which a mount's /.caskfs/status shares) on stdout.
 */
#include <stdio.h>

#include "cli_i.h"

int cli_status(const char *target, bool json, const char *secret)
{
	return fs_status_report(stdout, target, json, secret);
}
