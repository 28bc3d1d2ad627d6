/*
 * uring_ring.h - one io_uring of the FUSE transport (uring.c): set-up,
 * FUSE commands, and the wait for a completion, by raw system calls
 * (no liburing).
 */
#ifndef RVMFS_URING_RING_H
#define RVMFS_URING_RING_H

#include <linux/io_uring.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define SQE_SIZE 128 /* IORING_SETUP_SQE128: the command needs the big SQE */
#define WAIT_NS 200000000L /* how often an idle thread looks at `stopping` */
struct ring {
    int fd;
    void *sq_map, *cq_map, *sqes;
    size_t sq_len, cq_len, sqes_len;
    _Atomic unsigned *sq_tail, *cq_head, *cq_tail;
    unsigned *sq_array, sq_mask, cq_mask;
    struct io_uring_cqe *cqes;
    unsigned to_submit;
};

/* Set up r (a small ring of 128-byte SQEs) and map it: 0 or -errno;
 * on failure r is closed.  ring_close unmaps and closes it (any state,
 * also a closed one).  One thread at a time uses a ring. */
int ring_open(struct ring *r);
void ring_close(struct ring *r);
/* io_uring_enter(2): its result, -1 with errno on failure. */
long ring_enter(int fd, unsigned submit, unsigned min, unsigned flags,
                void *arg, size_t argsz);
/* Queue one FUSE command (op) on /dev/fuse descriptor devfd for queue
 * qid; iov: the entry's two buffers (REGISTER), or NULL.  It goes to the
 * kernel with the next ring_wait or ring_enter.  Cannot fail (one command
 * in flight per ring). */
void ring_push(struct ring *r, int devfd, uint32_t op, const struct iovec *iov,
               unsigned qid, uint64_t commit_id);
/* Submit what is queued and wait for one completion: 0 and its result in
 * *res, 1 once *stop is set and nothing is left to submit, or -errno of a
 * failed io_uring_enter that is not transient. */
int ring_wait(struct ring *r, const atomic_bool *stop, int *res);

#endif
