/* context.c -- the thread-local runtime context (coil_context.h). */
#include "coil_context.h"

_Thread_local void *coil__tls_worker = 0;
_Thread_local int32_t coil__tls_budget = -1;
_Thread_local void *coil__tls_runtime = 0;

#include <pthread.h>

int coil_thread_set_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int coil_futex_wait(void *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tsp = 0;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp, 0, 0);
    return r == 0 ? 0 : -errno;
}

int coil_futex_wake(void *word, int count) {
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, 0, 0, 0);
    return r >= 0 ? (int)r : -errno;
}
