/*
 * The log at work: truncation into segments, automatic truncation, a full
 * log, transactions too big for the log, and many committing threads.
 */
#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PS ((size_t)rvm_page_size())

static void test_truncate_applies_log_to_segment_file(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 0);
    rvm_region_t *a = t_map(c, "a", 0, 4 * PS, 0);
    rvm_region_t *b = t_map(c, "b", 2 * PS, 2 * PS, 0);
    unsigned char *pa = malloc(4 * PS), *pb = malloc(2 * PS);
    assert_non_null(pa);
    assert_non_null(pb);
    t_fill(pa, 4 * PS, 11);
    t_fill(pb, 2 * PS, 12);
    t_commit_bytes(a->vmaddr, pa, 4 * PS, flush);
    t_commit_bytes(b->vmaddr, pb, PS, no_flush);
    t_commit_bytes(b->vmaddr + PS, pb + PS, PS, no_flush);
    /* a later commit overwrites part of an earlier one */
    memcpy(pa + 100, "newer", 5);
    t_commit_bytes(a->vmaddr + 100, "newer", 5, flush);

    assert_rvm_ok(rvm_truncate());
    unsigned char *disk = malloc(4 * PS);
    assert_non_null(disk);
    t_read_file(t_path(c, "a"), 0, disk, 4 * PS);
    assert_memory_equal(disk, pa, 4 * PS);
    t_read_file(t_path(c, "b"), 2 * PS, disk, 2 * PS);
    assert_memory_equal(disk, pb, 2 * PS);
    rvm_stats_t st = t_stats();
    assert_int_equal(st.log_used, 0);
    assert_int_equal(st.no_flush_pending, 0);
    assert_true(st.n_truncations >= 1);
    free(disk);
    free(pa);
    free(pb);
}

static void test_truncate_of_empty_log_succeeds(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 50);
    assert_rvm_ok(rvm_truncate());
    assert_rvm_ok(rvm_truncate());
}

static void test_recovery_replays_log_into_segments(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 0);
    rvm_region_t *a = t_map(c, "a", 0, PS, 0);
    t_commit_bytes(a->vmaddr + 8, "replayed", 8, flush);
    t_reinit(c, 0);
    /* after rvm_initialize the log is empty and the segment has the bytes */
    rvm_options_t *q = t_query(NULL);
    assert_true(q->log_empty);
    rvm_free_options(q);
    char disk[8];
    t_read_file(t_path(c, "a"), 8, disk, 8);
    assert_memory_equal(disk, "replayed", 8);
}

static void wait_for_auto_truncation(void)
{
    for (int i = 0; i < 500; i++) {
        rvm_stats_t st = t_stats();
        if (st.n_auto_truncations > 0)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static void test_big_commit_after_small_ones_wraps_the_log(void **state)
{
    struct tctx *c = *state;
    t_init(c, KIB(64), 0);
    rvm_region_t *r = t_map(c, "seg", 0, 16 * PS, 0);
    size_t big = KIB(64) - KIB(4); /* fits in the log, not in what is left */
    unsigned char *buf = malloc(big);
    assert_non_null(buf);
    for (unsigned round = 0; round < 4; round++) {
        t_commit_bytes(r->vmaddr + big, "small", 5, flush);
        t_fill(buf, big, 500 + round);
        t_commit_bytes(r->vmaddr, buf, big, round % 2 ? flush : no_flush);
        assert_true(t_check_fill(r->vmaddr, big, 500 + round));
    }
    rvm_stats_t st = t_stats();
    assert_true(st.n_truncations > 0);
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, 16 * PS, 0);
    assert_true(t_check_fill(r->vmaddr, big, 503));
    assert_memory_equal(r->vmaddr + big, "small", 5);
    free(buf);
}

static void test_no_flush_queue_is_written_past_flush_buf_len(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, MIB(4));
    rvm_options_t o;
    t_options(c, &o, 0);
    o.flush_buf_len = MIN_FLUSH_BUF_LEN;
    assert_rvm_ok(RVM_INIT(&o));
    rvm_region_t *r = t_map(c, "seg", 0, 64 * PS, 0);
    unsigned char buf[2048];
    for (unsigned i = 0; i < 100; i++) {
        t_fill(buf, sizeof buf, i);
        t_commit_bytes(r->vmaddr + i * sizeof buf, buf, sizeof buf, no_flush);
    }
    /* 200 KiB queued against a 64 KiB queue: some goes to the log without
     * a flush, written by the log's writer thread in the background. */
    rvm_stats_t st = t_stats();
    for (int ms = 0; st.log_bytes_written == 0 && ms < 10000; ms += 10) {
        usleep(10000);
        st = t_stats();
    }
    assert_true(st.log_bytes_written > 0);
    assert_rvm_ok(rvm_flush());
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, 64 * PS, 0);
    for (unsigned i = 0; i < 100; i++)
        assert_true(t_check_fill(r->vmaddr + i * sizeof buf, sizeof buf, i));
}

static void test_coalesced_no_flush_commits_log_fewer_bytes(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, MIB(4));
    rvm_options_t o;
    t_options(c, &o, 0);
    o.flags = RVM_ALL_OPTIMIZATIONS;
    assert_rvm_ok(RVM_INIT(&o));
    rvm_region_t *r = t_map(c, "seg", 0, PS, 0);
    unsigned char buf[1024];
    for (unsigned i = 0; i < 50; i++) {
        t_fill(buf, sizeof buf, 900 + i);
        t_commit_bytes(r->vmaddr, buf, sizeof buf, no_flush);
    }
    assert_rvm_ok(rvm_flush());
    rvm_stats_t st = t_stats();
    assert_int_equal(st.n_no_flush_commit, 50);
    assert_true(st.bytes_logged < 50 * sizeof buf);
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, PS, 0);
    assert_true(t_check_fill(r->vmaddr, sizeof buf, 949));
}

/* Large commits that do not overlap go out as their own records (a merged
 * copy would save only headers); large ones that do are merged. */
static void test_large_commits_coalesce_only_when_they_overlap(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, MIB(16));
    rvm_options_t o;
    t_options(c, &o, 0);
    o.flags = RVM_ALL_OPTIMIZATIONS;
    o.flush_buf_len = MIB(4); /* all of each batch stays queued until the flush */
    assert_rvm_ok(RVM_INIT(&o));
    const size_t big = KIB(128);
    rvm_region_t *r = t_map(c, "seg", 0, 8 * big, 0);
    unsigned char *buf = malloc(big);
    assert_non_null(buf);
    rvm_stats_t st0 = t_stats();
    for (unsigned i = 0; i < 8; i++) {
        t_fill(buf, big, 300 + i);
        t_commit_bytes(r->vmaddr + i * big, buf, big, no_flush);
    }
    assert_rvm_ok(rvm_flush());
    rvm_stats_t st = t_stats();
    assert_int_equal(st.n_records - st0.n_records, 8);
    assert_int_equal(st.bytes_logged - st0.bytes_logged, 8 * big);

    /* The same range eight times: one record with the last bytes. */
    st0 = st;
    for (unsigned i = 0; i < 8; i++) {
        t_fill(buf, big, 400 + i);
        t_commit_bytes(r->vmaddr, buf, big, no_flush);
    }
    assert_rvm_ok(rvm_flush());
    st = t_stats();
    assert_int_equal(st.n_records - st0.n_records, 1);
    assert_int_equal(st.bytes_logged - st0.bytes_logged, big);

    t_reinit(c, 0);
    r = t_map(c, "seg", 0, 8 * big, 0);
    assert_true(t_check_fill(r->vmaddr, big, 407));
    for (unsigned i = 1; i < 8; i++)
        assert_true(t_check_fill(r->vmaddr + i * big, big, 300 + i));
    free(buf);
}

static void test_auto_truncation_keeps_data_correct(void **state)
{
    struct tctx *c = *state;
    t_init(c, KIB(64), 20);
    rvm_region_t *r = t_map(c, "seg", 0, 16 * PS, 0);
    size_t slots = 16 * PS / 1024;
    unsigned char buf[1024];
    for (unsigned i = 0; i < 400; i++) {
        t_fill(buf, sizeof buf, i);
        t_commit_bytes(r->vmaddr + (i % slots) * 1024, buf, sizeof buf,
                       i % 3 ? flush : no_flush);
    }
    wait_for_auto_truncation();
    rvm_stats_t st = t_stats();
    assert_true(st.n_auto_truncations > 0);
    assert_true(st.n_truncations >= st.n_auto_truncations);
    for (unsigned i = 400 - slots; i < 400; i++)
        assert_true(t_check_fill(r->vmaddr + (i % slots) * 1024, 1024, i));
    t_reinit(c, 20);
    r = t_map(c, "seg", 0, 16 * PS, 0);
    for (unsigned i = 400 - slots; i < 400; i++)
        assert_true(t_check_fill(r->vmaddr + (i % slots) * 1024, 1024, i));
}

static void test_full_log_makes_commit_truncate_and_retry(void **state)
{
    struct tctx *c = *state;
    t_init(c, KIB(64), 0); /* never truncate by threshold */
    rvm_region_t *r = t_map(c, "seg", 0, 32 * PS, 0);
    size_t slots = 32 * PS / 2048;
    unsigned char buf[2048];
    for (unsigned i = 0; i < 200; i++) {
        t_fill(buf, sizeof buf, 1000 + i);
        t_commit_bytes(r->vmaddr + (i % slots) * 2048, buf, sizeof buf,
                       i % 4 ? flush : no_flush);
    }
    rvm_stats_t st = t_stats();
    assert_true(st.n_truncations > 0);
    assert_int_equal(st.n_auto_truncations, 0);
    assert_true(st.log_used <= st.log_size);
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, 32 * PS, 0);
    for (unsigned i = 200 - slots; i < 200; i++)
        assert_true(t_check_fill(r->vmaddr + (i % slots) * 2048, 2048, 1000 + i));
}

static void test_transaction_larger_than_log_is_etoo_big_and_abortable(void **state)
{
    struct tctx *c = *state;
    t_init(c, KIB(64), 50);
    rvm_region_t *r = t_map(c, "seg", 0, 32 * PS, 0);
    unsigned char *orig = malloc(32 * PS);
    assert_non_null(orig);
    t_fill(orig, 32 * PS, 5);
    /* fill in pieces that fit */
    for (size_t p = 0; p < 32; p += 4)
        t_commit_bytes(r->vmaddr + p * PS, orig + p * PS, 4 * PS, flush);

    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    assert_rvm_ok(rvm_set_range(tid, r->vmaddr, 32 * PS)); /* 128 KiB at 4K pages */
    memset(r->vmaddr, 0x11, 32 * PS);
    assert_rvm(rvm_end_transaction(tid, flush), RVM_ETOO_BIG);
    assert_true(rvm_tid_active(tid));
    assert_rvm(rvm_end_transaction(tid, no_flush), RVM_ETOO_BIG);
    assert_true(rvm_tid_active(tid));
    assert_rvm_ok(rvm_abort_transaction(tid));
    assert_memory_equal(r->vmaddr, orig, 32 * PS);

    /* RVM goes on */
    t_commit_bytes(r->vmaddr, "after", 5, flush);
    memcpy(orig, "after", 5);
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, 32 * PS, 0);
    assert_memory_equal(r->vmaddr, orig, 32 * PS);
    free(orig);
}

/* 8 threads, each committing its own transactions on its own slots. */
#define NTHREADS 8
#define NTXN 60
#define SLOT 512

struct worker {
    pthread_t th;
    int id;
    char *base[2];      /* one slot in each of two regions */
    int failures;
    rvm_return_t first_error;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    unsigned char buf[SLOT];
    for (int i = 0; i < NTXN; i++) {
        unsigned seed = (unsigned)(w->id * 10000 + i);
        t_fill(buf, SLOT, seed);
        rvm_mode_t begin_mode = i % 2 ? restore : no_restore;
        rvm_return_t rc = rvm_begin_transaction(&tid, begin_mode);
        if (rc == RVM_SUCCESS)
            rc = rvm_modify_bytes(&tid, w->base[0], buf, SLOT);
        if (rc == RVM_SUCCESS)
            rc = rvm_modify_bytes(&tid, w->base[1], buf, SLOT);
        if (rc == RVM_SUCCESS && i % 5 == 4 && begin_mode == restore) {
            /* an aborted extra change must vanish */
            rc = rvm_modify_bytes(&tid, w->base[0], "junk", 4);
            if (rc == RVM_SUCCESS)
                rc = rvm_abort_transaction(&tid);
            if (rc == RVM_SUCCESS)
                rc = rvm_begin_transaction(&tid, restore);
            if (rc == RVM_SUCCESS)
                rc = rvm_modify_bytes(&tid, w->base[0], buf, SLOT);
            if (rc == RVM_SUCCESS)
                rc = rvm_modify_bytes(&tid, w->base[1], buf, SLOT);
        }
        if (rc == RVM_SUCCESS)
            rc = rvm_end_transaction(&tid, i % 3 ? flush : no_flush);
        if (rc != RVM_SUCCESS) {
            if (!w->failures++)
                w->first_error = rc;
            if (rvm_tid_active(&tid) && rvm_abort_transaction(&tid) != RVM_SUCCESS)
                rvm_end_transaction(&tid, no_flush);
        }
    }
    return NULL;
}

/* Mapping, unmapping, flushing and truncating from other threads while
 * the workers commit. */
struct churn {
    pthread_t th;
    const char *seg;
    int stop;  /* atomic */
    int errors;
    unsigned commits;
    char what[160];
};

static void *churn_run(void *arg)
{
    struct churn *ch = arg;
    const char *seg = ch->seg;
    unsigned n = 0;
    while (!__atomic_load_n(&ch->stop, __ATOMIC_ACQUIRE)) {
        rvm_region_t r;
        rvm_init_region(&r);
        r.data_dev = (char *)seg;
        r.offset = RVM_MK_OFFSET(0, (n % 4) * rvm_page_size());
        r.length = rvm_page_size();
        rvm_return_t rc = rvm_map(&r, NULL);
        if (rc == RVM_SUCCESS) {
            rvm_tid_t tid;
            rvm_init_tid(&tid);
            unsigned v = n;
            rc = rvm_begin_transaction(&tid, restore);
            if (rc == RVM_SUCCESS)
                rc = rvm_modify_bytes(&tid, r.vmaddr, &v, sizeof v);
            if (rc == RVM_SUCCESS)
                rc = rvm_end_transaction(&tid, n % 2 ? flush : no_flush);
            if (rc == RVM_SUCCESS) {
                ch->commits++;
                rc = rvm_unmap(&r);
            }
        }
        if (rc == RVM_SUCCESS)
            rc = n % 3 == 0 ? rvm_truncate() : rvm_flush();
        if (rc != RVM_SUCCESS && !ch->errors++)
            snprintf(ch->what, sizeof ch->what, "round %u: %s %s", n, rvm_return(rc),
                     rvm_errmsg());
        n++;
    }
    return NULL;
}

static void run_threads(struct tctx *c, size_t log_len, long trunc, struct churn *ch)
{
    t_init(c, log_len, trunc);
    if (ch)
        assert_int_equal(pthread_create(&ch->th, NULL, churn_run, ch), 0);
    rvm_region_t *a = t_map(c, "a", 0, NTHREADS * SLOT / PS * PS + PS, 0);
    rvm_region_t *b = t_map(c, "b", PS, NTHREADS * SLOT / PS * PS + PS, 0);
    struct worker w[NTHREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].id = i;
        w[i].base[0] = a->vmaddr + i * SLOT;
        w[i].base[1] = b->vmaddr + (NTHREADS - 1 - i) * SLOT;
        assert_int_equal(pthread_create(&w[i].th, NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(w[i].th, NULL);
    if (ch) {
        __atomic_store_n(&ch->stop, 1, __ATOMIC_RELEASE);
        pthread_join(ch->th, NULL);
        if (ch->errors)
            fail_msg("churn thread: %d failed calls, first: %s", ch->errors, ch->what);
    }
    for (int i = 0; i < NTHREADS; i++)
        if (w[i].failures)
            fail_msg("thread %d: %d failed calls, first %s", i, w[i].failures,
                     rvm_return(w[i].first_error));
    unsigned last = NTXN - 1;
    for (int i = 0; i < NTHREADS; i++) {
        assert_true(t_check_fill(w[i].base[0], SLOT, (unsigned)(i * 10000) + last));
        assert_true(t_check_fill(w[i].base[1], SLOT, (unsigned)(i * 10000) + last));
    }
    rvm_stats_t st = t_stats();
    assert_int_equal(st.n_flush_commit + st.n_no_flush_commit,
                     NTHREADS * NTXN + (ch ? ch->commits : 0));
    t_reinit(c, trunc);
    a = t_map(c, "a", 0, NTHREADS * SLOT / PS * PS + PS, 0);
    b = t_map(c, "b", PS, NTHREADS * SLOT / PS * PS + PS, 0);
    for (int i = 0; i < NTHREADS; i++) {
        assert_true(t_check_fill(a->vmaddr + i * SLOT, SLOT, (unsigned)(i * 10000) + last));
        assert_true(t_check_fill(b->vmaddr + (NTHREADS - 1 - i) * SLOT, SLOT,
                                 (unsigned)(i * 10000) + last));
    }
}

static void test_threads_commit_disjoint_ranges(void **state)
{
    run_threads(*state, MIB(4), 50, NULL);
}

static void test_threads_commit_with_small_log_and_truncations(void **state)
{
    struct tctx *c = *state;
    run_threads(c, KIB(64), 30, NULL);
    rvm_stats_t st = t_stats();
    (void)st; /* counters restart at initialize; the data check is the test */
}

static void test_map_unmap_and_truncate_while_threads_commit(void **state)
{
    struct tctx *c = *state;
    struct churn ch = {.seg = t_path(c, "churn")};
    run_threads(c, KIB(128), 40, &ch);
}

/* Flush committers on their own slots, started together. */
struct flusher {
    pthread_t th;
    int id, ncommits;
    char *slot;
    pthread_barrier_t *start;
    rvm_return_t rc;
};

static void *flusher_run(void *arg)
{
    struct flusher *f = arg;
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    unsigned char buf[SLOT];
    pthread_barrier_wait(f->start);
    for (int i = 0; i < f->ncommits && f->rc == RVM_SUCCESS; i++) {
        t_fill(buf, SLOT, (unsigned)(f->id * 10000 + i));
        f->rc = rvm_begin_transaction(&tid, restore);
        if (f->rc == RVM_SUCCESS)
            f->rc = rvm_modify_bytes(&tid, f->slot, buf, SLOT);
        if (f->rc == RVM_SUCCESS)
            f->rc = rvm_end_transaction(&tid, flush);
    }
    return NULL;
}

static void run_flushers(struct flusher *f, int n, int ncommits, char *base)
{
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    for (int i = 0; i < n; i++) {
        f[i] = (struct flusher){.id = i, .ncommits = ncommits,
                                .slot = base + i * SLOT, .start = &start};
        assert_int_equal(pthread_create(&f[i].th, NULL, flusher_run, &f[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(f[i].th, NULL);
        assert_rvm_ok(f[i].rc);
    }
    pthread_barrier_destroy(&start);
}

static void test_concurrent_flush_commits_share_forces(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(4), 50);
    rvm_region_t *r = t_map(c, "seg", 0, NTHREADS * SLOT / PS * PS + PS, 0);
    struct flusher f[NTHREADS];
    rvm_stats_t s0 = t_stats();
    run_flushers(f, NTHREADS, 100, r->vmaddr);
    rvm_stats_t s1 = t_stats();
    assert_int_equal(s1.n_flush_commit - s0.n_flush_commit, NTHREADS * 100);
    assert_true(s1.n_forces - s0.n_forces < s1.n_flush_commit - s0.n_flush_commit);
    assert_true(s1.n_group_commits > s0.n_group_commits);
    /* Every commit was acknowledged after its force: all are on disk. */
    t_reinit(c, 50);
    r = t_map(c, "seg", 0, NTHREADS * SLOT / PS * PS + PS, 0);
    for (int i = 0; i < NTHREADS; i++)
        assert_true(t_check_fill(r->vmaddr + i * SLOT, SLOT, (unsigned)(i * 10000 + 99)));
}

static double now_sec(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* After a group of 8, a committer left alone must not keep waiting for
 * the others: its groups shrink to one at once. */
static void test_lone_committer_after_a_group_forces_each_commit(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(4), 50);
    rvm_region_t *r = t_map(c, "seg", 0, NTHREADS * SLOT / PS * PS + PS, 0);
    struct flusher f[NTHREADS];
    run_flushers(f, NTHREADS, 50, r->vmaddr);
    rvm_stats_t s0 = t_stats();
    double t0 = now_sec();
    run_flushers(f, 1, 200, r->vmaddr);
    double dt = now_sec() - t0;
    rvm_stats_t s1 = t_stats();
    /* Each commit is a group of its own after the first few. */
    assert_true(s1.n_forces - s0.n_forces >= 195);
    /* A gather is bounded by one force (2 ms at most); 200 commits that
     * each waited in vain would take 2 x as long as their forces. */
    assert_true(dt < 200 * 0.002 + 2.0);
}

static void test_one_transaction_over_a_hundred_segments(void **state)
{
    struct tctx *c = *state;
    t_init(c, MIB(1), 0);
    enum { NSEG = 100 };
    rvm_region_t *r[NSEG];
    char name[32];
    for (int i = 0; i < NSEG; i++) {
        snprintf(name, sizeof name, "many%03d", i);
        r[i] = t_map(c, name, 0, PS, 0);
    }
    rvm_tid_t *tid = t_tid(c);
    assert_rvm_ok(rvm_begin_transaction(tid, restore));
    for (int i = 0; i < NSEG; i++)
        assert_rvm_ok(rvm_modify_bytes(tid, r[i]->vmaddr + i, &i, sizeof i));
    assert_rvm_ok(rvm_end_transaction(tid, flush));
    t_reinit(c, 0);
    for (int i = 0; i < NSEG; i++) {
        snprintf(name, sizeof name, "many%03d", i);
        rvm_region_t *m = t_map(c, name, 0, PS, 0);
        int v;
        memcpy(&v, m->vmaddr + i, sizeof v);
        assert_int_equal(v, i);
        t_unmap(c, m);
    }
    assert_rvm_ok(rvm_truncate());
    for (int i = 0; i < NSEG; i += 17) {
        snprintf(name, sizeof name, "many%03d", i);
        int v;
        t_read_file(t_path(c, name), (size_t)i, &v, sizeof v);
        assert_int_equal(v, i);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_truncate_applies_log_to_segment_file),
        T(test_truncate_of_empty_log_succeeds),
        T(test_recovery_replays_log_into_segments),
        T(test_big_commit_after_small_ones_wraps_the_log),
        T(test_no_flush_queue_is_written_past_flush_buf_len),
        T(test_coalesced_no_flush_commits_log_fewer_bytes),
        T(test_large_commits_coalesce_only_when_they_overlap),
        T(test_auto_truncation_keeps_data_correct),
        T(test_full_log_makes_commit_truncate_and_retry),
        T(test_transaction_larger_than_log_is_etoo_big_and_abortable),
        T(test_threads_commit_disjoint_ranges),
        T(test_threads_commit_with_small_log_and_truncations),
        T(test_map_unmap_and_truncate_while_threads_commit),
        T(test_one_transaction_over_a_hundred_segments),
        T(test_concurrent_flush_commits_share_forces),
        T(test_lone_committer_after_a_group_forces_each_commit),
    };
    return cmocka_run_group_tests_name("librvm log", tests, NULL, NULL);
}
