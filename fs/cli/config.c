/*
 * config - DATA_DIR/node.conf: "name = value" lines (# comments, blank lines)
 * naming the long options of mount and serve, e.g. "listen = 10.0.0.1:7700",
 * turned into "--name=value" arguments put in front of the command line's
 * own (cli_config_argv(), for main.c). An option without an argument is "--name" whatever
 * its value says ("writeback" or "writeback = yes"). docs/USAGE.md
 * ("Cluster options").
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_i.h"

int cli_config_parse(FILE *f, const char *path, const struct option *opts, char **out, int cap,
		     int *n, char *err, size_t errcap)
{
	char line[4096];
	int lineno = 0;

	*n = 0;
	while (fgets(line, sizeof(line), f) && *n < cap) {
		char *p = line, *eq, *end;
		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || !*p)
			continue;
		end = p + strlen(p);
		while (end > p && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = 0;
		eq = strchr(p, '=');
		char *name = p, *value = NULL;
		if (eq) {
			value = eq + 1;
			while (*value == ' ' || *value == '\t')
				value++;
			while (eq > p && (eq[-1] == ' ' || eq[-1] == '\t'))
				eq--;
			*eq = 0;
		}
		const struct option *o = opts;
		while (o->name && strcmp(o->name, name) != 0)
			o++;
		if (!o->name || strcmp(name, "help") == 0) {
			snprintf(err, errcap, "%s:%d: unknown setting '%s'", path, lineno, name);
			return -EINVAL;
		}
		size_t len = strlen(name) + (value ? strlen(value) : 0) + 4;
		char *arg = malloc(len);
		if (!arg)
			break;
		if (o->has_arg == no_argument)
			snprintf(arg, len, "--%s", name);
		else
			snprintf(arg, len, "--%s=%s", name, value ? value : "");
		out[(*n)++] = arg;
	}
	return 0;
}

/*
 * DATA_DIR/node.conf names the long options of mount and serve, e.g.
 * "listen = 10.0.0.1:7700". Its settings are put in front of the command
 * line's own options, so the command line wins.
 */
char **cli_config_argv(int *argc, char **argv, const struct option *opts, const char *optstring,
		       char *err, size_t errcap)
{
	char path[4200];
	int c, n = 0, settings = 0;

	/* a first pass only to find DATA_DIR (getopt moves operands to the end) */
	opterr = 0;
	while ((c = getopt_long(*argc, argv, optstring, opts, NULL)) != -1)
		;
	opterr = 1;
	int data_at = optind;
	optind = 0; /* the real parse starts over */
	if (data_at >= *argc)
		return argv;
	snprintf(path, sizeof(path), "%s/node.conf", argv[data_at]);
	FILE *f = fopen(path, "r");
	if (!f)
		return argv;
	char **out = calloc((size_t)*argc + 256, sizeof(char *));
	if (!out) {
		fclose(f);
		return argv;
	}
	out[n++] = argv[0];
	if (cli_config_parse(f, path, opts, out + n, 249, &settings, err, errcap) < 0) {
		fclose(f);
		free(out);
		return NULL;
	}
	n += settings;
	fclose(f);
	for (int i = 1; i < *argc; i++)
		out[n++] = argv[i];
	*argc = n;
	return out;
}
