/*
 * options - the defaults of struct store_options and the names of the sync
 * modes, as store.h documents them. store_open() checks the options; this
 * file only fills and names them, so tools can parse a --sync flag without
 * opening a store.
 */
#include <errno.h>
#include <string.h>

#include "../store.h"

void store_options_init(struct store_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->node_id = 1;
	opt->sync = STORE_SYNC_BATCH;
	opt->segment_size = 256ull << 20;
	opt->batch_interval_ms = 10;
	opt->compact_live_ratio = 0.5;
	opt->compact_interval_ms = 1000;
	opt->compress_level = 1;
	opt->map_resident_max = 256ull << 20;
}

int store_sync_mode_parse(const char *name, enum store_sync_mode *mode)
{
	if (strcmp(name, "batch") == 0)
		*mode = STORE_SYNC_BATCH;
	else if (strcmp(name, "always") == 0)
		*mode = STORE_SYNC_ALWAYS;
	else if (strcmp(name, "none") == 0)
		*mode = STORE_SYNC_NONE;
	else
		return -EINVAL;
	return 0;
}

const char *store_sync_mode_name(enum store_sync_mode mode)
{
	switch (mode) {
	case STORE_SYNC_ALWAYS:
		return "always";
	case STORE_SYNC_NONE:
		return "none";
	default:
		return "batch";
	}
}
