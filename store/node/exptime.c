/*
 * exptime - memcached's EXPTIME rule, turned into the absolute expiry time
 * the store keeps (struct store_attr): 0 never; up to 30 days, seconds from
 * now; beyond, a unix time; negative, already expired. The one idea: the
 * node that receives the request applies the rule once, and from there on
 * only absolute times travel (xset E, xop), so replicas and deciders never
 * apply it again with another clock. docs/PROTOCOL.md ("Standard commands").
 */
#include <stdint.h>
#include <time.h>

#include "server_i.h"

uint32_t server_expires(const struct server *srv, int64_t exptime)
{
	if (srv->no_expiry || exptime == 0)
		return 0; /* the common case: no clock read */
	if (exptime < 0)
		return 1; /* long past: expired at once */
	if (exptime <= SERVER_RELATIVE_MAX)
		exptime += (int64_t)time(NULL);
	return exptime > UINT32_MAX ? UINT32_MAX : (uint32_t)exptime;
}
