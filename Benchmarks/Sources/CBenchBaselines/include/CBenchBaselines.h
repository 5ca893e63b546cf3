/*
 * CBenchBaselines.h -- the C side of Coil's side-by-side benchmarks.
 *
 * cbench_coil_mpmc_transfer runs the queue transfer shape of ../shared/anchors/queues (harness.h)
 * on coil_mpmc from C: P producer and C consumer threads, one op = one item moved, on full/empty
 * 64 x pause then sched_yield(), every item checked to arrive exactly once and in per-producer
 * order. The Swift harness (BenchmarkSupport) follows the same rules, so the two compare.
 *
 * cbench_nop_loop is a raw liburing loop: get `batch` SQEs, prep NOP, one submit_and_wait, reap
 * with for_each_cqe + cq_advance. It takes the same setup flags Coil's ring took.
 */
#ifndef CBENCH_BASELINES_H
#define CBENCH_BASELINES_H
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cbench_cpu_relax(void) { _mm_pause(); }
#else
static inline void cbench_cpu_relax(void) { __asm__ __volatile__("" ::: "memory"); }
#endif

typedef struct cbench_transfer {
    double seconds;   /* wall time from start signal to the last thread's exit */
    uint64_t moved;   /* items received */
    int verified;     /* 1: every item exactly once, per-producer FIFO held */
} cbench_transfer_t;

cbench_transfer_t cbench_coil_mpmc_transfer(int producers, int consumers, uint64_t items, size_t capacity);

/* Returns seconds taken for `nops` NOPs in batches of `batch`, or a negative -errno. */
double cbench_nop_loop(unsigned setup_flags, int register_ring_fd, unsigned batch, uint64_t nops);

/* One push then one pop on an empty coil_mpmc, repeated: nanoseconds per pair (-1 on failure). */
double cbench_coil_mpmc_push_pop_ns(uint64_t pairs, size_t capacity);

/* System-wide busy CPU seconds from /proc/stat (to tell other processes' load during a run). */
double cbench_system_busy_seconds(void);

/* The process's busy CPU seconds (user + system), for the cores-used column. */
double cbench_cpu_seconds(void);
/// Bytes of heap in use (glibc mallinfo2().uordblks), for per-task footprints.
size_t cbench_heap_in_use(void);

#endif
