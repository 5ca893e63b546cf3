/*
 * coil_ring.h -- the io_uring submission/completion driver.
 *
 * Mechanism, not policy: the driver moves opaque 64-bit user_data words between the caller and
 * the kernel and knows nothing of tasks. Every function returns 0 (or a count) on success and
 * -errno on failure, in liburing's manner.
 *
 * user_data encoding
 * ------------------
 * The caller owns every user_data value below COIL_USER_DATA_RESERVED. The top 256 values are
 * the driver's:
 *   COIL_USER_DATA_WAKE     the armed eventfd read that carries wake-ups from other threads;
 *                           absorbed by reap, which re-arms the read.
 *   COIL_USER_DATA_MSG_WAKE a MSG_RING wake-up sent by coil_ring_prep_wake; absorbed by reap.
 *   COIL_USER_DATA_IGNORE   completions nobody waits for (e.g. the result of a cancel the
 *                           caller did not ask to see); absorbed by reap.
 *   UINT64_MAX              liburing's own internal timeout (LIBURING_UDATA_TIMEOUT); absorbed.
 *
 * Threads
 * -------
 * A ring is used by one thread at a time. By default it is created for exactly one thread, the
 * creating one (SINGLE_ISSUER | DEFER_TASKRUN, plus a registered ring fd when the kernel has
 * them): only that thread may submit, wait or reap. Pass COIL_RING_SHARED for a ring that
 * several threads use in turn (under the caller's own exclusion). Any thread may call
 * coil_ring_wake (eventfd) on a ring that enabled it, and any ring may send a MSG_RING to any
 * other ring's fd.
 *
 * SQ full: preparing an SQE when the submission queue is full submits what is queued and tries
 * again; an SQE is never dropped. If the kernel refuses the submission (-EBUSY, -EAGAIN), the
 * prep function returns that error and prepares nothing: reap completions and try again.
 *
 * CQ overflow: rings are created with room for twice as many completions as submissions, and the
 * kernel (IORING_FEAT_NODROP) keeps completions that do not fit on an overflow list. Reap flushes
 * that list whenever the kernel flags it, so no completion is lost. If the kernel ever had to drop
 * completions (no memory for the overflow list), waiting returns -EBADR.
 */
#ifndef COIL_RING_H
#define COIL_RING_H

#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define COIL_USER_DATA_RESERVED (UINT64_MAX - 255)
#define COIL_USER_DATA_WAKE (UINT64_MAX - 1)
#define COIL_USER_DATA_IGNORE (UINT64_MAX - 2)
#define COIL_USER_DATA_MSG_WAKE (UINT64_MAX - 3)

/* coil_ring_create policy bits. */
enum {
    COIL_RING_DEFAULT = 0,
    /* The ring is used by several threads in turn: no SINGLE_ISSUER/DEFER_TASKRUN, no registered fd. */
    COIL_RING_SHARED = 1u << 0,
    /* Take no optional setup flags at all (the fallback path, also useful in tests). */
    COIL_RING_PLAIN = 1u << 1,
};

/* One reaped completion, copied out of the CQ ring. Swift reads it as `IOCompletion`. */
typedef struct coil_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} coil_cqe_t;
_Static_assert(sizeof(coil_cqe_t) == 16, "coil_cqe_t is shared with Swift (IOCompletion)");
_Static_assert(offsetof(coil_cqe_t, res) == 8 && offsetof(coil_cqe_t, flags) == 12, "coil_cqe_t layout");

typedef struct coil_ring {
    struct io_uring ring;
    unsigned setup_flags;    /* IORING_SETUP_* flags the ring was created with */
    unsigned policy;         /* COIL_RING_* bits asked for */
    bool registered_fd;      /* io_uring_register_ring_fd succeeded */
    int wake_fd;             /* eventfd for coil_ring_wake, -1 until enabled */
    bool wake_armed;         /* a read of wake_fd is queued or in flight */
    uint64_t wake_value;     /* the armed read's target: the kernel writes here */
    _Atomic(int) wake_pending; /* a wake was written and not yet consumed (coalesces wakes) */
    uint64_t wakeups;        /* wake completions absorbed by reap (statistics) */
    uint64_t overflow_flushes; /* times reap asked the kernel to flush overflowed completions */
    struct __kernel_timespec *timespecs; /* one per SQ slot: a timeout's timespec lives until submit */
    struct io_uring_sqe *last_sqe;       /* the most recently prepared SQE (for linking) */
} coil_ring_t;

/* ---- setup ------------------------------------------------------------------------------ */

/*
 * Creates a ring with `sq_entries` submission slots (rounded up to a power of two by the kernel;
 * 0 means 256) and `cq_entries` completion slots (0 means twice sq_entries). Tries, in order:
 * SINGLE_ISSUER|DEFER_TASKRUN|TASKRUN_FLAG, COOP_TASKRUN|TASKRUN_FLAG, then no optional flag,
 * falling back only when the kernel says EINVAL. On failure returns NULL and stores -errno in
 * *error: -ENOSYS (no io_uring), -EPERM (forbidden: seccomp, or kernel.io_uring_disabled),
 * -ENOMEM, -EMFILE...
 */
coil_ring_t *coil_ring_create(unsigned sq_entries, unsigned cq_entries, unsigned policy, int *error);
/* Closes the ring and its eventfd. Call it from the creating thread: a registered ring fd is
 * registered for that thread only, and elsewhere the kernel keeps the ring until it exits. Completions not reaped are lost; buffers the kernel may still
 * write to must outlive this call (the kernel cancels and waits for in-flight requests). */
void coil_ring_destroy(coil_ring_t *r);

static inline int coil_ring_fd(const coil_ring_t *r) { return r->ring.ring_fd; }
static inline unsigned coil_ring_setup_flags(const coil_ring_t *r) { return r->setup_flags; }
static inline unsigned coil_ring_features(const coil_ring_t *r) { return r->ring.features; }
static inline bool coil_ring_has_registered_fd(const coil_ring_t *r) { return r->registered_fd; }
static inline unsigned coil_ring_sq_entries(const coil_ring_t *r) { return r->ring.sq.ring_entries; }
static inline unsigned coil_ring_cq_entries(const coil_ring_t *r) { return r->ring.cq.ring_entries; }
/* Wake completions absorbed by reap, and overflow flushes it asked for (statistics). */
static inline uint64_t coil_ring_wakeups(const coil_ring_t *r) { return r->wakeups; }
static inline uint64_t coil_ring_overflow_flushes(const coil_ring_t *r) { return r->overflow_flushes; }
/* SQEs prepared and not yet submitted. */
static inline unsigned coil_ring_sq_pending(const coil_ring_t *r) { return io_uring_sq_ready(&r->ring); }

/* ---- submission --------------------------------------------------------------------------- */

/* Submits the SQ so it has room again; the slow path of coil_ring_get_sqe. */
int coil_ring_flush_sq(coil_ring_t *r);

/* Returns 0 and an SQE in *out, submitting first when the SQ is full (never drops); -errno if the
 * kernel refuses that submission. The SQE is cleared by the prep helper that fills it. */
static inline int coil_ring_get_sqe(coil_ring_t *r, struct io_uring_sqe **out) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
    if (__builtin_expect(sqe == NULL, 0)) {
        int ret = coil_ring_flush_sq(r);
        if (ret < 0) return ret;
        sqe = io_uring_get_sqe(&r->ring);
        if (!sqe) return -EBUSY;
    }
    r->last_sqe = sqe;
    *out = sqe;
    return 0;
}

/* Makes sure `n` SQEs can be prepared back to back without a submission in between (needed to
 * keep an operation and its linked timeout in one submission). n must be <= sq_entries. */
int coil_ring_reserve(coil_ring_t *r, unsigned n);

/* Submits every prepared SQE; returns how many the kernel took, or -errno. */
int coil_ring_submit(coil_ring_t *r);

/*
 * Submits every prepared SQE and waits until at least `wait_nr` completions are ready, or until
 * `timeout_ns` nanoseconds have passed (timeout_ns < 0: no limit). Returns >= 0 on success,
 * -ETIME when the time ran out first, -EINTR when a signal interrupted the wait (nothing is lost:
 * reap and wait again), -EBADR if the kernel had to drop completions, or another -errno.
 */
int coil_ring_submit_and_wait(coil_ring_t *r, unsigned wait_nr, int64_t timeout_ns);

/* ---- completion --------------------------------------------------------------------------- */

/*
 * Copies up to `max` ready completions into `out` and consumes them from the CQ ring. When the
 * kernel flags overflowed or deferred completions it asks for them (one io_uring_enter) so none
 * is left behind. Absorbs the driver's own completions (COIL_USER_DATA_*), re-arming the eventfd
 * read. Never waits. Returns the number copied, or -errno from the kernel.
 */
int coil_ring_reap(coil_ring_t *r, coil_cqe_t *out, unsigned max);

static inline bool coil_cqe_has_more(uint32_t flags) { return (flags & IORING_CQE_F_MORE) != 0; }
static inline bool coil_cqe_has_buffer(uint32_t flags) { return (flags & IORING_CQE_F_BUFFER) != 0; }
static inline uint16_t coil_cqe_buffer_id(uint32_t flags) { return (uint16_t)(flags >> IORING_CQE_BUFFER_SHIFT); }

/* ---- wake-ups ----------------------------------------------------------------------------- */

/* Creates the ring's eventfd and queues a read of it, so coil_ring_wake from any thread ends a
 * wait on this ring. Call from the ring's thread, before other threads may call coil_ring_wake.
 * Idempotent. */
int coil_ring_enable_wake(coil_ring_t *r);
/*
 * From any thread: wakes the ring's thread if it is waiting (or makes its next wait return).
 * Wakes coalesce until the ring's thread reaps the wake completion. Protocol for callers: publish
 * the work first, then wake; the woken thread reaps, then looks for work. Returns 0 or -errno.
 */
int coil_ring_wake(coil_ring_t *r);
/* Queues on `r` a MSG_RING that posts a wake completion (absorbed by reap) on the ring whose fd
 * is `target_fd`; r's own completion is skipped on success. */
int coil_ring_prep_wake(coil_ring_t *r, int target_fd);

/* ---- provided-buffer rings (multishot recv) ----------------------------------------------- */

typedef struct coil_buf_ring {
    struct io_uring_buf_ring *ring; /* shared with the kernel (mmap'd, page aligned) */
    size_t ring_bytes;
    unsigned char *buffers;         /* entries * buffer_size bytes */
    unsigned entries;
    unsigned buffer_size;
    uint16_t group_id;
    coil_ring_t *owner;
} coil_buf_ring_t;

/* Registers a ring of `entries` (power of two, <= 32768) buffers of `buffer_size` bytes as buffer
 * group `group_id` of `r`, all handed to the kernel. NULL and -errno in *error on failure. */
coil_buf_ring_t *coil_buf_ring_create(coil_ring_t *r, uint16_t group_id, unsigned entries,
                                      unsigned buffer_size, int *error);
/* Unregisters the group and frees its memory. No request may still be using the group. */
void coil_buf_ring_destroy(coil_buf_ring_t *b);

static inline unsigned char *coil_buf_ring_buffer(const coil_buf_ring_t *b, uint16_t bid) {
    return b->buffers + (size_t)bid * b->buffer_size;
}
/* Gives buffer `bid` back to the kernel once its contents have been consumed. Ring thread only. */
static inline void coil_buf_ring_recycle(coil_buf_ring_t *b, uint16_t bid) {
    io_uring_buf_ring_add(b->ring, coil_buf_ring_buffer(b, bid), b->buffer_size, bid,
                          io_uring_buf_ring_mask(b->entries), 0);
    /* release: the kernel must see the entry before the new tail */
    io_uring_buf_ring_advance(b->ring, 1);
}

/* ---- preparing operations ----------------------------------------------------------------- */
/* Each returns 0 (the SQE is queued; submit to start it) or -errno (nothing was queued). Buffers,
 * addresses and lengths passed by pointer must stay valid until the completion arrives. */

#define COIL__SQE_OR_RETURN(r, sqe)                                                                  \
    struct io_uring_sqe *sqe;                                                                      \
    do {                                                                                           \
        int coil__err = coil_ring_get_sqe((r), &sqe);                                              \
        if (coil__err) return coil__err;                                                           \
    } while (0)

static inline int coil_ring_prep_nop(coil_ring_t *r, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* offset (uint64_t)-1 reads/writes at the file's current position. */
static inline int coil_ring_prep_read(coil_ring_t *r, int fd, void *buf, unsigned len, uint64_t offset,
                                      uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_read(sqe, fd, buf, len, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

static inline int coil_ring_prep_write(coil_ring_t *r, int fd, const void *buf, unsigned len,
                                       uint64_t offset, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_write(sqe, fd, buf, len, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* addr/addrlen may be NULL. flags: accept4 flags (SOCK_CLOEXEC, SOCK_NONBLOCK). */
static inline int coil_ring_prep_accept(coil_ring_t *r, int fd, struct sockaddr *addr, socklen_t *addrlen,
                                        int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* One SQE, one completion per accepted connection, each with IORING_CQE_F_MORE while it stays armed. */
static inline int coil_ring_prep_multishot_accept(coil_ring_t *r, int fd, int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

static inline int coil_ring_prep_connect(coil_ring_t *r, int fd, const struct sockaddr *addr,
                                         socklen_t addrlen, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

static inline int coil_ring_prep_recv(coil_ring_t *r, int fd, void *buf, size_t len, int flags,
                                      uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_recv(sqe, fd, buf, len, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Receives into buffers picked by the kernel from buffer group `group_id`, one completion per
 * receive (flags carry the buffer id) until a completion comes without IORING_CQE_F_MORE. */
static inline int coil_ring_prep_recv_multishot(coil_ring_t *r, int fd, uint16_t group_id, int flags,
                                                uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, flags);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group_id;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

static inline int coil_ring_prep_send(coil_ring_t *r, int fd, const void *buf, size_t len, int flags,
                                      uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_send(sqe, fd, buf, len, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

static inline int coil_ring_prep_close(coil_ring_t *r, int fd, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Stores `ns` in the timespec slot that belongs to `sqe` until it is submitted. */
static inline struct __kernel_timespec *coil__ring_timespec(coil_ring_t *r, struct io_uring_sqe *sqe,
                                                            uint64_t ns) {
    struct __kernel_timespec *ts = &r->timespecs[sqe - r->ring.sq.sqes];
    ts->tv_sec = (long long)(ns / 1000000000u);
    ts->tv_nsec = (long long)(ns % 1000000000u);
    return ts;
}

/* A timer: completes with -ETIME after `ns` nanoseconds (CLOCK_MONOTONIC; with
 * IORING_TIMEOUT_ABS in flags, `ns` is an absolute CLOCK_MONOTONIC time). Cancel it with
 * coil_ring_prep_cancel on its user_data (it then completes with -ECANCELED). */
static inline int coil_ring_prep_timeout(coil_ring_t *r, uint64_t ns, unsigned flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_timeout(sqe, coil__ring_timespec(r, sqe, ns), 0, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/*
 * Links a timeout to the SQE prepared just before: if that operation has not completed after
 * `ns` nanoseconds it is cancelled (it completes with -ECANCELED, the timeout with -ETIME);
 * otherwise the timeout completes with -ECANCELED. Call coil_ring_reserve(r, 2) before preparing
 * the operation so both go in one submission. Returns -EINVAL if no SQE was prepared since the
 * last submission.
 */
static inline int coil_ring_prep_link_timeout(coil_ring_t *r, uint64_t ns, uint64_t user_data) {
    struct io_uring_sqe *prev = r->last_sqe;
    if (!prev || io_uring_sq_ready(&r->ring) == 0) return -EINVAL;
    if (io_uring_sq_space_left(&r->ring) == 0) return -EBUSY; /* would split the link */
    COIL__SQE_OR_RETURN(r, sqe);
    prev->flags |= IOSQE_IO_LINK;
    io_uring_prep_link_timeout(sqe, coil__ring_timespec(r, sqe, ns), 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Cancels the in-flight request(s) whose user_data is `target` (all of them with
 * IORING_ASYNC_CANCEL_ALL). Completes with 0 (found), -ENOENT or -EALREADY. */
static inline int coil_ring_prep_cancel(coil_ring_t *r, uint64_t target, int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_cancel64(sqe, target, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Cancels in-flight requests on descriptor `fd` (IORING_ASYNC_CANCEL_ALL for every one). */
static inline int coil_ring_prep_cancel_fd(coil_ring_t *r, int fd, unsigned flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_cancel_fd(sqe, fd, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Posts a completion {user_data = target_user_data, res = res} on the ring whose fd is
 * `target_fd`. This ring gets its own completion (user_data) unless skip_own_completion is set,
 * in which case it gets one only if the message fails. */
static inline int coil_ring_prep_msg_ring(coil_ring_t *r, int target_fd, int32_t res,
                                          uint64_t target_user_data, bool skip_own_completion,
                                          uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_msg_ring(sqe, target_fd, (unsigned)res, target_user_data, 0);
    if (skip_own_completion) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

#ifdef __cplusplus
}
#endif
#endif /* COIL_RING_H */
