/*
 * progress - a one-line progress bar on stderr for the long commands (sync,
 * fsck, gc, bench), drawn only when stderr is a terminal and at most ten
 * times a second; otherwise nothing, so the output stays machine-readable.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common_i.h"

void progress_start(struct progress *p, const char *label, uint64_t total)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->total = total;
	p->tty = isatty(STDERR_FILENO);
	progress_step(p, 0);
}

void progress_step(struct progress *p, uint64_t done)
{
	double t = fs_now_seconds();

	p->done = done;
	if (!p->tty || (t - p->last < 0.1 && done < p->total))
		return;
	p->last = t;
	if (p->total) {
		int width = 30, fill = (int)((double)width * (double)done / (double)p->total);
		if (fill > width)
			fill = width;
		fprintf(stderr, "\r%-20s [%.*s%*s] %3d%% ", p->label, fill,
			"##############################", width - fill, "",
			(int)(100.0 * (double)done / (double)p->total));
	} else {
		fprintf(stderr, "\r%-20s %llu ", p->label, (unsigned long long)done);
	}
	p->shown = true;
}

void progress_end(struct progress *p)
{
	if (p->tty && p->shown)
		fprintf(stderr, "\r%*s\r", 60, "");
	p->shown = false;
}
