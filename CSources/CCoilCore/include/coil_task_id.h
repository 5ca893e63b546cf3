/*
 * coil_task_id.h -- task IDs without a shared atomic per spawn.
 *
 * Every task gets a process-unique 64-bit ID (the owned list shards by it). A single global
 * counter would cost an atomic read-modify-write per spawn, on a cache line every spawning thread
 * writes. Instead each thread takes a block of COIL_TASK_ID_BLOCK IDs from the global counter
 * and hands them out from thread-local storage: one atomic per block, a load, a compare and a
 * store per ID. IDs are unique, never 0, and increasing per thread (not across threads).
 */
#ifndef COIL_TASK_ID_H
#define COIL_TASK_ID_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COIL_TASK_ID_BLOCK 1024

extern _Thread_local uint64_t coil__task_id_next;
extern _Thread_local uint64_t coil__task_id_end;

/* Takes a new block for the calling thread and returns its first ID. */
uint64_t coil__task_id_refill(void);

/* The next task ID for the calling thread. */
static inline uint64_t coil_task_id_next(void) {
    uint64_t id = coil__task_id_next;
    if (id == coil__task_id_end) return coil__task_id_refill();
    coil__task_id_next = id + 1;
    return id;
}

#ifdef __cplusplus
}
#endif
#endif /* COIL_TASK_ID_H */
