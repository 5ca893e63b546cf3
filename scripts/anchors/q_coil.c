/* coil_mpmc in the shape of ../shared/anchors/queues' adapters (src/q_*.c): scripts/anchors-queues.sh
 * copies it into a scratch copy of that harness and compiles it with CSources/CCoil/mpmc.c. */
#define Q_NAME "coil_mpmc_c"
#include "coil_mpmc.h"

typedef coil_mpmc_t queue_t;

static queue_t *q_new(size_t cap, int producers, int consumers) {
    (void)producers;
    (void)consumers;
    return coil_mpmc_create(cap);
}
static void q_free(queue_t *q) { coil_mpmc_destroy(q); }
static void *q_thread_init(queue_t *q, int producer) {
    (void)q;
    (void)producer;
    return NULL;
}
static void q_thread_fini(queue_t *q, void *context) {
    (void)q;
    (void)context;
}
static inline int q_push(queue_t *q, void *context, uint64_t v) {
    (void)context;
    return coil_mpmc_try_push(q, v);
}
static inline int q_pop(queue_t *q, void *context, uint64_t *out) {
    (void)context;
    return coil_mpmc_try_pop(q, out);
}

#include "harness.h"
