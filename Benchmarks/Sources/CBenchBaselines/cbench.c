/* cbench.c -- C baselines for Coil's benchmarks (see CBenchBaselines.h). */
#include "CBenchBaselines.h"

#include <CCoil.h>
#include <liburing.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define SPIN_LIMIT 64
#define PRODUCER_SHIFT 40

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double cbench_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static void backoff(int *k) {
    if (*k < SPIN_LIMIT) {
        cbench_cpu_relax();
        (*k)++;
    } else {
        sched_yield();
    }
}

typedef struct {
    coil_mpmc_t *q;
    int id, is_producer, producers;
    uint64_t count;
    atomic_int *ready, *go, *producers_done;
    uint64_t consumed, sum, errors;
    char pad[64];
} worker_t;

static void *worker(void *p) {
    worker_t *w = p;
    atomic_fetch_add(w->ready, 1);
    while (!atomic_load_explicit(w->go, memory_order_acquire)) sched_yield();
    if (w->is_producer) {
        uint64_t base = (uint64_t)w->id << PRODUCER_SHIFT;
        for (uint64_t i = 1; i <= w->count; i++) {
            int k = 0;
            while (!coil_mpmc_try_push(w->q, base | i)) backoff(&k);
        }
        atomic_fetch_add_explicit(w->producers_done, 1, memory_order_release);
        return NULL;
    }
    uint64_t last[64] = {0}, n = 0, sum = 0, errors = 0, v;
    for (;;) {
        int k = 0;
        while (!coil_mpmc_try_pop(w->q, &v)) {
            if (atomic_load_explicit(w->producers_done, memory_order_acquire) == w->producers) {
                if (coil_mpmc_try_pop(w->q, &v)) goto got;
                goto done;
            }
            backoff(&k);
        }
    got:
        n++;
        sum += v;
        {
            unsigned producer = (unsigned)(v >> PRODUCER_SHIFT);
            uint64_t seq = v & (((uint64_t)1 << PRODUCER_SHIFT) - 1);
            if (producer >= 64 || seq <= last[producer]) errors++;
            else last[producer] = seq;
        }
    }
done:
    w->consumed = n;
    w->sum = sum;
    w->errors = errors;
    return NULL;
}

cbench_transfer_t cbench_coil_mpmc_transfer(int producers, int consumers, uint64_t items, size_t capacity) {
    cbench_transfer_t result = {0, 0, 0};
    coil_mpmc_t *q = coil_mpmc_create(capacity);
    if (!q || producers < 1 || consumers < 1 || producers > 64) return result;
    int total = producers + consumers;
    pthread_t *threads = calloc((size_t)total, sizeof(pthread_t));
    worker_t *workers = calloc((size_t)total, sizeof(worker_t));
    atomic_int ready = 0, go = 0, done = 0;
    uint64_t per = items / (uint64_t)producers;
    for (int t = 0; t < total; t++) {
        worker_t *w = &workers[t];
        w->q = q;
        w->producers = producers;
        w->ready = &ready;
        w->go = &go;
        w->producers_done = &done;
    }
    /* Interleave P0, C0, P1, C1... as the anchor harness does. */
    int p = 0, c = 0;
    for (int t = 0; t < total; t++) {
        int want_producer = (t % 2 == 0 && p < producers) || c >= consumers;
        workers[t].is_producer = want_producer;
        workers[t].id = want_producer ? p++ : c++;
        workers[t].count = want_producer ? per : 0;
        pthread_create(&threads[t], NULL, worker, &workers[t]);
    }
    while (atomic_load(&ready) < total) sched_yield();
    double t0 = now_seconds();
    atomic_store_explicit(&go, 1, memory_order_release);
    for (int t = 0; t < total; t++) pthread_join(threads[t], NULL);
    result.seconds = now_seconds() - t0;

    uint64_t expect = 0, sum = 0, consumed = 0, errors = 0;
    for (int t = 0; t < total; t++) {
        if (workers[t].is_producer) {
            uint64_t m = workers[t].count;
            expect += ((uint64_t)workers[t].id << PRODUCER_SHIFT) * m + m * (m + 1) / 2;
        } else {
            sum += workers[t].sum;
            consumed += workers[t].consumed;
            errors += workers[t].errors;
        }
    }
    result.moved = consumed;
    result.verified = sum == expect && errors == 0 && consumed == per * (uint64_t)producers;
    free(threads);
    free(workers);
    coil_mpmc_destroy(q);
    return result;
}

double cbench_nop_loop(unsigned setup_flags, int register_ring_fd, unsigned batch, uint64_t nops) {
    struct io_uring ring;
    struct io_uring_params params;
    memset(&params, 0, sizeof(params));
    params.flags = setup_flags | IORING_SETUP_CQSIZE;
    params.cq_entries = 512;
    int ret = io_uring_queue_init_params(256, &ring, &params);
    if (ret < 0) return ret;
    if (register_ring_fd) io_uring_register_ring_fd(&ring);
    uint64_t iterations = nops / batch;
    double t0 = now_seconds();
    for (uint64_t it = 0; it < iterations; it++) {
        for (unsigned i = 0; i < batch; i++) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            io_uring_prep_nop(sqe);
            sqe->user_data = i;
        }
        ret = io_uring_submit_and_wait(&ring, batch);
        if (ret < 0) break;
        unsigned got = 0;
        while (got < batch) {
            struct io_uring_cqe *cqe;
            unsigned head, n = 0;
            io_uring_for_each_cqe(&ring, head, cqe) n++;
            io_uring_cq_advance(&ring, n);
            got += n;
        }
    }
    double seconds = now_seconds() - t0;
    io_uring_queue_exit(&ring);
    return ret < 0 ? ret : seconds;
}

double cbench_coil_mpmc_push_pop_ns(uint64_t pairs, size_t capacity) {
    coil_mpmc_t *q = coil_mpmc_create(capacity);
    if (!q) return -1;
    uint64_t v = 0, sum = 0;
    for (uint64_t i = 1; i <= 100000; i++) { coil_mpmc_try_push(q, i); coil_mpmc_try_pop(q, &v); }
    double t0 = now_seconds();
    for (uint64_t i = 1; i <= pairs; i++) {
        if (!coil_mpmc_try_push(q, i) || !coil_mpmc_try_pop(q, &v)) { coil_mpmc_destroy(q); return -1; }
        sum += v;
    }
    double t1 = now_seconds();
    coil_mpmc_destroy(q);
    return sum == pairs * (pairs + 1) / 2 ? (t1 - t0) * 1e9 / (double)pairs : -1;
}

double cbench_system_busy_seconds(void) {
    unsigned long long u = 0, n = 0, sy = 0, id = 0, io = 0, irq = 0, sirq = 0, st = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &sy, &id, &io, &irq, &sirq, &st) < 4) u = n = sy = irq = sirq = st = 0;
    fclose(f);
    return (double)(u + n + sy + irq + sirq + st) / (double)sysconf(_SC_CLK_TCK);
}

size_t cbench_heap_in_use(void) { return mallinfo2().uordblks; }
