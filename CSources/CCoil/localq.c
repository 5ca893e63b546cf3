/* localq.c -- creation and destruction of the local run queue (coil_localq.h has the protocol). */
#include "coil_localq.h"

#include <stdlib.h>

coil_localq_t *coil_localq_create(uint32_t capacity) {
    if (capacity == 0 || capacity > COIL_LOCALQ_MAX_CAPACITY) return NULL;
    uint32_t cap = 2;
    while (cap < capacity) cap <<= 1;
    coil_localq_t *q = aligned_alloc(COIL_CACHE_LINE, sizeof(coil_localq_t));
    if (!q) return NULL;
    uint64_t *buf = calloc(cap, sizeof(uint64_t));
    if (!buf) {
        free(q);
        return NULL;
    }
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    q->mask = cap - 1;
    q->capacity = cap;
    q->buf = buf;
    return q;
}

void coil_localq_destroy(coil_localq_t *q) {
    if (!q) return;
    free(q->buf);
    free(q);
}
