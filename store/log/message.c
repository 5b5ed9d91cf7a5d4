/*
 * message - how the engine reports: every message goes through the caller's
 * log callback (struct store_options), or to stderr for warnings and worse
 * when there is none. Keys are shown escaped and cut short, so a message is
 * one printable line whatever the key holds. This file calls nothing else in
 * the engine: every other file may report through it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "store_i.h"

const char *store_key_repr(const void *key, size_t klen, char *buf, size_t size)
{
	const unsigned char *k = key;
	size_t o = 0;

	for (size_t i = 0; i < klen && i < 120 && o + 5 < size; i++) {
		if (k[i] >= 0x21 && k[i] < 0x7f && k[i] != '\\')
			buf[o++] = (char)k[i];
		else
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", k[i]);
	}
	if (klen > 120 && o + 4 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

void store_logf(struct store *s, enum store_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->opt.log)
		s->opt.log(s->opt.log_arg, level, msg);
	else if (level <= STORE_LOG_WARN)
		fprintf(stderr, "caskfs: store %s: %s\n", s->dir, msg);
}
