/*
 * uring.c - FUSE requests over io_uring (-o uring; Linux 6.14+ with
 * /sys/module/fuse/parameters/enable_uring set).
 *
 * Why: over /dev/fuse a request costs the daemon a read() and a writev(),
 * and the kernel hands it to whichever reader waits first, usually a thread
 * sleeping on another CPU: on these virtual machines the wake-up of a halted
 * vCPU is most of a round trip.  Over io_uring the kernel queues a request
 * on the queue of the CPU its caller runs on, and one io_uring_enter()
 * both answers a request and waits for the next: one system call instead
 * of two, and a round trip of 11-17 us instead of 80-130 us here.
 *
 * A thread is pinned to its queue's CPU only while requests overlap
 * (several clients).  Unpinned, the scheduler wakes a ring thread on the
 * CPU it last ran on, often the other one, so that with several clients
 * about half of all request and answer hand-offs were wake-ups of the
 * other vCPU: with 8 writers each request took 60-80 us, 45-55 us pinned,
 * and 8 writers committed 15-30% more per second.  A lone client is better
 * off unpinned: its flush commit sleeps in the log force, the disk's
 * completions all arrive on one CPU, and a waiter pinned elsewhere needs a
 * wake-up of the other vCPU (commits 80-130 us slower), while unpinned the
 * client and its thread settle on the CPU of the completions.
 *
 * libfuse 3.14 knows nothing of this, so the daemon does the transport and
 * gives libfuse what /dev/fuse would have given it: each request is put
 * back together (in header, the opcode's own header, payload) in front of
 * the payload, where the kernel wrote it, and passed to
 * fuse_session_process_buf(); the answer comes back through chan.c's
 * writev hook, which hands answers to ring requests to uring_reply().
 * FORGETs, INTERRUPTs and notifications still use /dev/fuse.
 *
 * Each thread owns one ring entry and one io_uring of its own: a handler
 * that blocks (a flush commit waits for its log force) holds only its own
 * entry, and the kernel gives the next request of that CPU to another
 * entry.  The kernel never moves a request to another CPU's queue, hence
 * several threads per queue (uring_threads).
 *
 * Once the INIT reply asks for io_uring the kernel holds every request
 * until all queues have an entry, so everything that can fail (rings,
 * buffers, threads) is set up before the reply is sent; a REGISTER the
 * kernel refuses makes it fall back to /dev/fuse by itself.
 *
 * The wire structures are the kernel's ABI (protocol 7.42), which the
 * build's headers predate.
 */
#include "daemon.h"

#include <errno.h>
#include <linux/fuse.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define URING_IN_OUT_SZ 128
#define URING_OP_IN_SZ 128
enum { URING_CMD_REGISTER = 1, URING_CMD_COMMIT_AND_FETCH = 2 };

struct uring_ent_in_out {
    uint64_t flags;
    uint64_t commit_id;
    uint32_t payload_sz;
    uint32_t padding;
    uint64_t reserved;
};

struct uring_req_header {
    char in_out[URING_IN_OUT_SZ]; /* fuse_in_header, then fuse_out_header */
    char op_in[URING_OP_IN_SZ];   /* the opcode's fixed header (in_args[0]) */
    struct uring_ent_in_out ent;
};

struct uring_cmd_req {
    uint64_t flags;
    uint64_t commit_id;
    uint16_t qid;
    uint8_t padding[6];
};

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

struct uent {
    struct ring r;
    pthread_t thr;
    bool thr_up;
    unsigned qid;
    struct uring_req_header hdr;
    struct iovec iov[2];
    char *buf;                 /* one page of room, then the payload */
    _Atomic uint64_t unique;   /* request being handled; 0 when none */
    atomic_bool replied;
    bool pinned;               /* to CPU qid (place) */
    bool pin_failed;           /* that CPU is not ours: never again */
    cpu_set_t cpus_allowed;    /* the thread's CPUs when unpinned */
    _Atomic uint64_t served;   /* requests answered (user.rvm.stat) */
    pthread_mutex_t mu;        /* an answer from another thread (rare) */
    pthread_cond_t cv;
};

static struct {
    struct uent *ents;
    unsigned n;
    unsigned queues;
    size_t payload;
    int devfd;
    struct fuse_session *se;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;          /* 0 wait, 1 register, -1 give up (mu) */
    atomic_bool stop;
    atomic_bool active;
    atomic_bool draining; /* the session loop has ended: answer ENOTCONN */
    atomic_int busy;      /* threads inside a request */
    _Atomic int64_t overlap_ms; /* when requests last overlapped (clock_ms) */
} U = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static _Thread_local struct uent *cur;

static long sys_setup(unsigned entries, struct io_uring_params *p)
{
    return syscall(__NR_io_uring_setup, entries, p);
}

static long sys_enter(int fd, unsigned submit, unsigned min, unsigned flags,
                      void *arg, size_t argsz)
{
    return syscall(__NR_io_uring_enter, fd, submit, min, flags, arg, argsz);
}

static void ring_close(struct ring *r)
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

static int ring_open(struct ring *r)
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
static void ring_push(struct ring *r, uint32_t op, const struct iovec *iov,
                      unsigned qid, uint64_t commit_id)
{
    unsigned tail = atomic_load_explicit(r->sq_tail, memory_order_relaxed);
    unsigned idx = tail & r->sq_mask;
    struct io_uring_sqe *s = (void *)((char *)r->sqes + (size_t)idx * SQE_SIZE);
    memset(s, 0, SQE_SIZE);
    s->opcode = IORING_OP_URING_CMD;
    s->fd = U.devfd;
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
static int ring_wait(struct ring *r, int *res)
{
    for (;;) {
        unsigned head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
        if (head != atomic_load_explicit(r->cq_tail, memory_order_acquire)) {
            *res = r->cqes[head & r->cq_mask].res;
            atomic_store_explicit(r->cq_head, head + 1, memory_order_release);
            return 0;
        }
        if (atomic_load(&U.stop) && r->to_submit == 0)
            return 1;
        struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = WAIT_NS};
        struct io_uring_getevents_arg a = {.ts = (uint64_t)(uintptr_t)&ts};
        long n = sys_enter(r->fd, r->to_submit, 1,
                           IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &a,
                           sizeof(a));
        if (n > 0)
            r->to_submit -= (unsigned)n <= r->to_submit ? (unsigned)n : r->to_submit;
        else if (n < 0 && errno != ETIME && errno != EINTR && errno != EBUSY &&
                 errno != EAGAIN)
            return -errno;
    }
}

/* Hand one request to libfuse as /dev/fuse would have delivered it. */
static void handle(struct uent *e)
{
    struct fuse_in_header h;
    memcpy(&h, e->hdr.in_out, sizeof(h));
    uint32_t psz = e->hdr.ent.payload_sz;
    size_t head = h.len >= sizeof(h) + psz ? h.len - sizeof(h) - psz : SIZE_MAX;
    atomic_store(&e->replied, false);
    atomic_store(&e->unique, h.unique);
    if (head > URING_OP_IN_SZ || psz > U.payload) {
        /* Not what the kernel sends; answer it rather than hang it. */
        say("io_uring: request %llu (opcode %u) has bad sizes; EIO\n",
            (unsigned long long)h.unique, h.opcode);
        struct fuse_out_header oh = {.len = sizeof(oh), .error = -EIO, .unique = h.unique};
        struct iovec v = {&oh, sizeof(oh)};
        ssize_t n;
        uring_reply(&v, 1, &n);
        return;
    }
    size_t room = (size_t)sysconf(_SC_PAGESIZE);
    char *start = e->buf + room - head - sizeof(h);
    memcpy(start, &h, sizeof(h));
    memcpy(start + sizeof(h), e->hdr.op_in, head);
    chan_note_request(start, h.len);
    struct fuse_buf fb = {.mem = start, .size = h.len};
    cur = e;
    fuse_session_process_buf(U.se, &fb);
    cur = NULL;
    if (!atomic_load(&e->replied)) {
        /* Answered later by another thread (an interrupted request). */
        pthread_mutex_lock(&e->mu);
        while (!atomic_load(&e->replied))
            pthread_cond_wait(&e->cv, &e->mu);
        pthread_mutex_unlock(&e->mu);
    }
}

/* After the session loop: the store is closing, so a request is answered
 * as /dev/fuse would leave it after the daemon stopped reading.  Leaving
 * it unanswered instead would end it with ECANCELED once the thread
 * exits. */
static void refuse(struct uent *e)
{
    struct fuse_in_header h;
    memcpy(&h, e->hdr.in_out, sizeof(h));
    struct fuse_out_header oh = {.len = sizeof(oh), .error = -ENOTCONN,
                                 .unique = h.unique};
    atomic_store(&e->unique, h.unique);
    memcpy(e->hdr.in_out, &oh, sizeof(oh));
    e->hdr.ent.payload_sz = 0;
}

/* Requests that overlapped this long ago still count as several clients:
 * the pinning then does not follow every gap between two requests. */
#define OVERLAP_HOLD_MS 50

static int64_t clock_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Before the thread waits for its next request: pinned to the queue's CPU
 * while several clients send requests, unpinned otherwise (see the top). */
static void place(struct uent *e)
{
    if (e->pin_failed)
        return;
    bool want = clock_ms() - atomic_load_explicit(&U.overlap_ms, memory_order_relaxed) <
                OVERLAP_HOLD_MS;
    if (want == e->pinned)
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(e->qid, &one);
    const cpu_set_t *set = want ? &one : &e->cpus_allowed;
    if (pthread_setaffinity_np(pthread_self(), sizeof(*set), set) == 0)
        e->pinned = want;
    else
        e->pin_failed = true;
}

static void *ent_main(void *arg)
{
    struct uent *e = arg;

    pthread_mutex_lock(&U.mu);
    while (U.go == 0)
        pthread_cond_wait(&U.cv, &U.mu);
    int go = U.go;
    pthread_mutex_unlock(&U.mu);
    if (go < 0)
        return NULL;

    if (pthread_getaffinity_np(pthread_self(), sizeof(e->cpus_allowed),
                               &e->cpus_allowed) != 0 ||
        e->qid >= CPU_SETSIZE || !CPU_ISSET(e->qid, &e->cpus_allowed))
        e->pin_failed = true;
    ring_push(&e->r, URING_CMD_REGISTER, e->iov, e->qid, 0);
    for (;;) {
        int res = 0;
        int w = ring_wait(&e->r, &res);
        if (w != 0) {
            if (w < 0)
                say("io_uring: queue %u: io_uring_enter: %s\n", e->qid, strerror(-w));
            break;
        }
        if (res < 0) {
            /* The connection's end (unmount, abort) ends the entry. */
            if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED)
                say("io_uring: queue %u: %s; this entry stops\n", e->qid,
                    strerror(-res));
            break;
        }
        /* Counted first: a user.rvm.stat read sees its own request. */
        atomic_fetch_add_explicit(&e->served, 1, memory_order_relaxed);
        if (atomic_fetch_add(&U.busy, 1) > 0)
            atomic_store_explicit(&U.overlap_ms, clock_ms(), memory_order_relaxed);
        if (atomic_load(&U.draining))
            refuse(e);
        else
            handle(e);
        atomic_fetch_sub(&U.busy, 1);
        place(e);
        uint64_t id = atomic_exchange(&e->unique, 0);
        ring_push(&e->r, URING_CMD_COMMIT_AND_FETCH, NULL, e->qid, id);
    }
    return NULL;
}

static unsigned possible_cpus(void)
{
    FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
    unsigned lo = 1, hi = 0;
    int n = f ? fscanf(f, "%u-%u", &lo, &hi) : 0;
    if (f)
        fclose(f);
    if (n == 1)
        hi = lo;
    if (n < 1 || lo != 0 || hi >= 1024)
        return 0;
    return hi + 1;
}

static void release_all(void)
{
    for (unsigned i = 0; i < U.n; i++) {
        struct uent *e = &U.ents[i];
        ring_close(&e->r);
        free(e->buf);
        pthread_mutex_destroy(&e->mu);
        pthread_cond_destroy(&e->cv);
    }
    free(U.ents);
    U.ents = NULL;
    U.n = 0;
}

bool uring_prepare(struct fuse_session *se, size_t payload)
{
    U.queues = possible_cpus();
    if (U.queues == 0) {
        say("io_uring: cannot read the possible CPUs; using /dev/fuse\n");
        return false;
    }
    unsigned per = fs.uring_threads ? fs.uring_threads : 1;
    U.se = se;
    U.devfd = fuse_session_fd(se);
    U.payload = payload;
    U.ents = calloc((size_t)U.queues * per, sizeof(*U.ents));
    if (!U.ents)
        return false;
    size_t room = (size_t)sysconf(_SC_PAGESIZE);
    int err = 0;
    for (unsigned i = 0; i < U.queues * per && !err; i++) {
        struct uent *e = &U.ents[i];
        e->r.fd = -1;
        e->qid = i / per;
        pthread_mutex_init(&e->mu, NULL);
        pthread_cond_init(&e->cv, NULL);
        U.n = i + 1;
        e->buf = aligned_alloc(room, room + ((payload + room - 1) / room) * room);
        if (!e->buf) {
            err = ENOMEM;
            break;
        }
        e->iov[0] = (struct iovec){&e->hdr, sizeof(e->hdr)};
        e->iov[1] = (struct iovec){e->buf + room, payload};
        err = -ring_open(&e->r);
    }
    if (err) {
        say("io_uring: cannot set up the rings: %s; using /dev/fuse\n", strerror(err));
        release_all();
        return false;
    }
    U.go = 0;
    for (unsigned i = 0; i < U.n; i++) {
        err = pthread_create(&U.ents[i].thr, NULL, ent_main, &U.ents[i]);
        if (err) {
            say("io_uring: cannot start a thread: %s; using /dev/fuse\n", strerror(err));
            uring_start(false);
            uring_stop();
            release_all();
            return false;
        }
        U.ents[i].thr_up = true;
        char name[16];
        snprintf(name, sizeof name, "rvmfs-ring%u", i % 10000);
        pthread_setname_np(U.ents[i].thr, name);
    }
    return true;
}

void uring_start(bool go)
{
    /* Before any thread registers: its first answer must find it. */
    if (go)
        atomic_store(&U.active, true);
    pthread_mutex_lock(&U.mu);
    U.go = go ? 1 : -1;
    pthread_cond_broadcast(&U.cv);
    pthread_mutex_unlock(&U.mu);
    if (go)
        say("io_uring: %u queues x %u threads\n", U.queues, U.n / U.queues);
}

void uring_quiesce(void)
{
    atomic_store(&U.draining, true);
    while (atomic_load(&U.busy) > 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

void uring_stop(void)
{
    atomic_store(&U.stop, true);
    pthread_mutex_lock(&U.mu);
    if (U.go == 0)
        U.go = -1;
    pthread_cond_broadcast(&U.cv);
    pthread_mutex_unlock(&U.mu);
    for (unsigned i = 0; i < U.n; i++)
        if (U.ents[i].thr_up)
            pthread_join(U.ents[i].thr, NULL);
    atomic_store(&U.active, false);
    /* The entries stay allocated: a notification from the background
     * thread may still be looking through them (uring_reply). */
    for (unsigned i = 0; i < U.n; i++)
        ring_close(&U.ents[i].r);
}

bool uring_served(uint64_t *requests)
{
    uint64_t sum = 0;
    if (atomic_load(&U.active))
        for (unsigned i = 0; i < U.n; i++)
            sum += atomic_load_explicit(&U.ents[i].served, memory_order_relaxed);
    *requests = sum;
    return sum > 0; /* the kernel may have refused the rings */
}

static struct uent *find(uint64_t unique)
{
    if (unique == 0)
        return NULL;
    for (unsigned i = 0; i < U.n; i++)
        if (atomic_load(&U.ents[i].unique) == unique)
            return &U.ents[i];
    return NULL;
}

bool uring_reply(const struct iovec *iov, int count, ssize_t *res)
{
    if (!atomic_load_explicit(&U.active, memory_order_relaxed) || count < 1 ||
        iov[0].iov_len < sizeof(struct fuse_out_header))
        return false;
    struct fuse_out_header oh;
    memcpy(&oh, iov[0].iov_base, sizeof(oh));
    struct uent *e = cur;
    if (!e || atomic_load_explicit(&e->unique, memory_order_relaxed) != oh.unique) {
        e = find(oh.unique);
        if (!e)
            return false; /* a /dev/fuse request, or a notification */
    }
    size_t room = (size_t)sysconf(_SC_PAGESIZE);
    char *p = e->buf + room;
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        const char *b = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (i == 0) {
            b += sizeof(oh);
            len -= sizeof(oh);
        }
        if (total + len > U.payload) {
            oh.error = -EIO; /* larger than the kernel allows */
            total = 0;
            break;
        }
        memcpy(p + total, b, len);
        total += len;
    }
    oh.len = (uint32_t)(sizeof(oh) + total);
    memcpy(e->hdr.in_out, &oh, sizeof(oh));
    e->hdr.ent.payload_sz = (uint32_t)total;
    *res = (ssize_t)oh.len;
    if (e == cur) {
        atomic_store(&e->replied, true);
    } else {
        pthread_mutex_lock(&e->mu);
        atomic_store(&e->replied, true);
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
    }
    return true;
}

/* An entry between requests has no unique; counted from that rather than
 * kept in a counter, the request path pays nothing for a rare abort. */
int uring_idle_queue(void)
{
    if (!atomic_load(&U.active) || U.n == 0)
        return -1;
    unsigned per = U.n / U.queues;
    int best = -1, most = 0;
    for (unsigned q = 0; q < U.queues; q++) {
        int idle = 0;
        for (unsigned i = q * per; i < (q + 1) * per; i++)
            idle += U.ents[i].thr_up &&
                    atomic_load_explicit(&U.ents[i].unique, memory_order_relaxed) == 0;
        if (idle > most) {
            most = idle;
            best = (int)q;
        }
    }
    return best;
}
