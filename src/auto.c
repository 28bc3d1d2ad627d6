/*
 * Automatic range detection (rvm_begin_auto_transaction): while any auto
 * transaction is active, mapped regions are write-protected.  The first
 * write to a page faults; the SIGSEGV handler keeps a copy of the page
 * (its twin) for the writing thread's auto transaction and lets the write
 * through.  At commit each written page is compared with its twin and
 * only the bytes that differ are declared, as set_range would have done;
 * abort copies the twins back.
 *
 * Rules (documented in rvm.h): a page belongs to the first auto
 * transaction that writes it until that one ends; a thread runs one auto
 * transaction at a time and only it writes for that transaction; system
 * calls that write into protected pages (read(2) into a region) fail with
 * EFAULT.  Faults outside regions, or while no auto transaction is
 * active, go to the handler that was installed before.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rvm_internal.h"
#include "txn.h"

/* Runs of changed bytes closer than a range descriptor are joined: the
 * descriptor would cost more than the bytes between them. */
#define JOIN_GAP 24

static pthread_mutex_t auto_mu = PTHREAD_MUTEX_INITIALIZER;
static int auto_active;                 /* auto transactions active (auto_mu) */
static char **loose;                    /* pages unprotected for non-auto writers */
static size_t nloose, loosecap;
static struct sigaction prev_action;
static bool handler_installed;
static __thread struct rvm_txn *cur_auto;

static void chain(int sig, siginfo_t *si, void *uc)
{
    if (prev_action.sa_flags & SA_SIGINFO) {
        prev_action.sa_sigaction(sig, si, uc);
    } else if (prev_action.sa_handler == SIG_DFL || prev_action.sa_handler == SIG_IGN) {
        /* Returning re-executes the faulting write under the default action. */
        signal(sig, SIG_DFL);
    } else {
        prev_action.sa_handler(sig);
    }
}

static int page_add(struct rvm_txn *t, char *page, unsigned char *twin)
{
    if (t->npages == t->pagecap) {
        size_t nc = t->pagecap ? t->pagecap * 2 : 16;
        struct auto_page *nv = realloc(t->pages, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        t->pages = nv;
        t->pagecap = nc;
    }
    t->pages[t->npages++] = (struct auto_page){page, twin};
    return 0;
}

/*
 * The fault is synchronous: the thread was writing region memory, not
 * running inside librvm or malloc, so taking locks and allocating here is
 * safe.
 */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    size_t ps = rvm_page_size();
    char *page = (char *)((uintptr_t)si->si_addr & ~(uintptr_t)(ps - 1));
    if (si->si_code != SEGV_ACCERR || !__atomic_load_n(&auto_active, __ATOMIC_ACQUIRE)) {
        chain(sig, si, uc);
        return;
    }
    pthread_rwlock_rdlock(&rvm.regions_lock);
    struct region *reg = region_find(page, ps);
    bool ours = reg != NULL;
    struct rvm_txn *t = cur_auto;
    if (reg && t) {
        unsigned char *twin = malloc(ps);
        if (!twin || txn_hold_region(t, reg) < 0 || page_add(t, page, twin) < 0) {
            free(twin);
            ours = false; /* out of memory: let the fault be seen */
        } else {
            memcpy(twin, page, ps);
        }
    } else if (reg) {
        pthread_mutex_lock(&auto_mu);
        if (nloose == loosecap) {
            size_t nc = loosecap ? loosecap * 2 : 64;
            char **nv = realloc(loose, nc * sizeof *nv);
            if (nv) {
                loose = nv;
                loosecap = nc;
            }
        }
        if (nloose < loosecap)
            loose[nloose++] = page;
        pthread_mutex_unlock(&auto_mu);
    }
    if (ours && mprotect(page, ps, PROT_READ | PROT_WRITE) < 0)
        ours = false;
    pthread_rwlock_unlock(&rvm.regions_lock);
    if (!ours)
        chain(sig, si, uc);
}

static void protect_all(int prot)
{
    pthread_rwlock_rdlock(&rvm.regions_lock);
    for (size_t i = 0; i < rvm.nregions; i++)
        mprotect(rvm.regions[i]->vmaddr, rvm.regions[i]->length, prot);
    pthread_rwlock_unlock(&rvm.regions_lock);
}

void auto_protect_region(struct region *r)
{
    pthread_mutex_lock(&auto_mu);
    if (auto_active)
        mprotect(r->vmaddr, r->length, PROT_READ);
    pthread_mutex_unlock(&auto_mu);
}

rvm_return_t rvm_begin_auto_transaction(rvm_tid_t *tid, rvm_mode_t mode)
{
    if (cur_auto)
        return RVM_EMODE; /* one auto transaction per thread at a time */
    rvm_return_t ret = rvm_begin_transaction(tid, mode);
    if (ret)
        return ret;
    struct rvm_txn *t = tid->tid;
    pthread_mutex_lock(&auto_mu);
    /* Someone may have replaced the handler since the last auto
     * session (test frameworks do): take it up again, chaining to it. */
    struct sigaction cur;
    if (handler_installed && auto_active == 0 && sigaction(SIGSEGV, NULL, &cur) == 0 &&
        !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_segv))
        handler_installed = false;
    if (!handler_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &prev_action) < 0) {
            pthread_mutex_unlock(&auto_mu);
            rvm_abort_transaction(tid);
            if (rvm_tid_active(tid))
                rvm_end_transaction(tid, no_flush);
            return RVM_ETHREADS;
        }
        handler_installed = true;
    }
    if (auto_active++ == 0) {
        protect_all(PROT_READ);
    } else {
        /* Pages a non-auto writer opened up are watched again. */
        for (size_t i = 0; i < nloose; i++)
            mprotect(loose[i], rvm_page_size(), PROT_READ);
    }
    nloose = 0;
    pthread_mutex_unlock(&auto_mu);
    t->is_auto = true;
    cur_auto = t;
    return RVM_SUCCESS;
}

/* Declare the runs of bytes in which page differs from twin. */
static int page_diff(struct rvm_txn *t, struct region *reg, char *page,
                     const unsigned char *twin, size_t ps)
{
    const unsigned char *now = (const unsigned char *)page;
    size_t i = 0;
    while (i < ps) {
        /* Skip equal words quickly. */
        while (i + 8 <= ps && memcmp(now + i, twin + i, 8) == 0)
            i += 8;
        while (i < ps && now[i] == twin[i])
            i++;
        if (i >= ps)
            break;
        size_t start = i, last = i;
        while (i < ps && i - last <= JOIN_GAP) {
            if (now[i] != twin[i])
                last = i;
            i++;
        }
        int rc = txn_add_range(t, reg, page + start, last + 1 - start, twin + start);
        if (rc < 0)
            return rc;
        i = last + 1;
    }
    return 0;
}

rvm_return_t auto_collect(struct rvm_txn *t)
{
    size_t ps = rvm_page_size();
    for (size_t k = 0; k < t->npages; k++) {
        pthread_rwlock_rdlock(&rvm.regions_lock);
        struct region *reg = region_find(t->pages[k].page, ps);
        pthread_rwlock_unlock(&rvm.regions_lock);
        if (!reg)
            return RVM_ENOT_MAPPED;
        if (page_diff(t, reg, t->pages[k].page, t->pages[k].twin, ps) < 0)
            return RVM_ENO_MEMORY;
    }
    return RVM_SUCCESS;
}

void auto_abort(struct rvm_txn *t)
{
    size_t ps = rvm_page_size();
    for (size_t k = t->npages; k-- > 0;)
        memcpy(t->pages[k].page, t->pages[k].twin, ps);
}

void auto_finish(struct rvm_txn *t)
{
    size_t ps = rvm_page_size();
    pthread_mutex_lock(&auto_mu);
    bool last = --auto_active == 0;
    for (size_t k = 0; k < t->npages; k++) {
        if (!last)
            mprotect(t->pages[k].page, ps, PROT_READ);
        free(t->pages[k].twin);
    }
    if (last) {
        /* Nobody watches: manual transactions run without faults. */
        protect_all(PROT_READ | PROT_WRITE);
        nloose = 0;
    }
    pthread_mutex_unlock(&auto_mu);
    free(t->pages);
    t->pages = NULL;
    t->npages = t->pagecap = 0;
    t->is_auto = false;
    cur_auto = NULL;
}
