/*
 * tls - the --tls-cert, --tls-key and --tls-ca options of the commands that
 * reach nodes: taken while main.c parses argv, then turned into the
 * process's TLS towards nodes (mc_tls_init()). Named like memcached's.
 * docs/USAGE.md, docs/PROTOCOL.md ("TLS").
 */
#include <getopt.h>

#include "cli_i.h"
#include "store/node/client.h"

bool cli_tls_opt(int c, struct tls_files *f)
{
	if (c == 1020)
		f->cert = optarg;
	else if (c == 1021)
		f->key = optarg;
	else if (c == 1022)
		f->ca = optarg;
	else
		return false;
	return true;
}

int cli_tls_setup(const struct tls_files *f, char *err, size_t errcap)
{
	return tls_files_given(f) ? mc_tls_init(f, err, errcap) : 0;
}
