/* task_id.c -- see coil_task_id.h. */
#include "coil_task_id.h"

#include <stdatomic.h>

/* The first ID of the next block not yet handed to a thread. Starts at 1: 0 is never an ID. */
static _Atomic(uint64_t) coil__task_id_blocks = 1;

_Thread_local uint64_t coil__task_id_next = 0;
_Thread_local uint64_t coil__task_id_end = 0;

uint64_t coil__task_id_refill(void) {
    /* Relaxed: the counter only has to hand out disjoint ranges; nothing else is published. */
    uint64_t first = atomic_fetch_add_explicit(&coil__task_id_blocks, COIL_TASK_ID_BLOCK, memory_order_relaxed);
    coil__task_id_next = first + 1;
    coil__task_id_end = first + COIL_TASK_ID_BLOCK;
    return first;
}
