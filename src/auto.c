/*
 * Automatic range detection (rvm_begin_auto_transaction).  From the first
 * auto transaction on, mapped regions are write-protected ("armed").  The
 * first write to a page faults; the signal handler keeps a copy of the
 * page (its twin) for the writing thread's auto transaction and lets the
 * write through.  At commit each written page is compared with its twin
 * and only the bytes that differ are declared, as set_range would have
 * done; abort copies the twins back.
 *
 * What a transaction costs is its faults and protection changes, not the
 * diff, so three things avoid them:
 *  - userfaultfd write-protect where available (below);
 *  - regions stay armed between auto transactions (re-protecting whole
 *    regions at every begin costs a walk of every page table entry);
 *    they are disarmed when unmapped, or when RVM terminates.
 *  - parked pages: when a thread's auto transaction ends and no other
 *    transaction is active, the pages it changed stay writable, with
 *    twins refreshed to their committed bytes, for that thread's next
 *    auto transaction, which takes them without a fault and diffs them at
 *    commit (an unchanged one is protected again then).  Any other
 *    thread's auto begin, or a manual transaction active at the next
 *    begin, protects them again first; so a page is never writable
 *    without faulting for a transaction that has not claimed it, except
 *    for the owner of a parked page.
 *
 * A page written by another thread while an auto transaction owns it
 * goes with the owner's commit; the commit protects its pages before it
 * diffs them whenever another transaction is active (auto_collect), so no
 * write can fall between the diff and the end of the ownership, and it
 * queues its record before the ownership ends, so a later owner's record
 * of the same bytes comes after it in the log.
 *
 * Rules (documented in rvm.h): a page belongs to the first auto
 * transaction that writes it until that one ends; a thread runs one auto
 * transaction at a time and only it writes for that transaction; system
 * calls that write into protected pages (read(2) into a region) fail with
 * EFAULT.  Writes by threads outside auto transactions fault once per
 * page, which then stays writable ("loose") until the next auto begin.
 * Faults outside regions, or while no region is armed, go to the handler
 * that was installed before.
 *
 * Lock order: rvm.regions_lock, then auto_mu, then rvm.txn_mu.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rvm_internal.h"
#include "txn.h"

/* Runs of changed bytes closer than a range descriptor are joined: the
 * descriptor would cost more than the bytes between them. */
#define JOIN_GAP 24
/* Most pages one thread keeps parked; the diff of each costs a compare. */
#define PARK_MAX 32
/* Twin buffers a thread keeps for its next faults. */
#define TWIN_CACHE 32

/* Linux 6.4; older headers (Debian 12's) lack it. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1ULL << 13)
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

static pthread_mutex_t auto_mu = PTHREAD_MUTEX_INITIALIZER;
static int armed;                       /* regions are write-protected (auto_mu) */
static int auto_active;                 /* auto transactions active (auto_mu) */
static char **loose;                    /* pages unprotected for non-auto writers */
static size_t nloose, loosecap;
static struct auto_page *parked;        /* pages parked for parked_owner */
static size_t nparked;
static const void *parked_owner, *last_begin; /* threads, as &self */
static struct sigaction prev_segv, prev_bus;
static bool handler_installed;
static unsigned long wp_gen;            /* bumped by every protection */
static int direct_busy;                 /* direct segment writes (auto_mu) */
static pthread_cond_t direct_cond = PTHREAD_COND_INITIALIZER;

/*
 * Write protection.  Where the kernel offers userfaultfd write-protect
 * with SIGBUS delivery (Linux 6.4 for unpopulated pages), a region is
 * registered with it: protecting and unprotecting a page then changes
 * only its page table entry, where mprotect splits and merges the
 * region's VMA, which costs more than the signal itself.  A region the
 * kernel will not register (a private file mapping on older kernels)
 * uses mprotect, and so does everything when userfaultfd is missing.
 */
static int uffd = -2;                   /* -2: not tried yet, -1: unavailable */
struct wp_range {
    char *addr;
    size_t len;
};
static struct wp_range *wpr;            /* regions registered with uffd */
static size_t nwpr, wprcap;

static __thread struct rvm_txn *cur_auto;
static __thread char self;              /* its address names the thread */
static __thread unsigned char *twin_cache[TWIN_CACHE];
static __thread int ntwin_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_drop(void *unused)
{
    (void)unused;
    while (ntwin_cache > 0)
        free(twin_cache[--ntwin_cache]);
}

static void cache_key_make(void)
{
    pthread_key_create(&cache_key, cache_drop);
}

static unsigned char *twin_get(size_t ps)
{
    return ntwin_cache > 0 ? twin_cache[--ntwin_cache] : malloc(ps);
}

static void twin_put(unsigned char *twin)
{
    if (ntwin_cache < TWIN_CACHE) {
        /* The key's destructor frees the cache when the thread exits. */
        if (ntwin_cache == 0)
            pthread_setspecific(cache_key, &self);
        twin_cache[ntwin_cache++] = twin;
    } else {
        free(twin);
    }
}

static void chain(int sig, siginfo_t *si, void *uc)
{
    struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        prev->sa_sigaction(sig, si, uc);
    } else if (prev->sa_handler == SIG_DFL || prev->sa_handler == SIG_IGN) {
        /* Returning re-executes the faulting write under the default action. */
        signal(sig, SIG_DFL);
    } else {
        prev->sa_handler(sig);
    }
}

/* auto_mu held. */
static bool wp_registered(const char *p)
{
    for (size_t i = 0; i < nwpr; i++)
        if (p >= wpr[i].addr && p < wpr[i].addr + wpr[i].len)
            return true;
    return false;
}

static int uffd_wp(char *p, size_t n, bool protect)
{
    struct uffdio_writeprotect w = {
        .range = {(uintptr_t)p, n},
        .mode = protect ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
    };
    return ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
}

/* Protect or open [p, p+n) of one region (auto_mu held). */
static int wp_set(char *p, size_t n, bool protect)
{
    if (protect)
        __atomic_add_fetch(&wp_gen, 1, __ATOMIC_RELEASE);
    if (wp_registered(p))
        return uffd_wp(p, n, protect);
    return mprotect(p, n, protect ? PROT_READ : PROT_READ | PROT_WRITE);
}

static void uffd_open(void)
{
    uffd = -1;
    if (getenv("RVM_AUTO_NO_UFFD"))
        return; /* tests of the mprotect path, comparisons */
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd < 0)
        return;
    /* Without WP_UNPOPULATED a first write to a never-touched page would
     * not fault at all: then uffd is no use here. */
    struct uffdio_api api = {.api = UFFD_API,
                             .features = UFFD_FEATURE_SIGBUS | UFFD_FEATURE_WP_UNPOPULATED};
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        close(fd);
        return;
    }
    uffd = fd;
}

/* Write-protect a whole region (auto_mu held). */
static void region_arm(struct region *r)
{
    __atomic_add_fetch(&wp_gen, 1, __ATOMIC_RELEASE);
    if (uffd == -2)
        uffd_open();
    if (uffd >= 0 && nwpr == wprcap) {
        struct wp_range *nv = reallocarray(wpr, wprcap * 2 + 8, sizeof *nv);
        if (nv) {
            wpr = nv;
            wprcap = wprcap * 2 + 8;
        }
    }
    if (uffd >= 0 && nwpr < wprcap) {
        struct uffdio_register reg = {.range = {(uintptr_t)r->vmaddr, r->length},
                                      .mode = UFFDIO_REGISTER_MODE_WP};
        if (ioctl(uffd, UFFDIO_REGISTER, &reg) == 0) {
            wpr[nwpr++] = (struct wp_range){r->vmaddr, r->length};
            if (uffd_wp(r->vmaddr, r->length, true) == 0)
                return;
            nwpr--;
            struct uffdio_range rg = {(uintptr_t)r->vmaddr, r->length};
            ioctl(uffd, UFFDIO_UNREGISTER, &rg);
        }
    }
    mprotect(r->vmaddr, r->length, PROT_READ);
}

/*
 * A child of fork() inherits the regions but not their userfaultfd
 * registration, and its pages lose their write-protect bits: protect them
 * with mprotect instead, so that the child's writes still fault, and open
 * again the pages that were writable in the parent.
 */
static void fork_prepare(void)
{
    pthread_mutex_lock(&auto_mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&auto_mu);
}

static void fork_child(void)
{
    size_t ps = rvm_page_size();
    if (nwpr) {
        for (size_t i = 0; i < nwpr; i++)
            mprotect(wpr[i].addr, wpr[i].len, PROT_READ);
        for (size_t k = 0; k < nparked; k++)
            mprotect(parked[k].page, ps, PROT_READ | PROT_WRITE);
        for (size_t k = 0; k < nloose; k++)
            mprotect(loose[k], ps, PROT_READ | PROT_WRITE);
        for (size_t k = 0; cur_auto && k < cur_auto->npages; k++)
            mprotect(cur_auto->pages[k].page, ps, PROT_READ | PROT_WRITE);
        nwpr = 0;
    }
    if (uffd >= 0)
        close(uffd);
    uffd = -2;
    pthread_mutex_unlock(&auto_mu);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void atfork_install(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* Make a region plain writable memory again (auto_mu held). */
static void region_disarm(struct region *r)
{
    for (size_t i = 0; i < nwpr; i++) {
        if (wpr[i].addr != r->vmaddr)
            continue;
        uffd_wp(r->vmaddr, r->length, false);
        struct uffdio_range rg = {(uintptr_t)r->vmaddr, r->length};
        ioctl(uffd, UFFDIO_UNREGISTER, &rg);
        wpr[i] = wpr[--nwpr];
        return;
    }
    mprotect(r->vmaddr, r->length, PROT_READ | PROT_WRITE);
}

static int page_add(struct rvm_txn *t, char *page, unsigned char *twin, struct region *reg)
{
    if (t->npages == t->pagecap) {
        size_t nc = t->pagecap ? t->pagecap * 2 : 16;
        struct auto_page *nv = realloc(t->pages, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        t->pages = nv;
        t->pagecap = nc;
    }
    t->pages[t->npages++] = (struct auto_page){page, twin, reg, false};
    return 0;
}

static void loose_add(char *page)
{
    if (nloose == loosecap) {
        size_t nc = loosecap ? loosecap * 2 : 64;
        char **nv = realloc(loose, nc * sizeof *nv);
        if (!nv)
            return; /* it stays writable until its region is unmapped */
        loose = nv;
        loosecap = nc;
    }
    loose[nloose++] = page;
}

/*
 * The fault is synchronous: the thread was writing region memory, not
 * running inside librvm or malloc, so taking locks and allocating here is
 * safe.  A write-protect fault is SIGSEGV/SEGV_ACCERR under mprotect and
 * SIGBUS/BUS_ADRERR under userfaultfd.
 */
static __thread char *last_page;
static __thread unsigned long last_gen;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    size_t ps = rvm_page_size();
    char *page = (char *)((uintptr_t)si->si_addr & ~(uintptr_t)(ps - 1));
    bool wp = sig == SIGSEGV ? si->si_code == SEGV_ACCERR : si->si_code == BUS_ADRERR;
    if (!wp || !__atomic_load_n(&armed, __ATOMIC_ACQUIRE)) {
        chain(sig, si, uc);
        return;
    }
    /* The same fault again with nothing protected in between: it is not
     * ours to fix (a SIGBUS of another kind, say). */
    unsigned long gen = __atomic_load_n(&wp_gen, __ATOMIC_ACQUIRE);
    if (page == last_page && gen == last_gen) {
        last_page = NULL;
        chain(sig, si, uc);
        return;
    }
    last_page = page;
    last_gen = gen;
    pthread_rwlock_rdlock(&rvm.regions_lock);
    struct region *reg = region_find(page, ps);
    bool ours = reg != NULL;
    struct rvm_txn *t = cur_auto;
    if (reg && t) {
        unsigned char *twin = twin_get(ps);
        if (!twin || txn_hold_region(t, reg) < 0 || page_add(t, page, twin, reg) < 0) {
            free(twin);
            ours = false; /* out of memory: let the fault be seen */
        } else {
            memcpy(twin, page, ps);
        }
    }
    if (ours) {
        pthread_mutex_lock(&auto_mu);
        if ((sig == SIGBUS) != wp_registered(page) || wp_set(page, ps, false) < 0)
            ours = false;
        else if (!t)
            loose_add(page);
        pthread_mutex_unlock(&auto_mu);
    }
    pthread_rwlock_unlock(&rvm.regions_lock);
    if (!ours)
        chain(sig, si, uc);
}

/* Protect the parked pages again and forget them (auto_mu held). */
static void parked_revoke(void)
{
    size_t ps = rvm_page_size();
    for (size_t k = 0; k < nparked; k++) {
        wp_set(parked[k].page, ps, true);
        free(parked[k].twin);
    }
    nparked = 0;
    parked_owner = NULL;
}

/* Manual transactions active besides the auto ones (auto_mu held); ours
 * says whether the caller's own new transaction is counted already. */
static uint64_t manual_active(bool ours)
{
    pthread_mutex_lock(&rvm.txn_mu);
    uint64_t n = rvm.n_active;
    pthread_mutex_unlock(&rvm.txn_mu);
    uint64_t autos = (uint64_t)auto_active + (ours ? 1 : 0);
    return n > autos ? n - autos : 0;
}

static bool is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_fault;
}

/* Called when arming (auto_mu held). */
static int handler_take(void)
{
    /* Someone may have replaced the handlers since regions were last
     * armed (test frameworks do): take them up again, chaining to them. */
    struct sigaction cur_segv, cur_bus;
    if (handler_installed && sigaction(SIGSEGV, NULL, &cur_segv) == 0 &&
        sigaction(SIGBUS, NULL, &cur_bus) == 0 && (!is_ours(&cur_segv) || !is_ours(&cur_bus)))
        handler_installed = false;
    if (handler_installed)
        return 0;
    struct sigaction sa, old_segv, old_bus;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) < 0)
        return -1;
    if (sigaction(SIGBUS, &sa, &old_bus) < 0) {
        sigaction(SIGSEGV, &old_segv, NULL);
        return -1;
    }
    /* Never chain to ourselves (one of the two was still ours). */
    if (!is_ours(&old_segv))
        prev_segv = old_segv;
    if (!is_ours(&old_bus))
        prev_bus = old_bus;
    handler_installed = true;
    return 0;
}

bool auto_armed(void)
{
    return __atomic_load_n(&armed, __ATOMIC_ACQUIRE) != 0;
}

void auto_protect_region(struct region *r)
{
    pthread_mutex_lock(&auto_mu);
    if (armed)
        region_arm(r);
    pthread_mutex_unlock(&auto_mu);
}

static bool in_region(const char *p, const struct region *r)
{
    return p >= r->vmaddr && p < r->vmaddr + r->length;
}

void auto_region_unmapped(struct region *r, bool last)
{
    pthread_mutex_lock(&auto_mu);
    size_t keep = 0;
    for (size_t k = 0; k < nparked; k++) {
        if (in_region(parked[k].page, r))
            free(parked[k].twin);
        else
            parked[keep++] = parked[k];
    }
    nparked = keep;
    if (nparked == 0)
        parked_owner = NULL;
    keep = 0;
    for (size_t k = 0; k < nloose; k++)
        if (!in_region(loose[k], r))
            loose[keep++] = loose[k];
    nloose = keep;
    /* The memory may stay the program's (its own vmaddr, or after
     * rvm_terminate): it must be writable again. */
    if (armed)
        region_disarm(r);
    if (last && auto_active == 0) {
        __atomic_store_n(&armed, 0, __ATOMIC_RELEASE);
        nloose = 0;
    }
    pthread_mutex_unlock(&auto_mu);
}

/*
 * A manual transaction that begins after an auto commit found no other
 * transaction active (solo: its pages stay writable) could write those
 * pages and queue its commit before the auto one is queued, which would
 * then be applied last with older bytes: it waits for the auto commit to
 * be queued.  Called after the begin is counted in n_active, so that an
 * auto commit either sees it (and protects its pages first) or is waited
 * for.
 */
void auto_barrier(void)
{
    pthread_mutex_lock(&auto_mu);
    pthread_mutex_unlock(&auto_mu);
}

/*
 * The kernel drops a file's cached pages after a direct write to it, and
 * unmaps them from private mappings that still share them, taking their
 * userfaultfd write-protect markers with them: a later write there would
 * not fault and go unlogged.  (A file system that caches in blocks larger
 * than a page drops neighbours of the range too.)  So no direct write
 * while regions are armed, and no arming during one.
 */
bool auto_direct_enter(void)
{
    pthread_mutex_lock(&auto_mu);
    bool ok = !armed;
    direct_busy += ok;
    pthread_mutex_unlock(&auto_mu);
    return ok;
}

void auto_direct_exit(void)
{
    pthread_mutex_lock(&auto_mu);
    if (--direct_busy == 0)
        pthread_cond_broadcast(&direct_cond);
    pthread_mutex_unlock(&auto_mu);
}

rvm_return_t rvm_begin_auto_transaction(rvm_tid_t *tid, rvm_mode_t mode)
{
    if (cur_auto)
        return RVM_EMODE; /* one auto transaction per thread at a time */
    pthread_once(&cache_once, cache_key_make);
    pthread_once(&atfork_once, atfork_install);
    rvm_return_t ret = rvm_begin_transaction(tid, mode);
    if (ret)
        return ret;
    struct rvm_txn *t = tid->tid;
    size_t ps = rvm_page_size();
    pthread_rwlock_rdlock(&rvm.regions_lock);
    pthread_mutex_lock(&auto_mu);
    if (!armed && handler_take() < 0) {
        pthread_mutex_unlock(&auto_mu);
        pthread_rwlock_unlock(&rvm.regions_lock);
        rvm_abort_transaction(tid);
        if (rvm_tid_active(tid))
            rvm_end_transaction(tid, no_flush);
        return RVM_ETHREADS;
    }
    if (!armed) {
        while (direct_busy)
            pthread_cond_wait(&direct_cond, &auto_mu);
        for (size_t i = 0; i < rvm.nregions; i++)
            region_arm(rvm.regions[i]);
        __atomic_store_n(&armed, 1, __ATOMIC_RELEASE);
    } else {
        /* Pages a non-auto writer opened up are watched again. */
        for (size_t i = 0; i < nloose; i++)
            wp_set(loose[i], ps, true);
    }
    nloose = 0;
    if (parked_owner && (parked_owner != &self || manual_active(true) > 0))
        parked_revoke();
    if (parked_owner == &self) {
        /* Ours, and no other transaction ran since: claimed without a
         * fault.  auto_region_unmapped drops the parked pages of a region
         * that goes, so each one's region is still mapped. */
        for (size_t k = 0; k < nparked; k++) {
            struct auto_page *p = &parked[k];
            if (txn_hold_region(t, p->reg) < 0 || page_add(t, p->page, p->twin, p->reg) < 0) {
                wp_set(p->page, ps, true);
                free(p->twin);
            }
        }
        nparked = 0;
        parked_owner = NULL;
    }
    auto_active++;
    last_begin = &self;
    pthread_mutex_unlock(&auto_mu);
    pthread_rwlock_unlock(&rvm.regions_lock);
    t->is_auto = true;
    cur_auto = t;
    return RVM_SUCCESS;
}

static inline uint64_t word_at(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* Offset of the first byte at or after i where a and b differ; n if none. */
static size_t first_diff(const unsigned char *a, const unsigned char *b, size_t i, size_t n)
{
    while (i < n) {
        /* Whole-block compares first: most of a written page is unchanged. */
        if (i % 256 == 0 && i + 256 <= n && memcmp(a + i, b + i, 256) == 0) {
            i += 256;
            continue;
        }
        size_t end = (i / 256 + 1) * 256 < n ? (i / 256 + 1) * 256 : n;
        while (i + 8 <= end && word_at(a + i) == word_at(b + i))
            i += 8;
        while (i < end && a[i] == b[i])
            i++;
        if (i < end)
            return i;
    }
    return n;
}

/* Declare the runs of bytes in which page differs from twin. */
static int page_diff(struct rvm_txn *t, struct auto_page *p, size_t ps)
{
    const unsigned char *now = (const unsigned char *)p->page, *twin = p->twin;
    size_t i = first_diff(now, twin, 0, ps);
    while (i < ps) {
        size_t start = i, last = i, j = i + 1;
        /* Extend the run while the next difference is within JOIN_GAP of
         * the last one, a word at a time: a word is shorter than JOIN_GAP,
         * so all of its differing bytes join the run once its first does. */
        while (j < ps && j - last <= JOIN_GAP) {
            if (j + 8 <= ps) {
                uint64_t x = word_at(now + j) ^ word_at(twin + j);
                if (x) {
                    if (j + (size_t)(__builtin_ctzll(x) >> 3) - last > JOIN_GAP)
                        break;
                    last = j + 7 - (size_t)(__builtin_clzll(x) >> 3);
                }
                j += 8;
            } else {
                if (now[j] != twin[j])
                    last = j;
                j++;
            }
        }
        p->changed = true;
        int rc = txn_add_range(t, p->reg, p->page + start, last + 1 - start, twin + start);
        if (rc < 0)
            return rc;
        i = first_diff(now, twin, last + 1, ps);
    }
    return 0;
}

/* Set by auto_collect for the auto_finish that follows it in the same
 * thread: auto_mu is held from one to the other, and the pages were
 * protected before the diff (closed) or are still writable (solo). */
static __thread bool collecting, pages_closed;

/*
 * Another thread may write our pages without a fault while we own them;
 * such writes are ours to log, so none may fall between the diff and the
 * end of our ownership.  When another transaction is active the pages
 * are protected before the diff, so that a later write faults and is the
 * writer's own.  Either way auto_mu is held from the diff until the
 * commit is queued and the pages are protected or parked (auto_finish):
 * a writer that faults on them waits in on_fault until our bytes have
 * their place in the log, so its own commit of the same bytes is queued
 * after ours, and no other auto transaction can begin in between.
 */
rvm_return_t auto_collect(struct rvm_txn *t)
{
    size_t ps = rvm_page_size();
    pthread_mutex_lock(&auto_mu);
    bool solo = auto_active == 1 && last_begin == &self && manual_active(false) == 0;
    if (!solo)
        for (size_t k = 0; k < t->npages; k++)
            wp_set(t->pages[k].page, ps, true);
    for (size_t k = 0; k < t->npages; k++) {
        if (page_diff(t, &t->pages[k], ps) < 0) {
            /* Still ours: the transaction may be aborted or retried. */
            if (!solo)
                for (size_t j = 0; j < t->npages; j++)
                    wp_set(t->pages[j].page, ps, false);
            pthread_mutex_unlock(&auto_mu);
            return RVM_ENO_MEMORY;
        }
    }
    collecting = true;
    pages_closed = !solo;
    return RVM_SUCCESS;
}

void auto_abort(struct rvm_txn *t)
{
    size_t ps = rvm_page_size();
    for (size_t k = t->npages; k-- > 0;) {
        memcpy(t->pages[k].page, t->pages[k].twin, ps);
        t->pages[k].changed = true; /* written in this transaction: may park */
    }
}

/* Make a parked page's twin its bytes now.  Only declared ranges can
 * differ from the twin (the diff found the rest equal; an abort put the
 * twin back and then the saved bytes of the ranges), so only they are
 * copied, not the page. */
static void twin_refresh(struct rvm_txn *t, struct auto_page *p, size_t ps)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (t->r[mid].addr + t->r[mid].len <= p->page)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = lo; k < t->n && t->r[k].addr < p->page + ps; k++) {
        char *a = t->r[k].addr > p->page ? t->r[k].addr : p->page;
        char *e = t->r[k].addr + t->r[k].len;
        if (e > p->page + ps)
            e = p->page + ps;
        memcpy(p->twin + (a - p->page), a, (size_t)(e - a));
    }
}

void auto_finish(struct rvm_txn *t)
{
    size_t ps = rvm_page_size();
    if (!collecting)
        pthread_mutex_lock(&auto_mu);
    auto_active--;
    /* Parking is safe only when no other transaction can be writing the
     * pages and no other thread has begun an auto transaction since ours.
     * Ours still counts in n_active (until txn_end), as a manual one. */
    bool park = auto_active == 0 && last_begin == &self && parked_owner == NULL &&
                manual_active(false) <= 1 && !pages_closed;
    size_t cap = 0;
    if (park && t->npages) {
        cap = t->npages < PARK_MAX ? t->npages : PARK_MAX;
        struct auto_page *nv = realloc(parked, cap * sizeof *nv);
        if (nv)
            parked = nv;
        else
            cap = 0;
    }
    for (size_t k = 0; k < t->npages; k++) {
        struct auto_page *p = &t->pages[k];
        if (p->changed && nparked < cap) {
            twin_refresh(t, p, ps);
            parked[nparked++] = *p;
            continue;
        }
        if (!pages_closed)
            wp_set(p->page, ps, true);
        twin_put(p->twin);
    }
    if (nparked)
        parked_owner = &self;
    collecting = pages_closed = false;
    pthread_mutex_unlock(&auto_mu);
    free(t->pages);
    t->pages = NULL;
    t->npages = t->pagecap = 0;
    t->is_auto = false;
    cur_auto = NULL;
}
