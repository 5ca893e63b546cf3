/* ring.c -- io_uring setup, submission, completion and wake-ups (see coil_ring.h). */
#include "coil_ring.h"
#include "coil_mpmc.h" /* COIL_CACHE_LINE */
#include <liburing.h>
#include <stdatomic.h>

_Static_assert(COIL_SETUP_CQSIZE == IORING_SETUP_CQSIZE && COIL_SETUP_SUBMIT_ALL == IORING_SETUP_SUBMIT_ALL &&
               COIL_SETUP_COOP_TASKRUN == IORING_SETUP_COOP_TASKRUN && COIL_SETUP_TASKRUN_FLAG == IORING_SETUP_TASKRUN_FLAG &&
               COIL_SETUP_SINGLE_ISSUER == IORING_SETUP_SINGLE_ISSUER && COIL_SETUP_DEFER_TASKRUN == IORING_SETUP_DEFER_TASKRUN,
               "COIL_SETUP_* mirror IORING_SETUP_*");
_Static_assert(COIL_CQE_F_BUFFER == IORING_CQE_F_BUFFER && COIL_CQE_F_MORE == IORING_CQE_F_MORE &&
               COIL_CQE_F_SOCK_NONEMPTY == IORING_CQE_F_SOCK_NONEMPTY &&
               COIL_CQE_BUFFER_SHIFT == IORING_CQE_BUFFER_SHIFT, "COIL_CQE_* mirror IORING_CQE_*");
_Static_assert(COIL_ASYNC_CANCEL_ALL == IORING_ASYNC_CANCEL_ALL && COIL_TIMEOUT_ABS == IORING_TIMEOUT_ABS &&
               COIL_ASYNC_CANCEL_ANY == IORING_ASYNC_CANCEL_ANY,
               "cancel and timeout flags");
_Static_assert(COIL_AT_EMPTY_PATH == AT_EMPTY_PATH && COIL_AT_FDCWD == AT_FDCWD, "AT_* mirror");
_Static_assert(sizeof(struct statx) == COIL_STATX_SIZE, "COIL_STATX_SIZE is sizeof(struct statx)");

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

typedef struct coil_buf_ring {
    struct io_uring_buf_ring *ring; /* shared with the kernel (mmap'd, page aligned) */
    size_t ring_bytes;
    unsigned char *buffers;         /* entries * buffer_size bytes */
    unsigned entries;
    unsigned buffer_size;
    uint16_t group_id;
    coil_ring_t *owner;
} coil_buf_ring_t;

int coil_ring_fd(const coil_ring_t *r) { return r->ring.ring_fd; }
unsigned coil_ring_setup_flags(const coil_ring_t *r) { return r->setup_flags; }
unsigned coil_ring_features(const coil_ring_t *r) { return r->ring.features; }
bool coil_ring_has_registered_fd(const coil_ring_t *r) { return r->registered_fd; }
unsigned coil_ring_sq_entries(const coil_ring_t *r) { return r->ring.sq.ring_entries; }
unsigned coil_ring_cq_entries(const coil_ring_t *r) { return r->ring.cq.ring_entries; }
uint64_t coil_ring_wakeups(const coil_ring_t *r) { return r->wakeups; }
uint64_t coil_ring_overflow_flushes(const coil_ring_t *r) { return r->overflow_flushes; }
unsigned coil_ring_sq_pending(const coil_ring_t *r) { return io_uring_sq_ready(&r->ring); }
bool coil_ring_has_events(const coil_ring_t *r) {
    if (io_uring_cq_ready(&r->ring) > 0) return true;
    return (IO_URING_READ_ONCE(*r->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
}
/* Returns 0 and an SQE in *out, submitting first when the SQ is full (never drops). */
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
unsigned char *coil_buf_ring_buffer(const coil_buf_ring_t *b, uint16_t bid) {
    return b->buffers + (size_t)bid * b->buffer_size;
}
void coil_buf_ring_recycle(coil_buf_ring_t *b, uint16_t bid) {
    io_uring_buf_ring_add(b->ring, coil_buf_ring_buffer(b, bid), b->buffer_size, bid,
                          io_uring_buf_ring_mask(b->entries), 0);
    /* release: the kernel must see the entry before the new tail */
    io_uring_buf_ring_advance(b->ring, 1);
}


#define COIL__SQE_OR_RETURN(r, sqe)                                                                  \
    struct io_uring_sqe *sqe;                                                                      \
    do {                                                                                           \
        int coil__err = coil_ring_get_sqe((r), &sqe);                                              \
        if (coil__err) return coil__err;                                                           \
    } while (0)

int coil_ring_prep_nop(coil_ring_t *r, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

#ifndef IORING_NOP_INJECT_RESULT
#define IORING_NOP_INJECT_RESULT (1U << 0) /* not in liburing 2.3's copy of the uapi header */
#endif

int coil_ring_prep_nop_result(coil_ring_t *r, int32_t result, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_nop(sqe);
    sqe->rw_flags = IORING_NOP_INJECT_RESULT; /* the uapi's nop_flags shares rw_flags' slot */
    sqe->len = (unsigned)result;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* offset (uint64_t)-1 reads/writes at the file's current position. */
int coil_ring_prep_read(coil_ring_t *r, int fd, void *buf, unsigned len, uint64_t offset,
                                      uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_read(sqe, fd, buf, len, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_write(coil_ring_t *r, int fd, const void *buf, unsigned len,
                                       uint64_t offset, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_write(sqe, fd, buf, len, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* addr/addrlen may be NULL. flags: accept4 flags (SOCK_CLOEXEC, SOCK_NONBLOCK). */
int coil_ring_prep_accept(coil_ring_t *r, int fd, struct sockaddr *addr, socklen_t *addrlen,
                                        int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* One SQE, one completion per accepted connection, each with IORING_CQE_F_MORE while it stays armed. */
int coil_ring_prep_multishot_accept(coil_ring_t *r, int fd, int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_connect(coil_ring_t *r, int fd, const struct sockaddr *addr,
                                         socklen_t addrlen, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_connect(sqe, fd, addr, addrlen);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_recv(coil_ring_t *r, int fd, void *buf, size_t len, int flags, bool poll_first,
                                      uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_recv(sqe, fd, buf, len, flags);
    if (poll_first) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Receives into buffers picked by the kernel from buffer group `group_id`, one completion per
 * receive (flags carry the buffer id) until a completion comes without IORING_CQE_F_MORE. */
int coil_ring_prep_recv_multishot(coil_ring_t *r, int fd, uint16_t group_id, int flags,
                                                uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, flags);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group_id;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_send(coil_ring_t *r, int fd, const void *buf, size_t len, int flags,
                                      uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_send(sqe, fd, buf, len, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_close(coil_ring_t *r, int fd, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_close(sqe, fd);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_writev(coil_ring_t *r, int fd, const struct iovec *iov, unsigned count,
                          uint64_t offset, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_writev(sqe, fd, iov, count, offset);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

int coil_ring_prep_shutdown(coil_ring_t *r, int fd, int how, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_shutdown(sqe, fd, how);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}
int coil_ring_link_previous(coil_ring_t *r) {
    if (!r->last_sqe || io_uring_sq_ready(&r->ring) == 0) return -EINVAL;
    r->last_sqe->flags |= IOSQE_IO_LINK;
    return 0;
}
int coil_ring_skip_success_previous(coil_ring_t *r) {
    if (!r->last_sqe || io_uring_sq_ready(&r->ring) == 0) return -EINVAL;
    if (!(r->ring.features & IORING_FEAT_CQE_SKIP)) return -EOPNOTSUPP;
    r->last_sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    return 0;
}
int coil_ring_prep_sendmsg(coil_ring_t *r, int fd, const struct msghdr *msg, int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}
int coil_ring_prep_recvmsg(coil_ring_t *r, int fd, struct msghdr *msg, int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}
int coil_ring_prep_openat(coil_ring_t *r, int dirfd, const char *path, int flags, unsigned mode,
                          uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_openat(sqe, dirfd, path, flags, mode);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}
int coil_ring_prep_fsync(coil_ring_t *r, int fd, bool datasync, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_fsync(sqe, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}
int coil_ring_prep_statx(coil_ring_t *r, int dirfd, const char *path, int flags, void *statx_buffer,
                         uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_statx(sqe, dirfd, path, flags, STATX_BASIC_STATS | STATX_BTIME, (struct statx *)statx_buffer);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}
void coil_statx_decode(const void *statx_buffer, coil_file_stat_t *out) {
    const struct statx *st = statx_buffer;
    out->size = st->stx_size;
    out->blocks = st->stx_blocks;
    out->block_size = st->stx_blksize;
    out->mode = st->stx_mode;
    out->link_count = st->stx_nlink;
    out->uid = st->stx_uid;
    out->gid = st->stx_gid;
    out->inode = st->stx_ino;
    out->access_sec = st->stx_atime.tv_sec;
    out->access_nsec = st->stx_atime.tv_nsec;
    out->modification_sec = st->stx_mtime.tv_sec;
    out->modification_nsec = st->stx_mtime.tv_nsec;
    out->change_sec = st->stx_ctime.tv_sec;
    out->change_nsec = st->stx_ctime.tv_nsec;
    out->has_birth_time = (st->stx_mask & STATX_BTIME) != 0;
    out->birth_sec = out->has_birth_time ? st->stx_btime.tv_sec : 0;
    out->birth_nsec = out->has_birth_time ? st->stx_btime.tv_nsec : 0;
}

/* Stores `ns` in the timespec slot that belongs to `sqe` until it is submitted. */
static struct __kernel_timespec *coil__ring_timespec(coil_ring_t *r, struct io_uring_sqe *sqe,
                                                            uint64_t ns) {
    struct __kernel_timespec *ts = &r->timespecs[sqe - r->ring.sq.sqes];
    ts->tv_sec = (long long)(ns / 1000000000u);
    ts->tv_nsec = (long long)(ns % 1000000000u);
    return ts;
}

/* A timer: completes with -ETIME after `ns` nanoseconds (CLOCK_MONOTONIC; with
 * IORING_TIMEOUT_ABS in flags, `ns` is an absolute CLOCK_MONOTONIC time). Cancel it with
 * coil_ring_prep_cancel on its user_data (it then completes with -ECANCELED). */
int coil_ring_prep_timeout(coil_ring_t *r, uint64_t ns, unsigned flags, uint64_t user_data) {
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
int coil_ring_prep_link_timeout(coil_ring_t *r, uint64_t ns, uint64_t user_data) {
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
int coil_ring_prep_cancel(coil_ring_t *r, uint64_t target, int flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_cancel64(sqe, target, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Cancels in-flight requests on descriptor `fd` (IORING_ASYNC_CANCEL_ALL for every one). */
int coil_ring_prep_cancel_fd(coil_ring_t *r, int fd, unsigned flags, uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_cancel_fd(sqe, fd, flags);
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}

/* Posts a completion {user_data = target_user_data, res = res} on the ring whose fd is
 * `target_fd`. This ring gets its own completion (user_data) unless skip_own_completion is set,
 * in which case it gets one only if the message fails. */
int coil_ring_prep_msg_ring(coil_ring_t *r, int target_fd, int32_t res,
                                          uint64_t target_user_data, bool skip_own_completion,
                                          uint64_t user_data) {
    COIL__SQE_OR_RETURN(r, sqe);
    io_uring_prep_msg_ring(sqe, target_fd, (unsigned)res, target_user_data, 0);
    if (skip_own_completion) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, user_data);
    return 0;
}


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

int coil_ring_detach_thread(coil_ring_t *r) {
    if (!r->registered_fd) return 0;
    int ret = io_uring_unregister_ring_fd(&r->ring);
    r->registered_fd = false;
    return ret < 0 ? ret : 0;
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
        /* liburing 2.3 returns the number submitted when it submitted something, even if the
         * wait then timed out: the header promises -ETIME for that. */
        if (ret >= 0 && io_uring_cq_ready(&r->ring) < wait_nr) ret = -ETIME;
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
