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
#include <sys/socket.h>
#include <sys/uio.h>
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
/* The same for Swift, which does not import macros with expressions. */
static const uint64_t coil_user_data_ignore = COIL_USER_DATA_IGNORE;

/* The kernel's io_uring constants Coil's callers need, under Coil's names so that this header
 * does not include liburing (whose copy of <linux/io_uring.h> clashes with the kernel header that
 * other Swift modules, such as swift-system's, import). ring.c checks they match. */
#define COIL_SETUP_CQSIZE (1u << 3)
#define COIL_SETUP_SUBMIT_ALL (1u << 7)
#define COIL_SETUP_COOP_TASKRUN (1u << 8)
#define COIL_SETUP_TASKRUN_FLAG (1u << 9)
#define COIL_SETUP_SINGLE_ISSUER (1u << 12)
#define COIL_SETUP_DEFER_TASKRUN (1u << 13)
#define COIL_CQE_F_BUFFER (1u << 0)
#define COIL_CQE_F_MORE (1u << 1)
#define COIL_CQE_F_SOCK_NONEMPTY (1u << 2)
#define COIL_CQE_BUFFER_SHIFT 16
#define COIL_ASYNC_CANCEL_ALL (1u << 0)
#define COIL_TIMEOUT_ABS (1u << 0)
#define COIL_ASYNC_CANCEL_ANY (1u << 2)
#define COIL_AT_EMPTY_PATH 0x1000
#define COIL_AT_FDCWD (-100)

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

typedef struct coil_ring coil_ring_t; /* opaque: defined in ring.c */

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

/* On the creating thread: gives up the thread's registered ring fd (if any), so that the ring may
 * later be destroyed from any thread. The ring keeps working (through its plain fd). */
int coil_ring_detach_thread(coil_ring_t *r);

int coil_ring_fd(const coil_ring_t *r);
unsigned coil_ring_setup_flags(const coil_ring_t *r);
unsigned coil_ring_features(const coil_ring_t *r);
bool coil_ring_has_registered_fd(const coil_ring_t *r);
unsigned coil_ring_sq_entries(const coil_ring_t *r);
unsigned coil_ring_cq_entries(const coil_ring_t *r);
/* Wake completions absorbed by reap, and overflow flushes it asked for (statistics). */
uint64_t coil_ring_wakeups(const coil_ring_t *r);
uint64_t coil_ring_overflow_flushes(const coil_ring_t *r);
/* SQEs prepared and not yet submitted. */
unsigned coil_ring_sq_pending(const coil_ring_t *r);
/* Whether a reap would find something without waiting: completions in the CQ, or ones the kernel
 * holds back and flags (deferred task work with TASKRUN_FLAG, overflow). False when the ring
 * cannot tell (DEFER_TASKRUN without TASKRUN_FLAG). Reads shared memory only: no system call. */
bool coil_ring_has_events(const coil_ring_t *r);

/* ---- submission --------------------------------------------------------------------------- */

/* Submits the SQ so it has room again (what preparing does when the SQ is full). */
int coil_ring_flush_sq(coil_ring_t *r);

/* Returns 0 and an SQE in *out, submitting first when the SQ is full (never drops); -errno if the
 * kernel refuses that submission. The SQE is cleared by the prep helper that fills it. */

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

static inline bool coil_cqe_has_more(uint32_t flags) { return (flags & COIL_CQE_F_MORE) != 0; }
/* A receive left bytes in the socket (IORING_CQE_F_SOCK_NONEMPTY). */
static inline bool coil_cqe_socket_nonempty(uint32_t flags) { return (flags & COIL_CQE_F_SOCK_NONEMPTY) != 0; }
static inline bool coil_cqe_has_buffer(uint32_t flags) { return (flags & COIL_CQE_F_BUFFER) != 0; }
static inline uint16_t coil_cqe_buffer_id(uint32_t flags) { return (uint16_t)(flags >> COIL_CQE_BUFFER_SHIFT); }

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

typedef struct coil_buf_ring coil_buf_ring_t; /* opaque */

/* Registers a ring of `entries` (power of two, <= 32768) buffers of `buffer_size` bytes as buffer
 * group `group_id` of `r`, all handed to the kernel. NULL and -errno in *error on failure. */
coil_buf_ring_t *coil_buf_ring_create(coil_ring_t *r, uint16_t group_id, unsigned entries,
                                      unsigned buffer_size, int *error);
/* Unregisters the group and frees its memory. No request may still be using the group. */
void coil_buf_ring_destroy(coil_buf_ring_t *b);

unsigned char *coil_buf_ring_buffer(const coil_buf_ring_t *b, uint16_t bid);
/* Gives buffer `bid` back to the kernel once its contents have been consumed. Ring thread only. */
void coil_buf_ring_recycle(coil_buf_ring_t *b, uint16_t bid);

/* ---- preparing operations ----------------------------------------------------------------- */
/* Each returns 0 (the SQE is queued; submit to start it) or -errno (nothing was queued). Buffers,
 * addresses and lengths passed by pointer must stay valid until the completion arrives. */

int coil_ring_prep_nop(coil_ring_t *r, uint64_t user_data);
/* A NOP that completes with `result` (IORING_NOP_INJECT_RESULT): a negative one fails the request
 * as a failed operation would, so a request linked after it is cancelled (-ECANCELED). Kernels
 * before 6.10, which predate the flag, ignore it and complete the NOP with 0. */
int coil_ring_prep_nop_result(coil_ring_t *r, int32_t result, uint64_t user_data);

/* offset (uint64_t)-1 reads/writes at the file's current position. */
int coil_ring_prep_read(coil_ring_t *r, int fd, void *buf, unsigned len, uint64_t offset,
                                      uint64_t user_data);

int coil_ring_prep_write(coil_ring_t *r, int fd, const void *buf, unsigned len,
                                       uint64_t offset, uint64_t user_data);

/* addr/addrlen may be NULL. flags: accept4 flags (SOCK_CLOEXEC, SOCK_NONBLOCK). */
int coil_ring_prep_accept(coil_ring_t *r, int fd, struct sockaddr *addr, socklen_t *addrlen,
                                        int flags, uint64_t user_data);

/* One SQE, one completion per accepted connection, each with IORING_CQE_F_MORE while it stays armed. */
int coil_ring_prep_multishot_accept(coil_ring_t *r, int fd, int flags, uint64_t user_data);

int coil_ring_prep_connect(coil_ring_t *r, int fd, const struct sockaddr *addr,
                                         socklen_t addrlen, uint64_t user_data);

/* recv(2). With `poll_first` the kernel arms its readiness poll at once instead of trying the
 * receive first (IORING_RECVSEND_POLL_FIRST): one failed receive fewer when the socket is known
 * to be empty, as it usually is right after a completion without COIL_CQE_F_SOCK_NONEMPTY. */
int coil_ring_prep_recv(coil_ring_t *r, int fd, void *buf, size_t len, int flags, bool poll_first,
                                      uint64_t user_data);

/* Receives into buffers picked by the kernel from buffer group `group_id`, one completion per
 * receive (flags carry the buffer id) until a completion comes without IORING_CQE_F_MORE. */
int coil_ring_prep_recv_multishot(coil_ring_t *r, int fd, uint16_t group_id, int flags,
                                                uint64_t user_data);

int coil_ring_prep_send(coil_ring_t *r, int fd, const void *buf, size_t len, int flags,
                                      uint64_t user_data);

int coil_ring_prep_close(coil_ring_t *r, int fd, uint64_t user_data);

/* A timer: completes with -ETIME after `ns` nanoseconds (CLOCK_MONOTONIC; with
 * IORING_TIMEOUT_ABS in flags, `ns` is an absolute CLOCK_MONOTONIC time). Cancel it with
 * coil_ring_prep_cancel on its user_data (it then completes with -ECANCELED). */
int coil_ring_prep_timeout(coil_ring_t *r, uint64_t ns, unsigned flags, uint64_t user_data);

/*
 * Links a timeout to the SQE prepared just before: if that operation has not completed after
 * `ns` nanoseconds it is cancelled (it completes with -ECANCELED, the timeout with -ETIME);
 * otherwise the timeout completes with -ECANCELED. Call coil_ring_reserve(r, 2) before preparing
 * the operation so both go in one submission. Returns -EINVAL if no SQE was prepared since the
 * last submission.
 */
int coil_ring_prep_link_timeout(coil_ring_t *r, uint64_t ns, uint64_t user_data);

/* Cancels the in-flight request(s) whose user_data is `target` (all of them with
 * IORING_ASYNC_CANCEL_ALL). Completes with 0 (found), -ENOENT or -EALREADY. */
int coil_ring_prep_cancel(coil_ring_t *r, uint64_t target, int flags, uint64_t user_data);

/* Cancels in-flight requests on descriptor `fd` (IORING_ASYNC_CANCEL_ALL for every one). */
int coil_ring_prep_cancel_fd(coil_ring_t *r, int fd, unsigned flags, uint64_t user_data);

/* Posts a completion {user_data = target_user_data, res = res} on the ring whose fd is
 * `target_fd`. This ring gets its own completion (user_data) unless skip_own_completion is set,
 * in which case it gets one only if the message fails. */
int coil_ring_prep_msg_ring(coil_ring_t *r, int target_fd, int32_t res,
                                          uint64_t target_user_data, bool skip_own_completion,
                                          uint64_t user_data);


/* Writes the `count` buffers of `iov` in order (writev); iov and the buffers must stay valid until
 * the completion. offset (uint64_t)-1: the current position (sockets, pipes). */
int coil_ring_prep_writev(coil_ring_t *r, int fd, const struct iovec *iov, unsigned count,
                          uint64_t offset, uint64_t user_data);

/* Links the SQE prepared last to the next one (IOSQE_IO_LINK): the next starts only after it
 * succeeds, and completes with -ECANCELED if it fails (or, for a send with MSG_WAITALL, is short).
 * Call coil_ring_reserve(r, 2) before preparing the pair so both go in one submission. Returns
 * -EINVAL if no SQE was prepared since the last submission. */
int coil_ring_link_previous(coil_ring_t *r);

/* Asks the kernel not to post a completion for the SQE prepared last if it succeeds
 * (IOSQE_CQE_SKIP_SUCCESS): a failure still completes. Returns -EINVAL if no SQE was prepared
 * since the last submission, -EOPNOTSUPP if the kernel lacks IORING_FEAT_CQE_SKIP (5.17). */
int coil_ring_skip_success_previous(coil_ring_t *r);

/* shutdown(2) on a socket; how: SHUT_RD, SHUT_WR, SHUT_RDWR. */
int coil_ring_prep_shutdown(coil_ring_t *r, int fd, int how, uint64_t user_data);

/* sendmsg(2) / recvmsg(2): the header, its address, iovecs and buffers stay valid until the
 * completion (recvmsg writes msg_namelen and msg_flags back into *msg). */
int coil_ring_prep_sendmsg(coil_ring_t *r, int fd, const struct msghdr *msg, int flags, uint64_t user_data);
int coil_ring_prep_recvmsg(coil_ring_t *r, int fd, struct msghdr *msg, int flags, uint64_t user_data);

/* openat(2); completes with the new descriptor. dirfd COIL_AT_FDCWD: relative to the working
 * directory. `path` stays valid until the completion. */
int coil_ring_prep_openat(coil_ring_t *r, int dirfd, const char *path, int flags, unsigned mode,
                          uint64_t user_data);

/* fsync(2), or fdatasync(2) when `datasync`. */
int coil_ring_prep_fsync(coil_ring_t *r, int fd, bool datasync, uint64_t user_data);

/* statx(2) into `statx_buffer` (COIL_STATX_SIZE bytes, 8-aligned; decode it with
 * coil_statx_decode). flags COIL_AT_EMPTY_PATH with path "": the descriptor dirfd itself. */
#define COIL_STATX_SIZE 256
int coil_ring_prep_statx(coil_ring_t *r, int dirfd, const char *path, int flags, void *statx_buffer,
                         uint64_t user_data);

/* A file's metadata, decoded from a statx result. Times are seconds and nanoseconds since the
 * epoch; `has_birth_time` says whether the file system reported a creation time. */
typedef struct coil_file_stat {
    uint64_t size;
    uint64_t blocks;       /* 512-byte blocks allocated */
    uint32_t block_size;
    uint32_t mode;         /* type and permission bits (S_IFMT | 07777) */
    uint32_t link_count;
    uint32_t uid, gid;
    uint64_t inode;
    int64_t access_sec, modification_sec, change_sec, birth_sec;
    uint32_t access_nsec, modification_nsec, change_nsec, birth_nsec;
    bool has_birth_time;
} coil_file_stat_t;
void coil_statx_decode(const void *statx_buffer, coil_file_stat_t *out);


#ifdef __cplusplus
}
#endif
#endif /* COIL_RING_H */
