/*
 * hlc - the hybrid logical clock that stamps records: wall-clock milliseconds
 * shifted left 16 bits, plus a counter in the low bits. A stamp is never lower
 * than any stamp this node has issued or observed, so a node's own writes are
 * always newer than what it has seen, even when its wall clock steps back.
 */
#ifndef CASKFS_STORE_HLC_I_H
#define CASKFS_STORE_HLC_I_H

#include <stdatomic.h>
#include <stdint.h>

struct store_hlc {
	_Atomic uint64_t last;
};

/* Returns a stamp greater than every stamp issued or observed before. */
uint64_t store_hlc_now(struct store_hlc *c);
/* Records that stamp exists, so later stamps are greater. */
void store_hlc_observe(struct store_hlc *c, uint64_t stamp);

#endif
