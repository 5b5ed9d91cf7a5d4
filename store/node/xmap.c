/*
 * xmap - the client side of the map exchange: `xmap [BYTES]` with the map
 * offered, answered by the node's own map and what it says of itself
 * (docs/PROTOCOL.md, "xmap"). Gossip, `caskfs cluster` and `caskfs sync`
 * all talk through here. The reply is read through client.c's framing, so
 * a malformed one only fails this call.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "cmap.h"

int cmap_exchange(struct mc_conn *conn, const struct cmap *push, struct cmap *out,
		  struct cmap_peer_info *info)
{
	uint8_t *enc = NULL;
	size_t elen = 0;
	char head[40], self[CMAP_ADDR_MAX + 2], *line;
	size_t len;
	int rc;

	if (push) {
		enc = malloc(CMAP_WIRE_MAX);
		if (!enc)
			return -ENOMEM;
		elen = cmap_encode(push, enc, CMAP_WIRE_MAX);
		snprintf(head, sizeof(head), "xmap %zu\r\n", elen);
		struct iovec iov[3] = { { head, strlen(head) }, { enc, elen }, { "\r\n", 2 } };
		rc = mc_send(conn, iov, 3);
	} else {
		struct iovec iov[1] = { { "xmap\r\n", 6 } };
		rc = mc_send(conn, iov, 1);
	}
	free(enc);
	if (rc < 0 || (rc = mc_line(conn, &line, &len)) < 0)
		return rc;
	uint32_t id, replicas;
	uint64_t done, bytes;
	if (strncmp(line, "SERVER_ERROR another cluster", 28) == 0)
		return -EXDEV;
	if (sscanf(line, "MAP %256s %" SCNu32 " %" SCNu64 " %" SCNu32 " %" SCNu64, self, &id, &done,
		   &replicas, &bytes) != 5)
		return strncmp(line, "MAP ", 4) == 0 ? -EPROTO : -EIO;
	if (bytes > CMAP_WIRE_MAX)
		return -EPROTO;
	uint8_t *buf = malloc(bytes ? bytes : 1);
	if (!buf)
		return -ENOMEM;
	rc = mc_block(conn, buf, bytes);
	if (rc == 0)
		rc = mc_line(conn, &line, &len);
	if (rc == 0 && strcmp(line, "END") != 0)
		rc = -EPROTO;
	if (rc == 0 && cmap_decode(buf, bytes, out) < 0)
		rc = -EPROTO;
	free(buf);
	if (rc == 0 && info) {
		size_t sl = strcmp(self, "-") ? strnlen(self, CMAP_ADDR_MAX) : 0;
		memcpy(info->self, self, sl);
		info->self[sl] = 0;
		info->id = id;
		info->done_epoch = done;
		info->replicas = replicas;
	}
	return rc;
}
