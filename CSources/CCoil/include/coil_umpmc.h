/*
 * coil_umpmc.h -- unbounded multi-producer multi-consumer queue of 64-bit words.
 *
 * A linked list of blocks of COIL_UMPMC_BLOCK_CAP slots (the segmented design of crossbeam's
 * SegQueue, written here in C11). It is the runtime's global inject queue.
 *
 * Protocol
 * --------
 * Indices: head.index and tail.index count positions in units of 2 (bit 0 of head.index is the
 * HAS_NEXT hint, bit 0 of tail.index is unused). Position p lies in block p / LAP at offset
 * p % LAP; offset LAP - 1 (== BLOCK_CAP) never holds a value: it marks "this block is full and
 * the next one is being installed".
 *
 * Fields:
 *   tail.index, tail.block   where the next push goes. Claimed by CAS on tail.index.
 *   head.index, head.block   where the next pop comes from. Claimed by CAS on head.index.
 *   block.next               set once, by the producer that claimed the block's last slot.
 *   slot.state               WRITE (value stored), READ (value taken), DESTROY (a destroyer
 *                            passed this slot while it was still being read).
 *   spare                    at most one empty block kept for reuse, so a queue whose length
 *                            stays within a few blocks allocates nothing in steady state.
 *
 * Rules:
 *   U1  A producer owns slot (block, offset) from its successful CAS of tail.index until it sets
 *       WRITE (release). The producer that claims offset BLOCK_CAP - 1 installs the next block:
 *       it stores tail.block, then tail.index (skipping the marker offset), then block.next.
 *       Other producers that see offset == BLOCK_CAP wait for that installation.
 *   U2  A consumer owns a slot from its successful CAS of head.index until it sets READ. It
 *       waits for WRITE (acquire) before reading the value. The consumer that claims the last
 *       slot moves head to the next block (waiting for block.next).
 *   U3  A consumer CASes head forward only after checking, behind a SeqCst fence, that tail is
 *       ahead of it: the queue never hands out a slot nobody has claimed to push.
 *   U4  A block is released exactly once, after every slot in it is READ: the consumer of the
 *       last slot starts destruction; destruction walks the slots and, meeting one still being
 *       read, marks it DESTROY and stops; that slot's consumer, seeing DESTROY when it sets
 *       READ, carries destruction on from the next slot.
 *   U5  Nobody dereferences a block without owning a slot in it (U1/U2) or being its
 *       destroyer, so a released block may be freed or reused as the spare at once.
 *   U6  head.index and tail.index only grow, so a stale (index, block) pair fails its CAS.
 *
 * The waits in U1/U2 spin briefly then yield: they last as long as another thread takes to
 * finish a few stores, unless that thread is preempted. Push never fails except on allocation
 * failure; pop returns false when the queue is empty.
 */
#ifndef COIL_UMPMC_H
#define COIL_UMPMC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coil_mpmc.h" /* COIL_CACHE_LINE */

#ifdef __cplusplus
extern "C" {
#endif

#define COIL_UMPMC_LAP 64
#define COIL_UMPMC_BLOCK_CAP (COIL_UMPMC_LAP - 1)

typedef struct coil_umpmc_slot {
    uint64_t value;
    _Atomic(uint64_t) state;
} coil_umpmc_slot_t;

typedef struct coil_umpmc_block {
    _Atomic(struct coil_umpmc_block *) next;
    coil_umpmc_slot_t slots[COIL_UMPMC_BLOCK_CAP];
} coil_umpmc_block_t;

typedef struct coil_umpmc_end {
    _Atomic(uint64_t) index;
    _Atomic(coil_umpmc_block_t *) block;
} coil_umpmc_end_t;

typedef struct coil_umpmc {
    alignas(COIL_CACHE_LINE) coil_umpmc_end_t head;
    alignas(COIL_CACHE_LINE) coil_umpmc_end_t tail;
    alignas(COIL_CACHE_LINE) _Atomic(coil_umpmc_block_t *) spare;
    _Atomic(uint64_t) blocks_allocated; /* statistics: how many times malloc was called for a block */
} coil_umpmc_t;

/* Creates an empty queue (with its first block). NULL on allocation failure. */
coil_umpmc_t *coil_umpmc_create(void);
/* Frees the queue and all its blocks. No other thread may use it any more. */
void coil_umpmc_destroy(coil_umpmc_t *q);
/* Appends `value`. Returns false only when a new block was needed and could not be allocated. */
bool coil_umpmc_push(coil_umpmc_t *q, uint64_t value);
/* Takes the oldest value into *out; false when the queue is empty. */
bool coil_umpmc_try_pop(coil_umpmc_t *q, uint64_t *out);
/* A snapshot of the number of values; exact only when no thread is using the queue. */
size_t coil_umpmc_count_approx(const coil_umpmc_t *q);
/* How many blocks the queue has allocated since creation (a steady state adds none). */
uint64_t coil_umpmc_blocks_allocated(const coil_umpmc_t *q);

#ifdef __cplusplus
}
#endif
#endif /* COIL_UMPMC_H */
