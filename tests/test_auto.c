/*
 * Auto transactions (rvm_begin_auto_transaction): no set_range, yet the
 * same commit, abort and recovery as manual ranges, byte for byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rvm_internal.h"
#include "test_util.h"

#define PS 4096u

static void test_auto_commit_without_set_range_survives_reinit(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    memcpy(r->vmaddr + 100, "hello", 5);
    r->vmaddr[3 * PS + 7] = 42;
    assert_rvm_ok(rvm_end_transaction(t, flush));
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, 0);
    assert_memory_equal(r->vmaddr + 100, "hello", 5);
    assert_int_equal(r->vmaddr[3 * PS + 7], 42);
}

static void test_auto_abort_restores_every_written_byte(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    t_commit_bytes(r->vmaddr, "before", 6, flush);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    memset(r->vmaddr, 'x', 3 * PS);
    assert_rvm_ok(rvm_abort_transaction(t));
    assert_memory_equal(r->vmaddr, "before", 6);
    for (size_t i = 6; i < 3 * PS; i++)
        assert_int_equal(r->vmaddr[i], 0);
    /* Nothing of the aborted writes reaches the segment either. */
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, 0);
    assert_memory_equal(r->vmaddr, "before", 6);
    assert_int_equal(r->vmaddr[PS], 0);
}

static void test_auto_single_byte_change_logs_single_byte(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_stats_t s0 = t_stats();
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[10]++;
    r->vmaddr[2 * PS + 500]++;
    assert_rvm_ok(rvm_end_transaction(t, flush));
    rvm_stats_t s1 = t_stats();
    assert_int_equal(s1.bytes_logged - s0.bytes_logged, 2);
    /* A page written with its own bytes again logs nothing at all. */
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[PS] = r->vmaddr[PS];
    assert_rvm_ok(rvm_end_transaction(t, flush));
    assert_int_equal(t_stats().bytes_logged, s1.bytes_logged);
}

static void test_auto_logs_no_more_than_manual_ranges(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(4), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 64 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    /* TPC-A-like: three 8-byte balances and a 50-byte history record. */
    rvm_stats_t s0 = t_stats();
    for (int i = 0; i < 200; i++) {
        assert_rvm_ok(rvm_begin_transaction(t, restore));
        char *acct = r->vmaddr + (i * 7919 % 1000) * 104; /* 8-byte aligned */
        assert_rvm_ok(rvm_set_range(t, acct, 8));
        (*(long *)acct)++;
        char *hist = r->vmaddr + 40 * PS + (i % 100) * 50;
        assert_rvm_ok(rvm_set_range(t, hist, 50));
        memset(hist, i + 1, 50);
        assert_rvm_ok(rvm_end_transaction(t, no_flush));
    }
    rvm_stats_t s1 = t_stats();
    for (int i = 0; i < 200; i++) {
        assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
        char *acct = r->vmaddr + (i * 7919 % 1000) * 104; /* 8-byte aligned */
        (*(long *)acct)++;
        memset(r->vmaddr + 40 * PS + (i % 100) * 50, i + 2, 50);
        assert_rvm_ok(rvm_end_transaction(t, no_flush));
    }
    assert_rvm_ok(rvm_flush());
    rvm_stats_t s2 = t_stats();
    uint64_t manual = s1.bytes_after_ranges - s0.bytes_after_ranges;
    uint64_t autob = s2.bytes_after_ranges - s1.bytes_after_ranges;
    /* A counter increment changes fewer than its 8 bytes. */
    assert_true(autob <= manual);
    assert_true(autob > 0);
}

static void test_auto_and_manual_ranges_mix_in_one_transaction(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    assert_rvm_ok(rvm_set_range(t, r->vmaddr + PS, 4));
    memcpy(r->vmaddr + PS, "abcd", 4);
    r->vmaddr[5] = 'z';
    assert_rvm_ok(rvm_end_transaction(t, flush));
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, 0);
    assert_memory_equal(r->vmaddr + PS, "abcd", 4);
    assert_int_equal(r->vmaddr[5], 'z');
}

static void test_second_auto_transaction_in_one_thread_is_emode(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    t_map(c, "seg", 0, PS, 0);
    rvm_tid_t *t1 = t_tid(c), *t2 = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t1, restore));
    assert_rvm(rvm_begin_auto_transaction(t2, restore), RVM_EMODE);
    assert_false(rvm_tid_active(t2));
    assert_rvm_ok(rvm_end_transaction(t1, no_flush));
}

struct worker {
    char *base;
    int id;
    int ok;
};

static void *auto_worker(void *arg)
{
    struct worker *w = arg;
    rvm_tid_t t;
    rvm_init_tid(&t);
    w->ok = 1;
    for (int i = 0; i < 200 && w->ok; i++) {
        char *page = w->base + (size_t)w->id * PS;
        if (rvm_begin_auto_transaction(&t, restore) != RVM_SUCCESS) {
            w->ok = 0;
            break;
        }
        (*(int *)page)++;
        if (i % 10 == 9) {
            /* An aborted increment must vanish. */
            (*(int *)page) += 1000;
            w->ok = rvm_abort_transaction(&t) == RVM_SUCCESS;
        } else {
            w->ok = rvm_end_transaction(&t, i % 3 ? no_flush : flush) == RVM_SUCCESS;
        }
    }
    return NULL;
}

static void test_auto_threads_each_on_own_pages(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(4), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 8 * PS, 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){r->vmaddr, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, auto_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(w[i].ok);
    }
    assert_rvm_ok(rvm_flush());
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 8 * PS, 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(*(int *)(r->vmaddr + (size_t)i * PS), 180);
}

static void on_other_segv(int sig)
{
    (void)sig;
    _exit(42);
}

static void test_fault_outside_regions_reaches_previous_handler(void **state)
{
    struct tctx *c = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, on_other_segv);
        t_init(c, MIB(1), 50);
        rvm_region_t *r = t_map(c, "seg", 0, PS, 0);
        char *ro = mmap(NULL, PS, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        rvm_tid_t t;
        rvm_init_tid(&t);
        if (ro == MAP_FAILED || rvm_begin_auto_transaction(&t, restore) != RVM_SUCCESS)
            _exit(1);
        r->vmaddr[0] = 1; /* ours: handled */
        *(volatile char *)ro = 1; /* not ours: the program's handler */
        _exit(2);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 42);
}

static void on_other_sigbus(int sig)
{
    (void)sig;
    _exit(43);
}

/* SIGBUS is librvm's too where userfaultfd protects the regions; a bus
 * error of another cause (a mapping past the end of its file) must still
 * reach the program's handler. */
static void test_sigbus_outside_regions_reaches_previous_handler(void **state)
{
    struct tctx *c = *state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGBUS, on_other_sigbus);
        t_init(c, MIB(1), 50);
        rvm_region_t *r = t_map(c, "seg", 0, PS, 0);
        char path[4200];
        snprintf(path, sizeof path, "%s/empty", c->dir);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
        char *past = fd < 0 ? MAP_FAILED
                            : mmap(NULL, PS, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        rvm_tid_t t;
        rvm_init_tid(&t);
        if (past == MAP_FAILED || rvm_begin_auto_transaction(&t, restore) != RVM_SUCCESS)
            _exit(1);
        r->vmaddr[0] = 1; /* ours: handled */
        *(volatile char *)past = 1; /* past the end of the file: the program's */
        _exit(2);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 43);
}

/* kill -9 during auto commits: every acknowledged flush commit is there,
 * and the two counters a transaction bumps always agree. */
static void test_auto_commits_survive_kill9(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, KIB(256));
    for (int round = 0; round < 20; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            t_init(c, KIB(256), 30);
            rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
            long *a = (long *)r->vmaddr, *b = (long *)(r->vmaddr + 3 * PS);
            rvm_tid_t t;
            rvm_init_tid(&t);
            for (;;) {
                if (rvm_begin_auto_transaction(&t, restore) != RVM_SUCCESS)
                    _exit(3);
                long v = *a + 1;
                *a = v;
                *b = v;
                if (rvm_end_transaction(&t, flush) != RVM_SUCCESS)
                    _exit(4);
                if (write(fds[1], &v, sizeof v) != sizeof v)
                    _exit(5);
            }
        }
        close(fds[1]);
        usleep(5000 + (useconds_t)(rand() % 20000));
        kill(pid, SIGKILL);
        long v, acked = 0;
        while (read(fds[0], &v, sizeof v) == sizeof v)
            acked = v;
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFSIGNALED(st));
        t_init(c, KIB(256), 30);
        rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
        long a = *(long *)r->vmaddr, b = *(long *)(r->vmaddr + 3 * PS);
        assert_int_equal(a, b);
        assert_true(a >= acked);
        t_unmap(c, r);
        assert_rvm_ok(rvm_terminate());
    }
}

/* The pages of one auto transaction stay writable for the next one of
 * the same thread (no fault): its changes must still be found. */
static void test_auto_rewrites_of_the_same_page_are_each_logged(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    for (int i = 1; i <= 50; i++) {
        rvm_stats_t s0 = t_stats();
        assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
        r->vmaddr[100] = (char)i;
        if (i % 5 == 0) {
            r->vmaddr[200] = 'x';
            assert_rvm_ok(rvm_abort_transaction(t));
            assert_int_equal(r->vmaddr[100], (char)(i - 1));
            assert_int_equal(r->vmaddr[200], 0);
            continue;
        }
        assert_rvm_ok(rvm_end_transaction(t, no_flush));
        assert_int_equal(t_stats().bytes_after_ranges - s0.bytes_after_ranges, 1);
    }
    assert_rvm_ok(rvm_flush());
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, 0);
    assert_int_equal(r->vmaddr[100], 49);
    assert_int_equal(r->vmaddr[200], 0);
}

struct other {
    char *p;
    rvm_return_t rc;
};

static void *other_thread_auto_write(void *arg)
{
    struct other *o = arg;
    rvm_tid_t t;
    rvm_init_tid(&t);
    o->rc = rvm_begin_auto_transaction(&t, restore);
    if (o->rc == RVM_SUCCESS) {
        *o->p = 'B';
        o->rc = rvm_end_transaction(&t, flush);
    }
    return NULL;
}

/* A page left writable for thread A must fault again for thread B, or
 * B's commit would miss B's write. */
static void test_auto_write_by_another_thread_after_ours_is_its_own(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[0] = 'A';
    assert_rvm_ok(rvm_end_transaction(t, flush));
    rvm_stats_t s0 = t_stats();
    struct other o = {r->vmaddr + 1, RVM_SUCCESS};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread_auto_write, &o), 0);
    pthread_join(th, NULL);
    assert_rvm_ok(o.rc);
    assert_int_equal(t_stats().bytes_after_ranges - s0.bytes_after_ranges, 1);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, 0);
    assert_memory_equal(r->vmaddr, "AB", 2);
}

/* Between auto transactions the regions stay protected, but a plain
 * write (a manual transaction's) still works, and the next auto
 * transaction still sees its own writes to that page. */
static void test_manual_write_after_auto_transaction_works(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[0] = 1;
    assert_rvm_ok(rvm_end_transaction(t, flush));
    t_commit_bytes(r->vmaddr + 2 * PS, "manual", 6, flush);
    rvm_stats_t s0 = t_stats();
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[2 * PS + 10] = 'a';
    assert_rvm_ok(rvm_end_transaction(t, flush));
    assert_int_equal(t_stats().bytes_after_ranges - s0.bytes_after_ranges, 1);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 4 * PS, 0);
    assert_memory_equal(r->vmaddr + 2 * PS, "manual", 6);
    assert_int_equal(r->vmaddr[2 * PS + 10], 'a');
}

/* The program's own memory is the program's again after rvm_unmap. */
static void test_unmapped_region_memory_is_writable_again(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    char *mem = mmap(NULL, 4 * PS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    rvm_region_t *r = NULL;
    assert_rvm_ok(t_try_map(c, "seg", 0, 4 * PS, mem, 0, &r));
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[0] = 1;
    assert_rvm_ok(rvm_end_transaction(t, flush));
    t_unmap(c, r);
    /* read(2) into it would fail with EFAULT if a page were protected. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "xyz", 3), 3);
    assert_int_equal(read(fds[0], mem + 3 * PS, 3), 3);
    mem[PS] = 7;
    close(fds[0]);
    close(fds[1]);
    munmap(mem, 4 * PS);
}

/* A child of fork() does not inherit the kernel's write-protect
 * registration of the regions: its writes must still be found. */
static void test_auto_in_a_forked_child_finds_its_writes(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 4 * PS, 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, restore));
    r->vmaddr[0] = 1;
    assert_rvm_ok(rvm_end_transaction(t, flush));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* No flush: the child must leave the parent's log alone. */
        rvm_stats_t s0 = t_stats();
        rvm_tid_t ct;
        rvm_init_tid(&ct);
        if (rvm_begin_auto_transaction(&ct, restore) != RVM_SUCCESS)
            _exit(3);
        r->vmaddr[0] = 2;
        r->vmaddr[2 * PS] = 3;
        if (rvm_end_transaction(&ct, no_flush) != RVM_SUCCESS)
            _exit(4);
        _exit(t_stats().bytes_after_ranges - s0.bytes_after_ranges == 2 ? 0 : 5);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

#define SHARERS 3
#define SHARE_ROUNDS 5000

struct sharer {
    long *counter;
    int ok;
};

static void *share_worker(void *arg)
{
    struct sharer *w = arg;
    rvm_tid_t t;
    rvm_init_tid(&t);
    w->ok = 1;
    for (int i = 0; i < SHARE_ROUNDS && w->ok; i++) {
        w->ok = rvm_begin_auto_transaction(&t, no_restore) == RVM_SUCCESS;
        if (w->ok) {
            (*w->counter)++;
            w->ok = rvm_end_transaction(&t, no_flush) == RVM_SUCCESS;
        }
    }
    return NULL;
}

/* Threads bump their own counters on one page: a write that lands while
 * another thread's transaction owns the page is committed by that one;
 * none may fall between its diff and the end of its ownership, and no
 * commit may reach the log after a later one of the same bytes.  Three
 * threads, so that on small machines a committer is also preempted in
 * between (test_auto_commit_is_queued_before_its_pages_go forces it). */
static void test_auto_threads_sharing_a_page_lose_no_update(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(16), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 2 * PS, 0);
    pthread_t th[SHARERS];
    struct sharer w[SHARERS];
    for (int i = 0; i < SHARERS; i++) {
        w[i] = (struct sharer){(long *)(r->vmaddr + 104 + 64 * i), 0};
        assert_int_equal(pthread_create(&th[i], NULL, share_worker, &w[i]), 0);
    }
    for (int i = 0; i < SHARERS; i++) {
        pthread_join(th[i], NULL);
        assert_true(w[i].ok);
    }
    assert_rvm_ok(rvm_flush());
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 2 * PS, 0);
    for (int i = 0; i < SHARERS; i++)
        assert_int_equal(*(long *)(r->vmaddr + 104 + 64 * i), SHARE_ROUNDS);
}

/* A commit captured but not yet queued, and a second thread that writes
 * the same bytes meanwhile and commits them: the first must still reach
 * the log first.  The hook holds the first commit in that window (for at
 * most 300 ms: with the window closed the second thread cannot go on). */
static sem_t late_go, late_done;
static __thread bool hold_this_commit;

static void hold_captured_commit(void)
{
    if (!hold_this_commit)
        return;
    hold_this_commit = false;
    sem_post(&late_go);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 300 * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    while (sem_timedwait(&late_done, &ts) < 0 && errno == EINTR)
        ;
}

/* End t held in that window (its writer thread th goes meanwhile, and
 * sets *ok), then restart RVM: the region as recovered from the log. */
static rvm_region_t *end_held_then_restart(struct tctx *c, rvm_tid_t *t, pthread_t th, int *ok)
{
    __atomic_store_n(&rvm.hook_captured, hold_captured_commit, __ATOMIC_RELAXED);
    hold_this_commit = true;
    assert_rvm_ok(rvm_end_transaction(t, no_flush));
    pthread_join(th, NULL);
    __atomic_store_n(&rvm.hook_captured, NULL, __ATOMIC_RELAXED);
    assert_true(*ok);
    assert_rvm_ok(rvm_flush());
    t_reinit(c, 50);
    return t_map(c, "seg", 0, 2 * PS, 0);
}

struct later {
    long *a;
    sem_t first, first_done;
    int ok;
};

static void *later_writer(void *arg)
{
    struct later *l = arg;
    rvm_tid_t t;
    rvm_init_tid(&t);
    /* Into the page the main thread's transaction owns: goes with that. */
    sem_wait(&l->first);
    l->ok = rvm_begin_auto_transaction(&t, no_restore) == RVM_SUCCESS;
    *l->a = 1;
    l->ok &= rvm_end_transaction(&t, no_flush) == RVM_SUCCESS;
    sem_post(&l->first_done);
    /* Once that commit has its bytes, before they are queued. */
    sem_wait(&late_go);
    l->ok &= rvm_begin_auto_transaction(&t, no_restore) == RVM_SUCCESS;
    *l->a = 2;
    l->ok &= rvm_end_transaction(&t, no_flush) == RVM_SUCCESS;
    sem_post(&late_done);
    return NULL;
}

static void test_auto_commit_is_queued_before_its_pages_go(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(4), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 2 * PS, 0);
    struct later l = {.a = (long *)(r->vmaddr + 104)};
    assert_int_equal(sem_init(&l.first, 0, 0), 0);
    assert_int_equal(sem_init(&l.first_done, 0, 0), 0);
    assert_int_equal(sem_init(&late_go, 0, 0), 0);
    assert_int_equal(sem_init(&late_done, 0, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, later_writer, &l), 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, no_restore));
    *(long *)(r->vmaddr + 168) = 7; /* the page is this transaction's */
    sem_post(&l.first);
    sem_wait(&l.first_done);
    r = end_held_then_restart(c, t, th, &l.ok);
    assert_int_equal(*(long *)(r->vmaddr + 104), 2);
    assert_int_equal(*(long *)(r->vmaddr + 168), 7);
}

struct manual_later {
    long *a;
    int ok;
};

static void *manual_later_writer(void *arg)
{
    struct manual_later *l = arg;
    sem_wait(&late_go);
    long two = 2;
    rvm_tid_t t;
    rvm_init_tid(&t);
    l->ok = rvm_begin_transaction(&t, no_restore) == RVM_SUCCESS &&
            rvm_modify_bytes(&t, l->a, &two, sizeof two) == RVM_SUCCESS &&
            rvm_end_transaction(&t, no_flush) == RVM_SUCCESS;
    sem_post(&late_done);
    return NULL;
}

/* The same for a manual transaction that begins while an auto commit
 * that found no other transaction (its pages still writable) is between
 * its capture and its place in the log. */
static void test_manual_commit_after_a_solo_auto_one_comes_after_it(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(4), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 2 * PS, 0);
    struct manual_later l = {.a = (long *)(r->vmaddr + 104)};
    assert_int_equal(sem_init(&late_go, 0, 0), 0);
    assert_int_equal(sem_init(&late_done, 0, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, manual_later_writer, &l), 0);
    rvm_tid_t *t = t_tid(c);
    assert_rvm_ok(rvm_begin_auto_transaction(t, no_restore));
    *l.a = 1;
    r = end_held_then_restart(c, t, th, &l.ok);
    assert_int_equal(*(long *)(r->vmaddr + 104), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auto_commit_without_set_range_survives_reinit,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_abort_restores_every_written_byte,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_single_byte_change_logs_single_byte,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_logs_no_more_than_manual_ranges,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_and_manual_ranges_mix_in_one_transaction,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_second_auto_transaction_in_one_thread_is_emode,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_threads_each_on_own_pages,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_fault_outside_regions_reaches_previous_handler,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_sigbus_outside_regions_reaches_previous_handler,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_commits_survive_kill9,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_rewrites_of_the_same_page_are_each_logged,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_write_by_another_thread_after_ours_is_its_own,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_manual_write_after_auto_transaction_works,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_unmapped_region_memory_is_writable_again,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_in_a_forked_child_finds_its_writes,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_threads_sharing_a_page_lose_no_update,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_auto_commit_is_queued_before_its_pages_go,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_manual_commit_after_a_solo_auto_one_comes_after_it,
                                        t_setup, t_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
