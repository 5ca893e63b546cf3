/*
 * coil_mpmc.h -- bounded multi-producer multi-consumer queue of 64-bit words.
 *
 * The algorithm is Dmitry Vyukov's bounded MPMC queue: a power-of-two ring of cells, each
 * carrying a sequence number that says whose turn the cell is.
 *
 * Protocol
 * --------
 * Fields:
 *   tail   next position a producer will claim. Written only by CAS (producers).
 *   head   next position a consumer will claim. Written only by CAS (consumers).
 *   cells[p & mask].seq   for position p:
 *            seq == p          the cell is free for the producer of position p;
 *            seq == p + 1      the cell holds the value of position p, ready for its consumer;
 *            seq == p + cap    the consumer of p is done: free for the producer of p + cap.
 *   cell.value   written only by the producer that claimed the cell, read only by the consumer
 *                that claimed it afterwards.
 *   mask, cells   read-only after coil_mpmc_create.
 *
 * Rules:
 *   R1  A producer owns cell(p) from its successful CAS of tail p -> p+1 until its release store of
 *       seq = p + 1. Only the owner writes value.
 *   R2  A consumer owns cell(p) from its successful CAS of head p -> p+1 until its release store of
 *       seq = p + cap. Only the owner reads value.
 *   R3  The acquire load of seq that precedes a claim pairs with the release store that ended the
 *       previous owner's turn, so the new owner sees that owner's write of value (or is done with
 *       its read) before touching it.
 *   R4  head and tail only grow (64-bit, they do not wrap in practice), so a stale position always
 *       fails its CAS: no ABA.
 *   R5  try_push reports full when the cell for tail is not free yet (seq < p). That includes a
 *       consumer that claimed the cell but has not finished reading it: "full" means "no cell
 *       is free right now", never "dropped". try_pop reports empty symmetrically.
 *
 * Layout: head and tail each sit on their own cache line so producers and consumers do not
 * share a line. Cells are 16 bytes, four to a line, in position order: position p lives in
 * cells[p & mask]. (An earlier version swapped index bits so that consecutive positions fell on
 * different lines; on the anchors harness it halved 1P1C throughput on Zen 4 and cost a
 * nanosecond per push+pop, so the cells are plain again. BENCHMARKS.md has the A/B.)
 *
 * The hot paths are static inline so that Swift callers inline them. Capacity is rounded up to a
 * power of two, at least 2; coil_mpmc_create returns NULL for 0 or anything over
 * COIL_MPMC_MAX_CAPACITY, and on allocation failure.
 */
#ifndef COIL_MPMC_H
#define COIL_MPMC_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COIL_CACHE_LINE 64
#define COIL_MPMC_MAX_CAPACITY ((size_t)1 << 32)

typedef struct coil_mpmc_cell {
    _Atomic(uint64_t) seq;
    uint64_t value;
} coil_mpmc_cell_t;

typedef struct coil_mpmc {
    alignas(COIL_CACHE_LINE) _Atomic(uint64_t) tail;
    alignas(COIL_CACHE_LINE) _Atomic(uint64_t) head;
    /* Read-only after create; shared clean by every core. */
    alignas(COIL_CACHE_LINE) uint64_t mask;
    coil_mpmc_cell_t *cells;
} coil_mpmc_t;

_Static_assert(sizeof(coil_mpmc_cell_t) == 16, "four cells per cache line");
_Static_assert(offsetof(coil_mpmc_t, head) - offsetof(coil_mpmc_t, tail) >= COIL_CACHE_LINE,
               "head and tail on separate lines");

/* Creates a queue of at least `capacity` cells (rounded up to a power of two, minimum 2). */
coil_mpmc_t *coil_mpmc_create(size_t capacity);
/* Frees the queue. No other thread may use it any more; values still inside are discarded. */
void coil_mpmc_destroy(coil_mpmc_t *q);

/* COIL_MPMC_MAX_CAPACITY as a function (a casted macro does not import into Swift). */
static inline size_t coil_mpmc_max_capacity(void) { return COIL_MPMC_MAX_CAPACITY; }

static inline size_t coil_mpmc_capacity(const coil_mpmc_t *q) { return (size_t)q->mask + 1; }

/* Pushes `value`; returns false when the queue is full (R5). Never blocks, never allocates. */
static inline bool coil_mpmc_try_push(coil_mpmc_t *q, uint64_t value) {
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        coil_mpmc_cell_t *cell = &q->cells[pos & q->mask];
        /* R3: acquire pairs with the consumer's release of this cell. */
        uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - pos);
        if (diff == 0) {
            /* R4: relaxed is enough, the CAS only arbitrates ownership; data flows through seq. */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                cell->value = value; /* R1 */
                atomic_store_explicit(&cell->seq, pos + 1, memory_order_release);
                return true;
            }
            /* the failed CAS reloaded pos */
        } else if (diff < 0) {
            return false; /* R5: the cell still belongs to the previous lap */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed); /* our pos was stale */
        }
    }
}

/* Pops into *out; returns false when the queue is empty (R5). Never blocks, never allocates. */
static inline bool coil_mpmc_try_pop(coil_mpmc_t *q, uint64_t *out) {
    uint64_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        coil_mpmc_cell_t *cell = &q->cells[pos & q->mask];
        /* R3: acquire pairs with the producer's release of this cell. */
        uint64_t seq = atomic_load_explicit(&cell->seq, memory_order_acquire);
        int64_t diff = (int64_t)(seq - (pos + 1));
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *out = cell->value; /* R2 */
                atomic_store_explicit(&cell->seq, pos + q->mask + 1, memory_order_release);
                return true;
            }
        } else if (diff < 0) {
            return false; /* R5: nothing published at this position yet */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

/* A snapshot of how many values are in the queue; exact only when no thread is using it. */
static inline size_t coil_mpmc_count_approx(const coil_mpmc_t *q) {
    uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    return tail > head ? (size_t)(tail - head) : 0;
}

#ifdef __cplusplus
}
#endif
#endif /* COIL_MPMC_H */
