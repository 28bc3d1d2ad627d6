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
 * A handler that waits for requests the daemon itself triggers (an
 * abort waits for its invalidation, whose writeback the kernel queues on
 * the inval thread's CPU) could otherwise hold the last free entry of
 * that queue: such a wait first makes its queue keep an entry besides the
 * waiting ones, registering a spare (uring_wait_begin).
 *
 * Once the INIT reply asks for io_uring the kernel holds every request
 * until all queues have an entry, so everything that can fail (rings,
 * buffers, threads) is set up before the reply is sent.  A REGISTER the
 * kernel refuses makes it fall back to /dev/fuse by itself, but only
 * while some queue has no entry yet: hence the first entry of every
 * queue registers first, queue by queue, and a refusal among those turns
 * the transport off here too.  A queue whose entries all end on errors
 * ends the connection.
 *
 * The wire structures are the kernel's ABI (protocol 7.42), which the
 * build's headers predate.
 */
#include "daemon.h"
#include "cpulist.h"
#include "uring_ring.h"

#include <errno.h>
#include <linux/fuse.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
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

/* Spare entries a queue may gain for handlers that wait on requests the
 * daemon itself triggers (uring_wait_begin); one per such waiter. */
#define SPARES 4
#define RETRIES 50 /* of a transient failure (EINTR, EAGAIN), 2 ms apart */

struct uent {
    struct ring r;
    pthread_t thr;
    bool thr_up;
    bool first;                /* the first entry of its queue */
    bool spare;                /* registered by uring_wait_begin */
    int reg;                   /* 0 not yet, 1 registered, < 0 refused (U.mu) */
    unsigned qid;
    uint32_t opcode;           /* of the request being handled */
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
    unsigned n;       /* slots in ents: queues x (per + SPARES) */
    unsigned per;     /* entries of a queue at the start */
    unsigned queues;
    unsigned *live;   /* registered entries of each queue that still run (mu) */
    unsigned *waiting; /* handlers of each queue in uring_wait_begin (mu) */
    unsigned turn;    /* first entries registered so far, in queue order (mu) */
    bool fallback;    /* the kernel refused a first entry: /dev/fuse (mu) */
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

static bool transient(int err)
{
    return err == EINTR || err == EAGAIN || err == EBUSY || err == ETIME;
}

static void pause_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* Register e's entry: 0 once the kernel took it, else its -errno.  A
 * refusal is completed at once, during the submission; a success only
 * when the first request arrives, so a completion with a result >= 0 is
 * left for the thread's loop.  Transient failures are retried. */
static int ent_register(struct uent *e)
{
    struct ring *r = &e->r;
    ring_push(r, U.devfd, URING_CMD_REGISTER, e->iov, e->qid, 0);
    for (int tries = 0;; tries++) {
        long n = ring_enter(r->fd, r->to_submit, 0, 0, NULL, 0);
        if (n > 0)
            r->to_submit -= (unsigned)n <= r->to_submit ? (unsigned)n : r->to_submit;
        else if (n < 0 && !transient(errno))
            return -errno;
        unsigned head = atomic_load_explicit(r->cq_head, memory_order_relaxed);
        if (head != atomic_load_explicit(r->cq_tail, memory_order_acquire)) {
            int res = r->cqes[head & r->cq_mask].res;
            if (res >= 0)
                return 0;
            atomic_store_explicit(r->cq_head, head + 1, memory_order_release);
            if (!transient(-res) || tries >= RETRIES)
                return res;
            ring_push(r, U.devfd, URING_CMD_REGISTER, e->iov, e->qid, 0);
        } else if (r->to_submit == 0) {
            return 0;
        } else if (tries >= RETRIES) {
            return -EAGAIN;
        }
        pause_ms(2);
    }
}

/* Opcodes libfuse answers with no reply.  The kernel sends them over
 * /dev/fuse today; should one come over a ring, its entry must still be
 * committed, or it would wait for an answer that never comes. */
static bool noreply(uint32_t opcode)
{
    return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET ||
           opcode == FUSE_INTERRUPT || opcode == FUSE_NOTIFY_REPLY;
}

/* Hand one request to libfuse as /dev/fuse would have delivered it. */
static void handle(struct uent *e)
{
    struct fuse_in_header h;
    memcpy(&h, e->hdr.in_out, sizeof(h));
    uint32_t psz = e->hdr.ent.payload_sz;
    size_t head = h.len >= sizeof(h) + psz ? h.len - sizeof(h) - psz : SIZE_MAX;
    atomic_store(&e->replied, false);
    e->opcode = h.opcode;
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
    if (!atomic_load(&e->replied) && noreply(h.opcode)) {
        struct fuse_out_header oh = {.len = sizeof(oh), .unique = h.unique};
        memcpy(e->hdr.in_out, &oh, sizeof(oh));
        e->hdr.ent.payload_sz = 0;
        atomic_store(&e->replied, true);
    }
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

/* An entry that ended on an error (not the connection's end).  A queue
 * with no entry left would hold its CPU's requests forever: the daemon
 * then stops as after SIGTERM, and the unmount ends those requests. */
static void ent_lost(struct uent *e)
{
    pthread_mutex_lock(&U.mu);
    bool last = --U.live[e->qid] == 0;
    pthread_mutex_unlock(&U.mu);
    if (last && !atomic_load(&U.stop) && !atomic_load(&U.draining)) {
        say("io_uring: queue %u has no ring entry left; requests from CPU %u "
            "would wait forever: ending the connection\n", e->qid, e->qid);
        kill(getpid(), SIGTERM);
    }
}

/* Register e, in an order that tells a refusal the kernel fell back on
 * (the first entry of each queue, queue by queue: the rings are not all
 * up yet, so the kernel turned io_uring off) from one that only costs an
 * entry.  False: the thread ends. */
static bool ent_join(struct uent *e)
{
    pthread_mutex_lock(&U.mu);
    while (!U.fallback && !atomic_load(&U.stop) &&
           (e->first ? U.turn < e->qid : U.turn < U.queues))
        pthread_cond_wait(&U.cv, &U.mu);
    bool go = !U.fallback && !atomic_load(&U.stop);
    pthread_mutex_unlock(&U.mu);
    if (!go)
        return false;
    int rc = ent_register(e);
    pthread_mutex_lock(&U.mu);
    e->reg = rc < 0 ? rc : 1;
    if (rc == 0)
        U.live[e->qid]++;
    if (e->first) {
        if (rc < 0) {
            U.fallback = true;
            atomic_store(&U.active, false);
        }
        U.turn++;
    }
    pthread_cond_broadcast(&U.cv);
    pthread_mutex_unlock(&U.mu);
    if (rc < 0 && e->first)
        say("io_uring: the kernel refused the ring of queue %u: %s; requests "
            "go over /dev/fuse\n", e->qid, strerror(-rc));
    else if (rc < 0)
        say("io_uring: the kernel refused an entry of queue %u: %s; the queue "
            "has one fewer\n", e->qid, strerror(-rc));
    return rc == 0;
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
    if (!ent_join(e))
        return NULL;
    uint64_t id = 0;
    int again = 0;
    for (;;) {
        int res = 0;
        int w = ring_wait(&e->r, &U.stop, &res);
        if (w != 0) {
            if (w < 0) {
                say("io_uring: queue %u: io_uring_enter: %s; this entry stops\n",
                    e->qid, strerror(-w));
                ent_lost(e);
            }
            break;
        }
        if (res < 0 && transient(-res) && id && again++ < RETRIES) {
            pause_ms(2); /* the commit did not reach the kernel: again */
            ring_push(&e->r, U.devfd, URING_CMD_COMMIT_AND_FETCH, NULL, e->qid, id);
            continue;
        }
        if (res < 0) {
            /* The connection's end (unmount, abort) ends the entry. */
            if (res != -ENOTCONN && res != -ECONNABORTED && res != -ECANCELED) {
                say("io_uring: queue %u: %s; this entry stops\n", e->qid,
                    strerror(-res));
                ent_lost(e);
            }
            break;
        }
        again = 0;
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
        id = atomic_exchange(&e->unique, 0);
        ring_push(&e->r, U.devfd, URING_CMD_COMMIT_AND_FETCH, NULL, e->qid, id);
    }
    return NULL;
}

/* The kernel has a queue for every possible CPU (up to the highest). */
static unsigned possible_cpus(void)
{
    char line[4096];
    FILE *f = fopen("/sys/devices/system/cpu/possible", "r");
    bool got = f && fgets(line, sizeof(line), f);
    if (f)
        fclose(f);
    unsigned hi;
    int rc = got ? cpulist_parse(line, 4096, &hi) : -EIO;
    if (rc < 0) {
        say("io_uring: /sys/devices/system/cpu/possible: %s\n",
            got ? "not a cpulist" : strerror(errno ? errno : EIO));
        return 0;
    }
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
    free(U.live);
    free(U.waiting);
    U.ents = NULL;
    U.live = U.waiting = NULL;
    U.n = 0;
}

/* Ring and buffer of slot e (its thread is started apart). */
static int ent_setup(struct uent *e)
{
    size_t room = (size_t)sysconf(_SC_PAGESIZE);
    e->buf = aligned_alloc(room, room + ((U.payload + room - 1) / room) * room);
    if (!e->buf)
        return -ENOMEM;
    e->iov[0] = (struct iovec){&e->hdr, sizeof(e->hdr)};
    e->iov[1] = (struct iovec){e->buf + room, U.payload};
    return ring_open(&e->r);
}

bool uring_prepare(struct fuse_session *se, size_t payload)
{
    U.queues = possible_cpus();
    if (U.queues == 0) {
        say("io_uring: cannot read the possible CPUs; using /dev/fuse\n");
        return false;
    }
    unsigned per = fs.uring_threads ? fs.uring_threads : 1;
    U.per = per;
    U.se = se;
    U.devfd = fuse_session_fd(se);
    U.payload = payload;
    U.n = U.queues * (per + SPARES);
    U.ents = calloc(U.n, sizeof(*U.ents));
    U.live = calloc(U.queues, sizeof(*U.live));
    U.waiting = calloc(U.queues, sizeof(*U.waiting));
    int err = U.ents && U.live && U.waiting ? 0 : ENOMEM;
    for (unsigned i = 0; U.ents && i < U.n; i++) {
        struct uent *e = &U.ents[i];
        e->r.fd = -1;
        pthread_mutex_init(&e->mu, NULL);
        pthread_cond_init(&e->cv, NULL);
        if (i < U.queues * per) {
            e->qid = i / per;
            e->first = i % per == 0;
            if (!err)
                err = -ent_setup(e);
        } else {
            e->qid = (i - U.queues * per) / SPARES;
            e->spare = true;
        }
    }
    if (err) {
        say("io_uring: cannot set up the rings: %s; using /dev/fuse\n", strerror(err));
        release_all();
        return false;
    }
    U.go = 0;
    U.turn = 0;
    U.fallback = false;
    for (unsigned i = 0; i < U.queues * per; i++) {
        err = pthread_create(&U.ents[i].thr, NULL, ent_main, &U.ents[i]);
        if (err) {
            say("io_uring: cannot start a thread: %s; using /dev/fuse\n", strerror(err));
            uring_start(false);
            uring_stop();
            release_all();
            return false;
        }
        U.ents[i].thr_up = true;
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
        say("io_uring: %u queues x %u threads\n", U.queues, U.per);
}

/* A spare entry for queue q, registered before this returns (a request
 * queued before the registration would not reach it).  Caller holds
 * U.mu. */
static bool spare_add(unsigned q)
{
    struct uent *e = NULL;
    for (unsigned i = U.queues * U.per; i < U.n && !e; i++)
        if (U.ents[i].qid == q && !U.ents[i].thr_up)
            e = &U.ents[i];
    if (!e || atomic_load(&U.stop))
        return false;
    if (ent_setup(e) < 0 || pthread_create(&e->thr, NULL, ent_main, e) != 0) {
        ring_close(&e->r);
        return false;
    }
    e->thr_up = true;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 2;
    while (e->reg == 0 && !atomic_load(&U.stop) &&
           pthread_cond_timedwait(&U.cv, &U.mu, &dl) != ETIMEDOUT)
        ;
    return e->reg > 0;
}

bool uring_wait_begin(void)
{
    struct uent *e = cur;
    if (!e || !atomic_load(&U.active))
        return false;
    pthread_mutex_lock(&U.mu);
    unsigned q = e->qid;
    U.waiting[q]++;
    /* Every other handler of the queue ends by itself; a waiter needs
     * one entry besides the waiters to serve what it waits for. */
    while (U.live[q] <= U.waiting[q]) {
        if (!spare_add(q)) {
            say("io_uring: no spare entry for queue %u; a wait there may "
                "stall until its timeout\n", q);
            break;
        }
    }
    pthread_mutex_unlock(&U.mu);
    return true;
}

void uring_wait_end(bool began)
{
    if (!began)
        return;
    pthread_mutex_lock(&U.mu);
    U.waiting[cur->qid]--;
    pthread_mutex_unlock(&U.mu);
}

void uring_quiesce(void)
{
    atomic_store(&U.draining, true);
    while (atomic_load(&U.busy) > 0)
        pause_ms(1);
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

/* A READ answer points into a segment's mapping, and a page that cannot
 * be read in (an I/O error, a segment file cut short) would SIGBUS a
 * memcpy.  Over /dev/fuse the kernel's copy from the writev fails the
 * request with EIO instead; process_vm_readv of the daemon's own memory
 * reports such a page as an error the same way. */
static bool copy_safe(void *dst, const void *src, size_t len)
{
    struct iovec l = {dst, len}, r = {(void *)(uintptr_t)src, len};
    ssize_t n = process_vm_readv(getpid(), &l, 1, &r, 1, 0);
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {
        memcpy(dst, src, len); /* a sandbox without it: as before */
        return true;
    }
    return n == (ssize_t)len;
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
        if (i > 0 && e->opcode == FUSE_READ && len > 0) {
            if (!copy_safe(p + total, b, len)) {
                say("io_uring: a READ answer's bytes cannot be read (a "
                    "damaged segment file?); EIO\n");
                oh.error = -EIO;
                total = 0;
                break;
            }
        } else {
            memcpy(p + total, b, len);
        }
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
