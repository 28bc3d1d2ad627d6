/*
 * chan.c - the daemon's reads and writes of /dev/fuse (libfuse's custom
 * I/O hook), for what libfuse 3.14 cannot say to the kernel.
 *
 * Why: without FUSE_HANDLE_KILLPRIV_V2 the kernel leaves SB_NOSEC off on a
 * FUSE mount, so every write() first asks the daemon for the file's
 * security.capability (file_remove_privs -> cap_inode_need_killpriv): one
 * extra round trip per write, a quarter of a transaction's requests.  With
 * V2 the inode latches S_NOSEC after its first write and the kernel
 * instead flags the requests of callers without CAP_FSETID so that the
 * daemon clears set-user-ID/set-group-ID itself.  libfuse 3.14 has no
 * capability bit for V2 and rebuilds the INIT reply's flags from the bits
 * it knows, so the flag is added here, on the way out, when the kernel
 * offered it.  libfuse also drops the per-request kill flags; they are
 * read here, on the way in, and kept for the thread that handles the
 * request (libfuse's workers handle the request they read themselves).
 *
 * One worker at a time reads /dev/fuse (the reader) and keeps reading
 * after it has answered, so that a client's consecutive requests are
 * served by the same thread: the kernel's readers wait first in, first
 * out, and libfuse's idle workers otherwise take the requests in turn,
 * each one a sleeping thread to wake on another CPU.  A handler that may
 * wait (a log force, an abort's invalidation, which needs other requests
 * served) hands the reader's part on first (chan_yield_reader).  A
 * reader that finds more requests queued behind the one it took (several
 * clients) hands on too and lets every worker read for a while (busy),
 * so that several clients are still served in parallel.
 *
 * Before it blocks, the reader polls /dev/fuse for a short while
 * (poll_us): a client's next request usually follows its last reply
 * within a few microseconds, and a reader that slept must be woken on
 * its CPU, which on a virtual machine means an interrupt to a halted
 * vCPU: a round trip of a trivial request took 19-21 us there against
 * 11-13 us with the poll (and 6-8 us with client and daemon on one CPU).
 * The poll yields the CPU to anything else runnable, so it only uses
 * time that would be idle; on busy CPUs nothing halts and it gains
 * nothing, hence off by default.
 *
 * The wire structures are the kernel's ABI (linux/fuse.h, protocol 7.33+);
 * only fields at fixed offsets of stable structures are touched.
 */
#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static _Atomic uint64_t init_unique; /* INIT request awaiting its reply */
static atomic_bool init_offers_v2;
static atomic_bool init_offers_uring;
static atomic_bool killpriv_v2;      /* negotiated */
static atomic_bool uring_asked;      /* the INIT reply asks for io_uring */
static struct fuse_session *chan_se;

/* FUSE_OVER_IO_URING (protocol 7.42) is bit 41: bit 9 of flags2. */
#define INIT_FLAG2_URING (1u << 9)
static _Thread_local bool req_kill;  /* request being handled on this thread */

static pthread_mutex_t reader_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t reader_key; /* set while this thread is the reader */
static bool reader_on;           /* multithreaded loop */
/* > 0: requests were found queued lately (several clients); workers then
 * read side by side as libfuse's loop does, since passing one reader's
 * part along would serialize the reads behind each hand-over's wake-up.
 * Counts down by one per request read with nothing queued behind it. */
#define BUSY_SPAN 256
static atomic_int busy;

/* A worker that exits (libfuse ends idle ones, or cancels them at
 * unmount) must not take the reader's part with it. */
static void reader_exit(void *v)
{
    if (v)
        pthread_mutex_unlock(&reader_mu);
}

void chan_yield_reader(void)
{
    if (reader_on && pthread_getspecific(reader_key)) {
        pthread_setspecific(reader_key, NULL);
        pthread_mutex_unlock(&reader_mu);
    }
}

void chan_note_request(const char *buf, size_t n)
{
    req_kill = false;
    if (n < sizeof(struct fuse_in_header))
        return;
    struct fuse_in_header h;
    memcpy(&h, buf, sizeof(h));
    const char *arg = buf + sizeof(h);
    size_t alen = n - sizeof(h);
    uint32_t v;
    switch (h.opcode) {
    case FUSE_INIT:
        if (alen >= offsetof(struct fuse_init_in, flags) + sizeof(v)) {
            memcpy(&v, arg + offsetof(struct fuse_init_in, flags), sizeof(v));
            atomic_store(&init_offers_v2, (v & FUSE_HANDLE_KILLPRIV_V2) != 0);
            uint32_t v2 = 0;
            if ((v & FUSE_INIT_EXT) &&
                alen >= offsetof(struct fuse_init_in, flags2) + sizeof(v2))
                memcpy(&v2, arg + offsetof(struct fuse_init_in, flags2), sizeof(v2));
            atomic_store(&init_offers_uring, (v2 & INIT_FLAG2_URING) != 0);
            atomic_store(&init_unique, h.unique);
        }
        break;
    case FUSE_WRITE:
        if (alen >= offsetof(struct fuse_write_in, write_flags) + sizeof(v)) {
            memcpy(&v, arg + offsetof(struct fuse_write_in, write_flags), sizeof(v));
            req_kill = v & FUSE_WRITE_KILL_SUIDGID;
        }
        break;
    case FUSE_OPEN:
        if (alen >= offsetof(struct fuse_open_in, open_flags) + sizeof(v)) {
            memcpy(&v, arg + offsetof(struct fuse_open_in, open_flags), sizeof(v));
            req_kill = v & FUSE_OPEN_KILL_SUIDGID;
        }
        break;
    case FUSE_SETATTR:
        if (alen >= sizeof(v)) {
            memcpy(&v, arg, sizeof(v));
            req_kill = v & FATTR_KILL_SUIDGID;
        }
        break;
    default:
        break;
    }
}

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* True when a request is queued, found within fs.poll_us. */
static bool poll_briefly(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (fs.poll_us == 0)
        return false;
    uint64_t until = now_us() + fs.poll_us;
    do {
        if (poll(&p, 1, 0) > 0)
            return true;
        sched_yield();
    } while (now_us() < until);
    return false;
}

static ssize_t chan_read(int fd, void *buf, size_t len, void *userdata)
{
    (void)userdata;
    if (reader_on && !pthread_getspecific(reader_key) && atomic_load(&busy) == 0) {
        pthread_mutex_lock(&reader_mu);
        if (atomic_load(&busy) > 0)
            pthread_mutex_unlock(&reader_mu); /* wake the next waiter too */
        else
            pthread_setspecific(reader_key, &reader_mu);
    }
    (void)poll_briefly(fd);
    ssize_t n = read(fd, buf, len);
    if (n > 0) {
        chan_note_request(buf, (size_t)n);
        /* More requests already queued (several clients): let the next
         * worker take them while this one handles its own. */
        if (reader_on) {
            /* poll() is a cancellation point and the request is read:
             * libfuse's stop must not lose it here. */
            int cs;
            pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
                atomic_store(&busy, BUSY_SPAN);
                chan_yield_reader();
            } else {
                int b = atomic_load(&busy);
                while (b > 0 && !atomic_compare_exchange_weak(&busy, &b, b - 1))
                    ;
            }
            pthread_setcancelstate(cs, NULL);
        }
    }
    return n;
}

static uint32_t get32(const char *base, size_t off)
{
    uint32_t v;
    memcpy(&v, base + off, sizeof(v));
    return v;
}

static void put32(char *base, size_t off, uint32_t v)
{
    memcpy(base + off, &v, sizeof(v));
}

/* io_uring is asked for only once its threads and buffers are ready: from
 * the reply on, the kernel holds every request until the rings take them. */
static void ask_uring(char *out, size_t len)
{
    if (!fs.uring)
        return;
    if (!atomic_load(&init_offers_uring)) {
        say("io_uring: the kernel does not offer it (needs Linux 6.14+ and "
            "/sys/module/fuse/parameters/enable_uring = Y); using /dev/fuse\n");
        return;
    }
    if (len < offsetof(struct fuse_init_out, flags2) + sizeof(uint32_t))
        return;
    uint32_t flags = get32(out, offsetof(struct fuse_init_out, flags));
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t payload = get32(out, offsetof(struct fuse_init_out, max_write));
    if (flags & FUSE_MAX_PAGES) {
        uint16_t mp;
        memcpy(&mp, out + offsetof(struct fuse_init_out, max_pages), sizeof(mp));
        if ((size_t)mp * page > payload)
            payload = (size_t)mp * page;
    } else if (32 * page > payload) {
        payload = 32 * page; /* the kernel's default request size */
    }
    if (payload < FUSE_MIN_READ_BUFFER)
        payload = FUSE_MIN_READ_BUFFER;
    if (!uring_prepare(chan_se, payload))
        return;
    put32(out, offsetof(struct fuse_init_out, flags), flags | FUSE_INIT_EXT);
    uint32_t f2 = get32(out, offsetof(struct fuse_init_out, flags2));
    put32(out, offsetof(struct fuse_init_out, flags2), f2 | INIT_FLAG2_URING);
    atomic_store(&uring_asked, true);
}

static void patch_init_reply(struct iovec *iov, int count)
{
    uint64_t want = atomic_load(&init_unique);
    if (!want || count < 2 || iov[0].iov_len < sizeof(struct fuse_out_header))
        return;
    struct fuse_out_header oh;
    memcpy(&oh, iov[0].iov_base, sizeof(oh));
    if (oh.unique != want)
        return;
    atomic_store(&init_unique, 0);
    if (oh.error != 0 ||
        iov[1].iov_len < offsetof(struct fuse_init_out, flags) + sizeof(uint32_t))
        return;
    char *out = iov[1].iov_base;
    if (atomic_load(&init_offers_v2)) {
        uint32_t flags = get32(out, offsetof(struct fuse_init_out, flags));
        put32(out, offsetof(struct fuse_init_out, flags), flags | FUSE_HANDLE_KILLPRIV_V2);
        atomic_store(&killpriv_v2, true);
    }
    ask_uring(out, iov[1].iov_len);
}

static ssize_t chan_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    (void)userdata;
    ssize_t n;
    if (uring_reply(iov, count, &n))
        return n;
    if (atomic_load_explicit(&init_unique, memory_order_relaxed)) {
        patch_init_reply(iov, count);
        n = writev(fd, iov, count);
        if (atomic_exchange(&uring_asked, false))
            uring_start(n >= 0); /* the kernel now knows; register */
        return n;
    }
    return writev(fd, iov, count);
}

int chan_attach(struct fuse_session *se, bool multithreaded)
{
    if (multithreaded && pthread_key_create(&reader_key, reader_exit) == 0)
        reader_on = true;
    chan_se = se;
    static const struct fuse_custom_io io = {
        .read = chan_read,
        .writev = chan_writev,
    };
    return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

bool chan_kill_suidgid(void)
{
    return atomic_load_explicit(&killpriv_v2, memory_order_relaxed) && req_kill;
}
