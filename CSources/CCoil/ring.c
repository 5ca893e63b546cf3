/* ring.c -- io_uring setup, submission, completion and wake-ups (see coil_ring.h). */
#include "coil_ring.h"
#include "coil_mpmc.h" /* COIL_CACHE_LINE */

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

/* Flag sets tried in order; the kernel answers EINVAL to a flag it does not know. */
static const unsigned exclusive_setups[] = {
    /* Task work runs only when the owner waits: the fewest interrupts, batched completions. */
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL,
    IORING_SETUP_SUBMIT_ALL,
    0,
};
/* A ring used by several threads must not tie task work to one of them. */
static const unsigned shared_setups[] = {IORING_SETUP_SUBMIT_ALL, 0};
static const unsigned plain_setups[] = {0};

static int setup_with(coil_ring_t *r, unsigned sq_entries, unsigned cq_entries, unsigned flags) {
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = flags | IORING_SETUP_CQSIZE;
    p.cq_entries = cq_entries;
    return io_uring_queue_init_params(sq_entries, &r->ring, &p);
}

coil_ring_t *coil_ring_create(unsigned sq_entries, unsigned cq_entries, unsigned policy, int *error) {
    int dummy;
    if (!error) error = &dummy;
    if (sq_entries == 0) sq_entries = 256;
    if (cq_entries == 0) cq_entries = 2 * sq_entries;

    coil_ring_t *r = calloc(1, sizeof(*r));
    if (!r) {
        *error = -ENOMEM;
        return NULL;
    }
    const unsigned *setups = exclusive_setups;
    size_t count = sizeof(exclusive_setups) / sizeof(exclusive_setups[0]);
    if (policy & COIL_RING_PLAIN) {
        setups = plain_setups;
        count = 1;
    } else if (policy & COIL_RING_SHARED) {
        setups = shared_setups;
        count = sizeof(shared_setups) / sizeof(shared_setups[0]);
    }
    int ret = -EINVAL;
    for (size_t i = 0; i < count; i++) {
        ret = setup_with(r, sq_entries, cq_entries, setups[i]);
        if (ret == 0) {
            r->setup_flags = setups[i] | IORING_SETUP_CQSIZE;
            break;
        }
        if (ret != -EINVAL) break; /* ENOSYS, EPERM, ENOMEM...: no flag set will help */
    }
    if (ret < 0) {
        free(r);
        *error = ret;
        return NULL;
    }
    r->policy = policy;
    r->wake_fd = -1;
    atomic_init(&r->wake_pending, 0);
    r->timespecs = calloc(r->ring.sq.ring_entries, sizeof(struct __kernel_timespec));
    if (!r->timespecs) {
        io_uring_queue_exit(&r->ring);
        free(r);
        *error = -ENOMEM;
        return NULL;
    }
    /* A registered ring fd saves an fdget per enter, but belongs to this thread only. */
    if (r->setup_flags & IORING_SETUP_SINGLE_ISSUER) r->registered_fd = io_uring_register_ring_fd(&r->ring) == 1;
    *error = 0;
    return r;
}

void coil_ring_destroy(coil_ring_t *r) {
    if (!r) return;
    io_uring_queue_exit(&r->ring); /* also unregisters the ring fd */
    if (r->wake_fd >= 0) close(r->wake_fd);
    free(r->timespecs);
    free(r);
}

int coil_ring_flush_sq(coil_ring_t *r) {
    int ret = io_uring_submit(&r->ring);
    r->last_sqe = NULL;
    return ret < 0 ? ret : 0;
}

int coil_ring_reserve(coil_ring_t *r, unsigned n) {
    if (n > r->ring.sq.ring_entries) return -EINVAL;
    if (io_uring_sq_space_left(&r->ring) >= n) return 0;
    int ret = coil_ring_flush_sq(r);
    if (ret < 0) return ret;
    return io_uring_sq_space_left(&r->ring) >= n ? 0 : -EBUSY;
}

int coil_ring_submit(coil_ring_t *r) {
    int ret = io_uring_submit(&r->ring);
    r->last_sqe = NULL;
    return ret;
}

int coil_ring_submit_and_wait(coil_ring_t *r, unsigned wait_nr, int64_t timeout_ns) {
    int ret;
    if (timeout_ns < 0) {
        ret = io_uring_submit_and_wait(&r->ring, wait_nr);
    } else {
        struct __kernel_timespec ts = {
            .tv_sec = timeout_ns / 1000000000,
            .tv_nsec = timeout_ns % 1000000000,
        };
        struct io_uring_cqe *cqe;
        ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, wait_nr, &ts, NULL);
    }
    r->last_sqe = NULL;
    return ret;
}

static int wake_arm(coil_ring_t *r) {
    int ret = coil_ring_prep_read(r, r->wake_fd, &r->wake_value, sizeof(r->wake_value), 0, COIL_USER_DATA_WAKE);
    if (ret == 0) r->wake_armed = true;
    return ret;
}

int coil_ring_reap(coil_ring_t *r, coil_cqe_t *out, unsigned max) {
    unsigned n = 0;
    bool asked_kernel = false;
    for (;;) {
        unsigned head, seen = 0;
        struct io_uring_cqe *cqe;
        io_uring_for_each_cqe(&r->ring, head, cqe) {
            if (n == max) break;
            seen++;
            uint64_t user_data = cqe->user_data;
            if (__builtin_expect(user_data >= COIL_USER_DATA_RESERVED, 0)) {
                if (user_data == COIL_USER_DATA_WAKE) {
                    /* The read consumed the eventfd count: later wakes must write again. SeqCst
                     * orders this before the caller's look for work (see coil_ring_wake). */
                    r->wake_armed = false;
                    atomic_store_explicit(&r->wake_pending, 0, memory_order_seq_cst);
                    r->wakeups++;
                } else if (user_data == COIL_USER_DATA_MSG_WAKE) {
                    r->wakeups++;
                }
                continue;
            }
            out[n].user_data = user_data;
            out[n].res = cqe->res;
            out[n].flags = cqe->flags;
            n++;
        }
        io_uring_cq_advance(&r->ring, seen);
        if (n == max || asked_kernel) break;
        /* Completions the kernel holds back: overflowed ones (NODROP), or deferred task work
         * (DEFER_TASKRUN / COOP_TASKRUN with TASKRUN_FLAG). One enter posts them. */
        unsigned kflags = IO_URING_READ_ONCE(*r->ring.sq.kflags);
        bool overflow = kflags & IORING_SQ_CQ_OVERFLOW;
        bool deferred = (kflags & IORING_SQ_TASKRUN) ||
                        ((r->setup_flags & IORING_SETUP_DEFER_TASKRUN) && !(r->setup_flags & IORING_SETUP_TASKRUN_FLAG));
        if (!overflow && !deferred) break;
        int ret = io_uring_get_events(&r->ring);
        if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) return ret;
        if (overflow) r->overflow_flushes++;
        asked_kernel = true;
    }
    if (r->wake_fd >= 0 && !r->wake_armed) {
        int ret = wake_arm(r);
        /* -EBUSY: no SQE now; the next reap arms it. Wakes meanwhile still set wake_pending
         * and leave the eventfd count, which the armed read will find. */
        if (ret < 0 && ret != -EBUSY && ret != -EAGAIN) return ret;
    }
    return (int)n;
}

int coil_ring_enable_wake(coil_ring_t *r) {
    if (r->wake_fd >= 0) return 0;
    /* Non-blocking: io_uring polls it instead of parking an io-wq thread in read(). */
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -errno;
    r->wake_fd = fd;
    return wake_arm(r);
}

int coil_ring_wake(coil_ring_t *r) {
    if (r->wake_fd < 0) return -EINVAL;
    /* SeqCst pairs with the reaper's store of 0: either we see 0 and write, or the reaper's
     * later look for work sees what our caller published before calling us. */
    if (atomic_exchange_explicit(&r->wake_pending, 1, memory_order_seq_cst)) return 0;
    uint64_t one = 1;
    for (;;) {
        if (write(r->wake_fd, &one, sizeof(one)) == sizeof(one)) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0; /* the count is saturated: a wake is already there */
        int err = -errno;
        atomic_store_explicit(&r->wake_pending, 0, memory_order_seq_cst);
        return err;
    }
}

int coil_ring_prep_wake(coil_ring_t *r, int target_fd) {
    return coil_ring_prep_msg_ring(r, target_fd, 0, COIL_USER_DATA_MSG_WAKE, true, COIL_USER_DATA_IGNORE);
}

coil_buf_ring_t *coil_buf_ring_create(coil_ring_t *r, uint16_t group_id, unsigned entries,
                                      unsigned buffer_size, int *error) {
    int dummy;
    if (!error) error = &dummy;
    if (entries == 0 || entries > 32768 || (entries & (entries - 1)) || buffer_size == 0) {
        *error = -EINVAL;
        return NULL;
    }
    coil_buf_ring_t *b = calloc(1, sizeof(*b));
    if (!b) {
        *error = -ENOMEM;
        return NULL;
    }
    long page = sysconf(_SC_PAGESIZE);
    b->ring_bytes = (entries * sizeof(struct io_uring_buf) + (size_t)page - 1) / (size_t)page * (size_t)page;
    /* liburing 2.3 has no io_uring_setup_buf_ring: map page-aligned memory and register it. */
    void *mem = mmap(NULL, b->ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        *error = -errno;
        free(b);
        return NULL;
    }
    b->ring = mem;
    b->buffers = aligned_alloc(COIL_CACHE_LINE, ((size_t)entries * buffer_size + COIL_CACHE_LINE - 1) /
                                                    COIL_CACHE_LINE * COIL_CACHE_LINE);
    if (!b->buffers) {
        munmap(mem, b->ring_bytes);
        free(b);
        *error = -ENOMEM;
        return NULL;
    }
    b->entries = entries;
    b->buffer_size = buffer_size;
    b->group_id = group_id;
    b->owner = r;
    io_uring_buf_ring_init(b->ring);

    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)mem;
    reg.ring_entries = entries;
    reg.bgid = group_id;
    int ret = io_uring_register_buf_ring(&r->ring, &reg, 0);
    if (ret < 0) {
        munmap(mem, b->ring_bytes);
        free(b->buffers);
        free(b);
        *error = ret;
        return NULL;
    }
    int mask = io_uring_buf_ring_mask(entries);
    for (unsigned i = 0; i < entries; i++)
        io_uring_buf_ring_add(b->ring, coil_buf_ring_buffer(b, (uint16_t)i), buffer_size, (uint16_t)i, mask, (int)i);
    io_uring_buf_ring_advance(b->ring, (int)entries);
    *error = 0;
    return b;
}

void coil_buf_ring_destroy(coil_buf_ring_t *b) {
    if (!b) return;
    io_uring_unregister_buf_ring(&b->owner->ring, b->group_id);
    munmap(b->ring, b->ring_bytes);
    free(b->buffers);
    free(b);
}
