/* umpmc.c -- the unbounded MPMC queue. The protocol and rules U1..U6 are in coil_umpmc.h. */
#include "coil_umpmc.h"

#include <sched.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define coil_cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define coil_cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#else
#define coil_cpu_relax() __asm__ __volatile__("" ::: "memory")
#endif

#define SHIFT 1
#define HAS_NEXT ((uint64_t)1)
#define LAP COIL_UMPMC_LAP
#define BLOCK_CAP COIL_UMPMC_BLOCK_CAP

enum { SLOT_WRITE = 1, SLOT_READ = 2, SLOT_DESTROY = 4 };

/* Waits in U1/U2 last a few stores unless the other thread was preempted: spin a little, then
 * give the core away. */
static void backoff(unsigned *step) {
    if (*step < 7) {
        for (unsigned i = 0; i < (1u << *step); i++) coil_cpu_relax();
        (*step)++;
    } else {
        sched_yield();
    }
}

static coil_umpmc_block_t *block_new(coil_umpmc_t *q) {
    /* Acquire pairs with the release in block_release: the last readers are done with it. */
    coil_umpmc_block_t *b = atomic_exchange_explicit(&q->spare, NULL, memory_order_acquire);
    if (!b) {
        b = malloc(sizeof(*b));
        if (!b) return NULL;
        atomic_fetch_add_explicit(&q->blocks_allocated, 1, memory_order_relaxed);
    }
    /* Private until published through tail.block / block.next (release), U1. */
    atomic_store_explicit(&b->next, NULL, memory_order_relaxed);
    for (unsigned i = 0; i < BLOCK_CAP; i++) {
        b->slots[i].value = 0;
        atomic_store_explicit(&b->slots[i].state, 0, memory_order_relaxed);
    }
    return b;
}

/* U5: keeps one released block as the spare, frees any other. */
static void block_release(coil_umpmc_t *q, coil_umpmc_block_t *b) {
    coil_umpmc_block_t *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&q->spare, &expected, b, memory_order_release,
                                                 memory_order_relaxed))
        free(b);
}

/* U4: releases the block unless a slot from `start` on is still being read. */
static void block_destroy(coil_umpmc_t *q, coil_umpmc_block_t *b, unsigned start) {
    /* The last slot needs no mark: its consumer is the one that began destruction. */
    for (unsigned i = start; i < BLOCK_CAP - 1; i++) {
        _Atomic(uint64_t) *state = &b->slots[i].state;
        if ((atomic_load_explicit(state, memory_order_acquire) & SLOT_READ) == 0 &&
            (atomic_fetch_or_explicit(state, SLOT_DESTROY, memory_order_acq_rel) & SLOT_READ) == 0)
            return; /* that slot's consumer carries on from i + 1 */
    }
    block_release(q, b);
}

coil_umpmc_t *coil_umpmc_create(void) {
    coil_umpmc_t *q = aligned_alloc(COIL_CACHE_LINE, sizeof(coil_umpmc_t));
    if (!q) return NULL;
    atomic_init(&q->spare, NULL);
    atomic_init(&q->blocks_allocated, 0);
    coil_umpmc_block_t *first = block_new(q);
    if (!first) {
        free(q);
        return NULL;
    }
    atomic_init(&q->head.index, 0);
    atomic_init(&q->head.block, first);
    atomic_init(&q->tail.index, 0);
    atomic_init(&q->tail.block, first);
    return q;
}

void coil_umpmc_destroy(coil_umpmc_t *q) {
    if (!q) return;
    coil_umpmc_block_t *b = atomic_load_explicit(&q->head.block, memory_order_acquire);
    while (b) {
        coil_umpmc_block_t *next = atomic_load_explicit(&b->next, memory_order_acquire);
        free(b);
        b = next;
    }
    free(atomic_load_explicit(&q->spare, memory_order_acquire));
    free(q);
}

bool coil_umpmc_push(coil_umpmc_t *q, uint64_t value) {
    unsigned step = 0;
    coil_umpmc_block_t *next_block = NULL;
    uint64_t tail = atomic_load_explicit(&q->tail.index, memory_order_acquire);
    coil_umpmc_block_t *block = atomic_load_explicit(&q->tail.block, memory_order_acquire);
    for (;;) {
        uint64_t offset = (tail >> SHIFT) % LAP;
        if (offset == BLOCK_CAP) { /* U1: the next block is being installed */
            backoff(&step);
            tail = atomic_load_explicit(&q->tail.index, memory_order_acquire);
            block = atomic_load_explicit(&q->tail.block, memory_order_acquire);
            continue;
        }
        /* Allocate before claiming the last slot, so the others wait as briefly as possible. */
        if (offset + 1 == BLOCK_CAP && !next_block) {
            next_block = block_new(q);
            if (!next_block) return false;
        }
        uint64_t new_tail = tail + ((uint64_t)1 << SHIFT);
        if (atomic_compare_exchange_weak_explicit(&q->tail.index, &tail, new_tail, memory_order_seq_cst,
                                                  memory_order_acquire)) {
            if (offset + 1 == BLOCK_CAP) { /* U1: install the next block, skipping the marker */
                uint64_t next_index = new_tail + ((uint64_t)1 << SHIFT);
                atomic_store_explicit(&q->tail.block, next_block, memory_order_release);
                atomic_store_explicit(&q->tail.index, next_index, memory_order_release);
                atomic_store_explicit(&block->next, next_block, memory_order_release);
                next_block = NULL;
            }
            coil_umpmc_slot_t *slot = &block->slots[offset];
            slot->value = value; /* U1: we own this slot */
            atomic_fetch_or_explicit(&slot->state, SLOT_WRITE, memory_order_release);
            if (next_block) block_release(q, next_block); /* allocated, then not needed */
            return true;
        }
        /* U6: tail was reloaded by the failed CAS; the block may have moved with it. */
        block = atomic_load_explicit(&q->tail.block, memory_order_acquire);
        coil_cpu_relax();
    }
}

bool coil_umpmc_try_pop(coil_umpmc_t *q, uint64_t *out) {
    unsigned step = 0;
    uint64_t head = atomic_load_explicit(&q->head.index, memory_order_acquire);
    coil_umpmc_block_t *block = atomic_load_explicit(&q->head.block, memory_order_acquire);
    for (;;) {
        uint64_t offset = (head >> SHIFT) % LAP;
        if (offset == BLOCK_CAP) { /* U2: head is moving to the next block */
            backoff(&step);
            head = atomic_load_explicit(&q->head.index, memory_order_acquire);
            block = atomic_load_explicit(&q->head.block, memory_order_acquire);
            continue;
        }
        uint64_t new_head = head + ((uint64_t)1 << SHIFT);
        if ((new_head & HAS_NEXT) == 0) {
            /* U3: the fence orders our view of head before this read of tail against the
             * producers' SeqCst CAS on tail. */
            atomic_thread_fence(memory_order_seq_cst);
            uint64_t tail = atomic_load_explicit(&q->tail.index, memory_order_relaxed);
            if ((head >> SHIFT) == (tail >> SHIFT)) return false;
            if ((head >> SHIFT) / LAP != (tail >> SHIFT) / LAP) new_head |= HAS_NEXT;
        }
        if (atomic_compare_exchange_weak_explicit(&q->head.index, &head, new_head, memory_order_seq_cst,
                                                  memory_order_acquire)) {
            if (offset + 1 == BLOCK_CAP) { /* U2: we took the last slot; move head on */
                coil_umpmc_block_t *next;
                unsigned wait = 0;
                while (!(next = atomic_load_explicit(&block->next, memory_order_acquire))) backoff(&wait);
                uint64_t next_index = (new_head & ~HAS_NEXT) + ((uint64_t)1 << SHIFT);
                if (atomic_load_explicit(&next->next, memory_order_relaxed)) next_index |= HAS_NEXT;
                atomic_store_explicit(&q->head.block, next, memory_order_release);
                atomic_store_explicit(&q->head.index, next_index, memory_order_release);
            }
            coil_umpmc_slot_t *slot = &block->slots[offset];
            unsigned wait = 0;
            while (!(atomic_load_explicit(&slot->state, memory_order_acquire) & SLOT_WRITE)) backoff(&wait);
            *out = slot->value; /* U2: we own this slot */
            if (offset + 1 == BLOCK_CAP)
                block_destroy(q, block, 0);
            else if (atomic_fetch_or_explicit(&slot->state, SLOT_READ, memory_order_acq_rel) & SLOT_DESTROY)
                block_destroy(q, block, (unsigned)offset + 1);
            return true;
        }
        block = atomic_load_explicit(&q->head.block, memory_order_acquire);
        coil_cpu_relax();
    }
}

/* Positions with offset BLOCK_CAP hold no value: count the others below x. */
static uint64_t value_positions_below(uint64_t x) { return x - x / LAP; }

size_t coil_umpmc_count_approx(const coil_umpmc_t *q) {
    uint64_t head = atomic_load_explicit(&((coil_umpmc_t *)q)->head.index, memory_order_relaxed) >> SHIFT;
    uint64_t tail = atomic_load_explicit(&((coil_umpmc_t *)q)->tail.index, memory_order_relaxed) >> SHIFT;
    uint64_t h = value_positions_below(head), t = value_positions_below(tail);
    return t > h ? (size_t)(t - h) : 0;
}

uint64_t coil_umpmc_blocks_allocated(const coil_umpmc_t *q) {
    return atomic_load_explicit(&((coil_umpmc_t *)q)->blocks_allocated, memory_order_relaxed);
}
