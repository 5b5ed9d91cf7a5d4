/*
 * hlc - versions and the hybrid logical clock that makes them (struct
 * store_version, struct store_clock in store.h). A version is (stamp, node);
 * the higher stamp wins, then the higher node id, everywhere. The clock is
 * lock-free: a compare-and-swap loop on one 64-bit word.
 */
#include <time.h>

#include "../store.h"

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t store_clock_now(struct store_clock *c)
{
	uint64_t wall = wall_ms() << 16;
	uint64_t old = atomic_load(&c->last);
	uint64_t next;

	do {
		next = wall > old ? wall : old + 1;
	} while (!atomic_compare_exchange_weak(&c->last, &old, next));
	return next;
}

void store_clock_observe(struct store_clock *c, uint64_t stamp)
{
	uint64_t old = atomic_load(&c->last);

	while (old < stamp && !atomic_compare_exchange_weak(&c->last, &old, stamp))
		;
}

int store_version_cmp(const struct store_version *a, const struct store_version *b)
{
	if (a->stamp != b->stamp)
		return a->stamp < b->stamp ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return 0;
}
