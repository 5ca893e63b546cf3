/* context.c -- the thread-local runtime context (coil_context.h). */
#include "coil_context.h"

_Thread_local void *coil__tls_worker = 0;
_Thread_local int32_t coil__tls_budget = -1;
_Thread_local void *coil__tls_runtime = 0;

#include <pthread.h>

int coil_thread_set_name(const char *name) { return pthread_setname_np(pthread_self(), name); }
