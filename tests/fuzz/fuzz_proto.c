/*
 * fuzz_proto - libFuzzer harness for the node protocol's request parser
 * (store/node/proto.c), fed the way the server feeds it: the input is a byte
 * stream, parsed request after request, with refused values swallowed. The
 * stream sits in a buffer of its exact size, so any read past what was
 * received is caught by AddressSanitizer; the invariants the server relies on
 * (progress, bounds, keys valid) are checked with __builtin_trap().
 * Run: make fuzz (FUZZ_SECONDS=N); make test runs it briefly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/node/proto.h"

static void check(int ok)
{
	if (!ok)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size ? size : 1);
	size_t pos = 0, swallow = 0;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	while (pos < size) {
		if (swallow) {
			size_t n = size - pos < swallow ? size - pos : swallow;
			pos += n;
			swallow -= n;
			continue;
		}
		struct proto_req r;
		long used = proto_parse(buf + pos, size - pos, &r);
		if (used <= 0) {
			check(used == 0 || size - pos >= PROTO_LINE_MAX);
			break;
		}
		check((size_t)used <= size - pos);
		const char *end = buf + pos + used;
		if (r.cmd == PROTO_SET || r.cmd == PROTO_ADD || r.cmd == PROTO_REPLACE ||
		    r.cmd == PROTO_XSET) {
			check(proto_key_ok(r.key, r.key_len));
			check(r.data_len <= PROTO_VALUE_MAX);
			check((const char *)r.data + r.data_len + 2 == end);
		}
		if (r.cmd == PROTO_DELETE)
			check(proto_key_ok(r.key, r.key_len));
		if (r.cmd == PROTO_ERROR || r.cmd == PROTO_SWALLOW)
			check(r.error && r.error[0]);
		if (r.cmd == PROTO_GET || r.cmd == PROTO_GETS || r.cmd == PROTO_XGET) {
			const char *k;
			size_t kl, p = 0;
			int n = 0;
			while (proto_token(r.args, r.args_len, &p, &k, &kl)) {
				check(proto_key_ok(k, kl) && k + kl <= end);
				n++;
			}
			check(n > 0);
		}
		swallow = r.swallow;
		pos += (size_t)used;
	}
	free(buf);
	return 0;
}
