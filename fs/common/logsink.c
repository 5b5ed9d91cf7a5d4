/*
 * logsink - where a daemon's messages go. Every part writes one line per
 * message to stderr ("caskfs: ..."); with --syslog or --log-level, stderr
 * becomes a pipe that a thread reads, giving each line a level from what it
 * says (failures are errors; a peer down, a cut tail, a hint rebuilt are
 * warnings; the rest is information), dropping those under the chosen level
 * and passing the others to syslog or to the original stderr.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "common_i.h"

static int out_fd = -1; /* the original stderr, when not to syslog */
static bool to_syslog;
static int min_level = LOG_INFO;

int log_level_parse(const char *name, int *level)
{
	if (strcmp(name, "error") == 0)
		*level = LOG_ERR;
	else if (strcmp(name, "warn") == 0 || strcmp(name, "warning") == 0)
		*level = LOG_WARNING;
	else if (strcmp(name, "info") == 0)
		*level = LOG_INFO;
	else if (strcmp(name, "debug") == 0)
		*level = LOG_DEBUG;
	else
		return -EINVAL;
	return 0;
}

static int level_of(const char *line)
{
	/* checked first: expected trouble that heals itself */
	static const char *const warnings[] = { "is down", "retry", "kept as", "cut ",
						"rebuilt", "torn", "unreachable", "not equal",
						"missing", "hints" };
	static const char *const errors[] = { "cannot", "failed", "refused", "damaged",
					      "fails its", "error", "acknowledged, " };

	for (size_t i = 0; i < sizeof(warnings) / sizeof(warnings[0]); i++)
		if (strstr(line, warnings[i]))
			return LOG_WARNING;
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (strstr(line, errors[i]))
			return LOG_ERR;
	return LOG_INFO;
}

static void emit_line(const char *line)
{
	int level = level_of(line);

	if (level > min_level)
		return;
	if (to_syslog) {
		syslog(level, "%s", strncmp(line, "caskfs: ", 8) == 0 ? line + 8 : line);
		return;
	}
	static const char *const names[] = { [LOG_ERR] = "error", [LOG_WARNING] = "warn",
					     [LOG_INFO] = "info", [LOG_DEBUG] = "debug" };
	dprintf(out_fd, "%s [%s]\n", line, names[level] ? names[level] : "info");
}

static void *reader(void *arg)
{
	FILE *in = arg;
	char line[8192];

	while (fgets(line, sizeof(line), in)) {
		size_t n = strlen(line);
		if (n && line[n - 1] == '\n')
			line[n - 1] = 0;
		if (line[0])
			emit_line(line);
	}
	fclose(in);
	return NULL;
}

int log_setup(const char *ident, bool syslog_on, int level)
{
	int p[2];
	pthread_t t;

	if (!syslog_on && level == LOG_INFO)
		return 0; /* plain stderr, every line */
	to_syslog = syslog_on;
	min_level = level;
	if (syslog_on)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if ((out_fd = dup(STDERR_FILENO)) < 0)
		return -errno;
	if (pipe(p) < 0)
		return -errno;
	FILE *in = fdopen(p[0], "r");
	if (!in || dup2(p[1], STDERR_FILENO) < 0) {
		close(p[0]);
		close(p[1]);
		return -EIO;
	}
	close(p[1]);
	setvbuf(stderr, NULL, _IOLBF, 0);
	if (pthread_create(&t, NULL, reader, in) != 0)
		return -EAGAIN;
	pthread_detach(t);
	return 0;
}
