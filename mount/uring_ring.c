/*
 * uring_ring.c - one io_uring of the FUSE transport: set-up, commands and
 * waits by raw system calls (the build has no liburing).
 *
 * Why raw: the daemon needs three calls of io_uring, and its SQEs must be
 * the 128-byte kind (IORING_SETUP_SQE128) that carry a FUSE command.
 */
#include "uring_ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

static long sys_setup(unsigned entries, struct io_uring_params *p)
{
    return syscall(__NR_io_uring_setup, entries, p);
}

long ring_enter(int fd, unsigned submit, unsigned min, unsigned flags,
                void *arg, size_t argsz)
{
    return syscall(__NR_io_uring_enter, fd, submit, min, flags, arg, argsz);
}

void ring_close(struct ring *r)
{
    if (r->sqes && r->sqes != MAP_FAILED)
        munmap(r->sqes, r->sqes_len);
    if (r->cq_map && r->cq_map != MAP_FAILED && r->cq_map != r->sq_map)
        munmap(r->cq_map, r->cq_len);
    if (r->sq_map && r->sq_map != MAP_FAILED)
        munmap(r->sq_map, r->sq_len);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}

int ring_open(struct ring *r)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_SQE128;
    memset(r, 0, sizeof(*r));
    r->fd = (int)sys_setup(4, &p);
    if (r->fd < 0)
        return -errno;
    r->sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    if (p.features & IORING_FEAT_SINGLE_MMAP) {
        if (r->cq_len > r->sq_len)
            r->sq_len = r->cq_len;
        r->cq_len = r->sq_len;
    }
    r->sq_map = mmap(NULL, r->sq_len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED)
        goto fail;
    r->cq_map = (p.features & IORING_FEAT_SINGLE_MMAP)
                    ? r->sq_map
                    : mmap(NULL, r->cq_len, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
    if (r->cq_map == MAP_FAILED)
        goto fail;
    r->sqes_len = (size_t)p.sq_entries * SQE_SIZE;
    r->sqes = mmap(NULL, r->sqes_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED)
        goto fail;
    char *sq = r->sq_map, *cq = r->cq_map;
    r->sq_tail = (_Atomic unsigned *)(void *)(sq + p.sq_off.tail);
    r->sq_mask = *(unsigned *)(void *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(void *)(sq + p.sq_off.array);
    r->cq_head = (_Atomic unsigned *)(void *)(cq + p.cq_off.head);
    r->cq_tail = (_Atomic unsigned *)(void *)(cq + p.cq_off.tail);
    r->cq_mask = *(unsigned *)(void *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(void *)(cq + p.cq_off.cqes);
    return 0;
fail:;
    int e = errno;
    ring_close(r);
    return -e;
}

/* Queue one FUSE command; it goes to the kernel with the next wait. */
void ring_push(struct ring *r, int devfd, uint32_t op, const struct iovec *iov,
               unsigned qid, uint64_t commit_id)
{
    unsigned tail = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
    unsigned idx = tail & r->sq_mask;
    struct io_uring_sqe *s = (void *)((char *)r->sqes + (size_t)idx * SQE_SIZE);
    memset(s, 0, SQE_SIZE);
    s->opcode = IORING_OP_URING_CMD;
    s->fd = devfd;
    s->cmd_op = op;
    if (iov) {
        s->addr = (uint64_t)(uintptr_t)iov;
        s->len = 2;
    }
    struct uring_cmd_req c = {.commit_id = commit_id, .qid = (uint16_t)qid};
    memcpy(s->cmd, &c, sizeof(c));
    r->sq_array[idx] = idx;
    atomic_store_explicit(r->sq_tail, tail + 1, memory_order_release);
    r->to_submit++;
}

/* Submit what is queued and wait for one completion: its result, or 1
 * when the daemon is stopping. */
int ring_wait(struct ring *r, const atomic_bool *stop, int *res)
{
    for (;;) {
        unsigned head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
        if (head != atomic_load_explicit(r->cq_tail, memory_order_acquire)) {
            *res = r->cqes[head & r->cq_mask].res;
            atomic_store_explicit(r->cq_head, head + 1, memory_order_release);
            return 0;
        }
        if (atomic_load(stop) && r->to_submit == 0)
            return 1;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = WAIT_NS};
        struct io_uring_getevents_arg a = {.ts = (uint64_t)(uintptr_t)&ts};
        long n = ring_enter(r->fd, r->to_submit, 1,
                           IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &a,
                           sizeof(a));
        if (n > 0)
            r->to_submit -= (unsigned)n <= r->to_submit ? (unsigned)n : r->to_submit;
        else if (n < 0 && errno != ETIME && errno != EINTR && errno != EBUSY &&
                 errno != EAGAIN)
            return -errno;
    }
}

