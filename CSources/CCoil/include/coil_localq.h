/*
 * coil_localq.h -- a worker's local run queue: a fixed ring of 64-bit words with one owner, who
 * pushes and pops, and any number of stealers, who take half of it at a time.
 *
 * Protocol
 * --------
 * Fields:
 *   tail   next position the owner pushes to. Written only by the owner (release store).
 *   head   two 32-bit positions packed in one word: `real` (low half) is the next position to be
 *          popped or stolen; `steal` (high half) is where an in-progress steal began. When no
 *          steal is in progress, steal == real. Written only by CAS.
 *   buf    slots; positions are 32-bit and wrap (all arithmetic is mod 2^32).
 *
 * Rules:
 *   L1  The owner may write slot(p) only for p in [tail, steal + cap): `steal` is the oldest
 *       position a stealer may still be reading, so a full queue is tail - steal == cap.
 *   L2  The owner publishes a pushed word with the release store of tail; a stealer reads slots
 *       only below the tail it loaded with acquire.
 *   L3  pop claims position `real` with one CAS of head (real -> real + 1, and steal with it when
 *       no steal is in progress). Only the claimer reads the slot.
 *   L4  A stealer claims [real, real + n) with one CAS that moves `real` on and leaves `steal`
 *       behind (only when steal == real: one steal at a time), copies the words out, then with a
 *       second CAS sets steal = real, which gives the slots back to the owner (L1). While a
 *       steal is in progress the owner can still pop from `real` on.
 *   L5  Overflow: when the ring is full and no steal is in progress, the owner claims the older
 *       half with one CAS (exactly like a steal that finishes at once) and hands it, plus the
 *       word it was pushing, to the caller for the shared inject queue. If a steal is in
 *       progress the word alone goes to the inject queue.
 *
 * The ring is cap words (a power of two, at least 2). Creation sizes it; every hot path is
 * static inline so Swift inlines it.
 */
#ifndef COIL_LOCALQ_H
#define COIL_LOCALQ_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coil_mpmc.h" /* COIL_CACHE_LINE */

#ifdef __cplusplus
extern "C" {
#endif

#define COIL_LOCALQ_MAX_CAPACITY (1u << 16)

typedef struct coil_localq {
    alignas(COIL_CACHE_LINE) _Atomic(uint64_t) head; /* steal << 32 | real */
    alignas(COIL_CACHE_LINE) _Atomic(uint32_t) tail;
    alignas(COIL_CACHE_LINE) uint32_t mask;          /* read-only after create */
    uint32_t capacity;
    uint64_t *buf;
} coil_localq_t;

/* A queue of `capacity` words (rounded up to a power of two, minimum 2, maximum
 * COIL_LOCALQ_MAX_CAPACITY); NULL if out of range or out of memory. */
coil_localq_t *coil_localq_create(uint32_t capacity);
/* Frees the queue; words still inside are discarded. No thread may still use it. */
void coil_localq_destroy(coil_localq_t *q);

static inline uint32_t coil_localq_capacity(const coil_localq_t *q) { return q->capacity; }

static inline uint64_t coil__localq_pack(uint32_t steal, uint32_t real) {
    return ((uint64_t)steal << 32) | real;
}
static inline uint32_t coil__localq_steal(uint64_t head) { return (uint32_t)(head >> 32); }
static inline uint32_t coil__localq_real(uint64_t head) { return (uint32_t)head; }

/* Words in the queue (from any thread: a snapshot). */
static inline uint32_t coil_localq_len(const coil_localq_t *q) {
    uint64_t head = atomic_load_explicit(&((coil_localq_t *)q)->head, memory_order_acquire);
    uint32_t tail = atomic_load_explicit(&((coil_localq_t *)q)->tail, memory_order_acquire);
    return tail - coil__localq_real(head);
}

static inline bool coil_localq_is_empty(const coil_localq_t *q) { return coil_localq_len(q) == 0; }

/* Owner only. Pushes `value`. Returns 0 when it went into the ring. Otherwise the ring was full:
 * returns the number of words written to `overflow` (which must hold capacity / 2 + 1), the
 * older half of the ring followed by `value`, all of which the caller must push to the inject
 * queue (rule L5). */
static inline uint32_t coil_localq_push(coil_localq_t *q, uint64_t value, uint64_t *overflow) {
    for (;;) {
        uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
        uint32_t steal = coil__localq_steal(head), real = coil__localq_real(head);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed); /* ours */
        if (tail - steal < q->capacity) { /* L1 */
            q->buf[tail & q->mask] = value;
            atomic_store_explicit(&q->tail, tail + 1, memory_order_release); /* L2 */
            return 0;
        }
        if (steal != real) { /* a stealer is making room; do not wait for it */
            overflow[0] = value;
            return 1;
        }
        uint32_t half = q->capacity / 2;
        uint64_t expected = head;
        if (!atomic_compare_exchange_strong_explicit(&q->head, &expected,
                                                     coil__localq_pack(real + half, real + half),
                                                     memory_order_acq_rel, memory_order_acquire)) {
            continue; /* a stealer claimed words since our load: look again */
        }
        for (uint32_t i = 0; i < half; i++) overflow[i] = q->buf[(real + i) & q->mask];
        overflow[half] = value;
        return half + 1;
    }
}

/* Owner only. Pops the oldest word; false when empty. */
static inline bool coil_localq_pop(coil_localq_t *q, uint64_t *out) {
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        uint32_t steal = coil__localq_steal(head), real = coil__localq_real(head);
        uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed); /* ours */
        if (real == tail) return false;
        uint32_t next_real = real + 1;
        uint64_t next = steal == real ? coil__localq_pack(next_real, next_real)
                                      : coil__localq_pack(steal, next_real);
        if (atomic_compare_exchange_weak_explicit(&q->head, &head, next, memory_order_acq_rel,
                                                  memory_order_acquire)) { /* L3 */
            *out = q->buf[real & q->mask];
            return true;
        }
    }
}

/*
 * Any thread but `dst`'s owner must not call this with `dst` -- it is run BY dst's owner (a
 * worker with nothing to do) against a sibling `src`. Moves half of src's words into dst and
 * returns one of them in *out (the rest are left in dst). Returns false when there was nothing to
 * take, another steal from src was in progress, or dst is more than half full.
 */
static inline bool coil_localq_steal_into(coil_localq_t *src, coil_localq_t *dst, uint64_t *out) {
    uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed); /* dst is ours */
    uint32_t dst_steal = coil__localq_steal(atomic_load_explicit(&dst->head, memory_order_acquire));
    if (dst_tail - dst_steal > dst->capacity / 2) return false;

    /* Claim [real, real + n) (L4, first CAS). */
    uint64_t prev = atomic_load_explicit(&src->head, memory_order_acquire);
    uint32_t n, first;
    uint64_t claimed;
    for (;;) {
        uint32_t steal = coil__localq_steal(prev), real = coil__localq_real(prev);
        if (steal != real) return false; /* one steal at a time */
        uint32_t src_tail = atomic_load_explicit(&src->tail, memory_order_acquire); /* L2 */
        uint32_t len = src_tail - real;
        n = len - len / 2;
        if (n == 0) return false;
        if (n > src->capacity / 2) n = src->capacity / 2; /* a stale head: take no more than half */
        if (n > dst->capacity / 2) n = dst->capacity / 2;
        claimed = coil__localq_pack(steal, real + n);
        first = real;
        if (atomic_compare_exchange_weak_explicit(&src->head, &prev, claimed, memory_order_acq_rel,
                                                  memory_order_acquire)) break;
    }
    for (uint32_t i = 0; i < n; i++) {
        dst->buf[(dst_tail + i) & dst->mask] = src->buf[(first + i) & src->mask];
    }
    /* Give the slots back (L4, second CAS): steal = real, whatever the owner popped meanwhile. */
    prev = claimed;
    for (;;) {
        uint32_t real = coil__localq_real(prev);
        if (atomic_compare_exchange_weak_explicit(&src->head, &prev, coil__localq_pack(real, real),
                                                  memory_order_acq_rel, memory_order_acquire)) break;
    }
    n -= 1;
    *out = dst->buf[(dst_tail + n) & dst->mask];
    if (n > 0) atomic_store_explicit(&dst->tail, dst_tail + n, memory_order_release);
    return true;
}

#ifdef __cplusplus
}
#endif
#endif
