/*
 * fuzz_proto - libFuzzer harness for the node protocol's request parser
 * (store/node/proto.c), fed the way the server feeds it: the input is a byte
 * stream, parsed request after request, with refused values swallowed. The
 * stream sits in a buffer of its exact size, so any read past what was
 * received is caught by AddressSanitizer; the invariants the server relies on
 * (progress, bounds, keys valid, a value block inside the input, the meta
 * flags' tokens inside the line) are checked with __builtin_trap(). Seeds
 * (tests/fuzz/seeds-proto) cover every command, the meta ones included.
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
		switch (r.cmd) {
		case PROTO_SET:
		case PROTO_ADD:
		case PROTO_REPLACE:
		case PROTO_APPEND:
		case PROTO_PREPEND:
		case PROTO_CAS:
		case PROTO_XSET:
		case PROTO_MS:
		case PROTO_XOP:
			/* a value block: whole, inside what was received, key valid */
			check(proto_key_ok(r.key, r.key_len));
			check(r.data_len <= PROTO_VALUE_MAX);
			check((const char *)r.data + r.data_len + 2 == end);
			check(r.cmd != PROTO_CAS || r.has_cas);
			check(r.cmd != PROTO_XOP || (r.mode && r.mode + r.mode_len <= end));
			check(r.cmd != PROTO_MS || strchr("SEAPR", r.meta.mode));
			check(!r.tombstone || r.data_len == 0);
			break;
		case PROTO_DELETE:
		case PROTO_INCR:
		case PROTO_DECR:
		case PROTO_TOUCH:
		case PROTO_MG:
		case PROTO_MD:
			check(proto_key_ok(r.key, r.key_len) && r.key + r.key_len <= end);
			break;
		default:
			break;
		}
		if (r.cmd == PROTO_MG || r.cmd == PROTO_MS || r.cmd == PROTO_MD) {
			check(r.meta.nret <= sizeof(r.meta.ret));
			check(r.meta.opaque_len <= 32);
			check(!r.meta.opaque_len || r.meta.opaque + r.meta.opaque_len <= end);
		}
		if (r.exptime < -((int64_t)1 << 62) || r.exptime > ((int64_t)1 << 62))
			__builtin_trap();
		if (r.cmd == PROTO_ERROR || r.cmd == PROTO_SWALLOW)
			check(r.error && r.error[0]);
		if (r.cmd == PROTO_GET || r.cmd == PROTO_GETS || r.cmd == PROTO_XGET ||
		    r.cmd == PROTO_GAT || r.cmd == PROTO_GATS) {
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
