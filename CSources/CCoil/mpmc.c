/* mpmc.c -- creation and destruction of the bounded MPMC queue (coil_mpmc.h has the protocol). */
#include "coil_mpmc.h"

#include <stdlib.h>
#include <string.h>

coil_mpmc_t *coil_mpmc_create(size_t capacity) {
    if (capacity == 0 || capacity > COIL_MPMC_MAX_CAPACITY) return NULL;
    size_t cap = 2; /* capacity 1 would let a producer overwrite an unread cell */
    while (cap < capacity) cap <<= 1;

    coil_mpmc_t *q = aligned_alloc(COIL_CACHE_LINE, sizeof(coil_mpmc_t));
    if (!q) return NULL;
    size_t bytes = cap * sizeof(coil_mpmc_cell_t);
    bytes = (bytes + COIL_CACHE_LINE - 1) / COIL_CACHE_LINE * COIL_CACHE_LINE;
    coil_mpmc_cell_t *cells = aligned_alloc(COIL_CACHE_LINE, bytes);
    if (!cells) {
        free(q);
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->mask = cap - 1;
    q->cells = cells;
    for (size_t i = 0; i < cap; i++) {
        /* Cell i starts free for position i. */
        atomic_init(&cells[i].seq, i);
        cells[i].value = 0;
    }
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    return q;
}

void coil_mpmc_destroy(coil_mpmc_t *q) {
    if (!q) return;
    free(q->cells);
    free(q);
}
