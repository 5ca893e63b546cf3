/*
 * coil_context.h -- per-thread runtime context: which worker (if any) the calling thread is, and
 * the cooperative budget of the task it is polling.
 *
 * C's _Thread_local gives Swift a thread-local read that compiles to one segment-relative load,
 * which is why these live in the C core although the C core knows nothing of tasks: it stores
 * an opaque pointer and a counter.
 *
 * Budget: -1 means unconstrained (not inside a budgeted poll). A worker sets it before each
 * poll; every Coil future that can make progress takes one unit, and when none is left it wakes
 * itself and returns pending so the worker can run something else.
 */
#ifndef COIL_CONTEXT_H
#define COIL_CONTEXT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern _Thread_local void *coil__tls_worker;
extern _Thread_local int32_t coil__tls_budget;
extern _Thread_local void *coil__tls_runtime;

/* The runtime the calling thread has entered (a worker, or a thread inside blockOn), or NULL. */
static inline void *coil_context_runtime(void) { return coil__tls_runtime; }
static inline void coil_context_set_runtime(void *runtime) { coil__tls_runtime = runtime; }

static inline void *coil_context_worker(void) { return coil__tls_worker; }
static inline void coil_context_set_worker(void *worker) { coil__tls_worker = worker; }

static inline int32_t coil_context_budget(void) { return coil__tls_budget; }
static inline void coil_context_set_budget(int32_t budget) { coil__tls_budget = budget; }

/* Takes one unit of budget; false when the budget is spent (the caller should yield). */
static inline bool coil_context_take_budget(void) {
    int32_t b = coil__tls_budget;
    if (b < 0) return true;
    if (b == 0) return false;
    coil__tls_budget = b - 1;
    return true;
}

/* Names the calling thread (at most 15 bytes are kept); 0 or an errno. */
int coil_thread_set_name(const char *name);

/* Private futex on the 32-bit word at `word` (a Swift Atomic<UInt32> bound in raw memory is
 * one). Waits while *word == expected, for at most `timeout_ns` (negative: no limit). Returns 0
 * when woken (or spuriously), -ETIMEDOUT, -EAGAIN (the word was not `expected`) or -EINTR. */
int coil_futex_wait(void *word, uint32_t expected, int64_t timeout_ns);

/* Wakes at most `count` threads waiting on `word`; returns how many were woken, or -errno. */
int coil_futex_wake(void *word, int count);

#ifdef __cplusplus
}
#endif
#endif
