/*
 * Crash tests that really crash: a child process commits transactions in
 * a loop and the parent kills it with SIGKILL at a random moment, again
 * and again on the same store.  Each child first recovers the store and
 * reports the state it found; the parent checks it against what earlier
 * children acknowledged:
 *   - every flush commit (and every commit before a returned rvm_flush)
 *     that was acknowledged is there;
 *   - no transaction is partial (each one writes the same counter value
 *     into several places of three regions of two segments);
 *   - of the unacknowledged/no_flush commits, only a prefix survives
 *     (the counter never skips: each of the 32 newest values left a slot).
 *
 * A second run does the same with four threads committing at once, each
 * on its own lane (own bytes of the same regions): group commit under
 * SIGKILL.
 *
 * RVM_CRASH_ITERS (default 220; the threaded run does half) sets the
 * number of kill points and
 * RVM_CRASH_SEED the random seed (printed).
 */
#include "test_util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define LOG_LEN KIB(64) /* the smallest: truncations often */
#define TRUNC 30

enum msg_type { MSG_RECOVERED = 1, MSG_DURABLE, MSG_COMMITTED, MSG_ERROR };

struct msg {
    uint16_t type;
    uint16_t lane;
    uint32_t whole;
    uint64_t k;
    uint64_t life;
    char err[104];
};
_Static_assert(sizeof(struct msg) <= 512, "atomic pipe writes");

static uint64_t rng_state;

static uint64_t rnd_next(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *st = x;
}

static uint64_t rnd(void)
{
    return rnd_next(&rng_state);
}

static void send_msg(int fd, int lane, uint32_t type, uint32_t whole, uint64_t k,
                     uint64_t life, const char *err)
{
    struct msg m;
    memset(&m, 0, sizeof m);
    m.type = (uint16_t)type;
    m.lane = (uint16_t)lane;
    m.whole = whole;
    m.k = k;
    m.life = life;
    if (err)
        snprintf(m.err, sizeof m.err, "%s", err);
    ssize_t n;
    do {
        n = write(fd, &m, sizeof m);
    } while (n < 0 && errno == EINTR);
}

/* A committing thread of the worker: one lane, until killed. */
struct lane_worker {
    pthread_t th;
    struct store *s;
    int fd, lane;
    uint64_t k, life, rng;
};

static void *lane_run(void *arg)
{
    struct lane_worker *w = arg;
    struct store *s = w->s;
    int fd = w->fd, lane = w->lane;
    uint64_t k = w->k, life = w->life;
    for (;;) {
        k++;
        uint64_t r = rnd_next(&w->rng);
        rvm_mode_t bm = r & 1 ? restore : no_restore;
        rvm_mode_t em = (r >> 1) % 5 < 3 ? flush : no_flush;
        bool abort_first = bm == restore && (r >> 4) % 8 == 0;
        rvm_return_t rc = store_txn_lane(s, lane, k, life, bm, em, abort_first);
        if (rc != RVM_SUCCESS) {
            char e[104];
            snprintf(e, sizeof e, "commit %llu: %s %s", (unsigned long long)k,
                     rvm_return(rc), rvm_errmsg());
            send_msg(fd, lane, MSG_ERROR, 0, k, life, e);
            _exit(5);
        }
        send_msg(fd, lane, em == flush ? MSG_DURABLE : MSG_COMMITTED, 1, k, life, NULL);
        uint64_t act = (r >> 8) % 32;
        if (act == 0) {
            if ((rc = rvm_flush()) != RVM_SUCCESS) {
                send_msg(fd, lane, MSG_ERROR, 0, k, life, "rvm_flush failed");
                _exit(5);
            }
            send_msg(fd, lane, MSG_DURABLE, 1, k, life, NULL);
        } else if (act == 1) {
            if ((rc = rvm_truncate()) != RVM_SUCCESS) {
                send_msg(fd, lane, MSG_ERROR, 0, k, life, "rvm_truncate failed");
                _exit(5);
            }
            send_msg(fd, lane, MSG_DURABLE, 1, k, life, NULL);
        }
    }
    return NULL;
}

/* The worker: recover, report every lane, then commit until killed. */
static void child_main(const char *dir, int fd, uint64_t life, uint64_t seed,
                       rvm_length_t flags, int nlanes)
{
    struct store s;
    store_paths(&s, dir);
    const char *why;
    rvm_return_t rc = store_open(&s, LOG_LEN, TRUNC, flags, &why);
    if (rc != RVM_SUCCESS) {
        char e[104];
        snprintf(e, sizeof e, "%s: %s %s", why, rvm_return(rc), rvm_errmsg());
        send_msg(fd, 0, MSG_ERROR, 0, 0, life, e);
        _exit(4);
    }
    struct lane_worker w[STORE_LANES];
    for (int lane = 0; lane < nlanes; lane++) {
        uint64_t k, l;
        char err[100];
        int whole = store_check_lane(&s, lane, &k, &l, err, sizeof err) == 0;
        send_msg(fd, lane, MSG_RECOVERED, (uint32_t)whole, k, l, whole ? NULL : err);
        if (!whole)
            _exit(4);
        w[lane] = (struct lane_worker){.s = &s, .fd = fd, .lane = lane, .k = k,
                                       .life = life, .rng = (seed + (uint64_t)lane * 7919) | 1};
    }
    for (int lane = 1; lane < nlanes; lane++)
        if (pthread_create(&w[lane].th, NULL, lane_run, &w[lane]) != 0)
            _exit(7);
    lane_run(&w[0]);
}

/* Blocking read of one message with a timeout; 1 got, 0 EOF, -1 timeout. */
static int read_msg(int fd, struct msg *m, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr;
    do {
        pr = poll(&p, 1, timeout_ms);
    } while (pr < 0 && errno == EINTR);
    if (pr == 0)
        return -1;
    size_t got = 0;
    while (got < sizeof *m) {
        ssize_t n = read(fd, (char *)m + got, sizeof *m - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return got ? -1 : 0;
        got += (size_t)n;
    }
    return 1;
}

struct bounds {
    uint64_t min;   /* acknowledged as durable */
    uint64_t max;   /* at most this may have been committed */
};

static void check_recovered(const struct msg *m, const struct bounds *b, int iter)
{
    if (!m->whole)
        fail_msg("kill point %d: recovered state is not whole: %s", iter, m->err);
    if (m->k < b->min)
        fail_msg("kill point %d: recovered k=%llu but k=%llu was acknowledged durable",
                 iter, (unsigned long long)m->k, (unsigned long long)b->min);
    if (m->k > b->max)
        fail_msg("kill point %d: recovered k=%llu but at most k=%llu was committed",
                 iter, (unsigned long long)m->k, (unsigned long long)b->max);
}

static void sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void run_kill_points(struct tctx *c, int iters, int nlanes)
{
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    const char *e = getenv("RVM_CRASH_SEED");
    if (e)
        seed = (unsigned)strtoul(e, NULL, 0);
    print_message("crash test: %d kill points, %d committing thread(s), "
                  "RVM_CRASH_SEED=%u\n", iters, nlanes, seed);
    rng_state = (uint64_t)seed * 0x9E3779B97F4A7C15ull | 1;

    struct bounds b[STORE_LANES];
    memset(b, 0, sizeof b);
    int killed_in_recovery = 0, killed_in_commits = 0;
    uint64_t total_acked = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (int iter = 0; iter < iters; iter++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        uint64_t child_seed = rnd();
        static const rvm_length_t flag_sets[] = {
            0, RVM_ALL_OPTIMIZATIONS, RVM_MAP_PRIVATE,
            RVM_MAP_PRIVATE | RVM_ALL_OPTIMIZATIONS, RVM_COALESCE_TRANS};
        rvm_length_t flags = flag_sets[iter % 5];
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            child_main(c->dir, pfd[1], (uint64_t)iter + 1, child_seed, flags, nlanes);
            _exit(6);
        }
        close(pfd[1]);

        bool early = rnd() % 10 == 0;
        struct msg m;
        int recovered = 0;
        struct bounds next[STORE_LANES];
        memcpy(next, b, sizeof next);
        if (early) {
            /* somewhere in rvm_initialize's recovery, or just after */
            sleep_us(rnd() % 3000);
        } else {
            int r = read_msg(pfd[0], &m, 60000);
            if (r <= 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                fail_msg("kill point %d: no report from the child (%s)", iter,
                         r == 0 ? "it died" : "timeout");
            }
            if (m.type == MSG_ERROR)
                fail_msg("kill point %d: child: %s", iter, m.err);
            assert_int_equal(m.type, MSG_RECOVERED);
            check_recovered(&m, &b[m.lane], iter);
            recovered++;
            next[m.lane].min = next[m.lane].max = m.k;
            sleep_us(rnd() % 12000);
        }
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);

        /* what did it acknowledge before it died? */
        while (read_msg(pfd[0], &m, 1000) == 1) {
            if (m.lane >= nlanes)
                fail_msg("kill point %d: bad lane %u", iter, m.lane);
            struct bounds *nb = &next[m.lane];
            switch (m.type) {
            case MSG_RECOVERED:
                check_recovered(&m, &b[m.lane], iter);
                recovered++;
                nb->min = nb->max = m.k;
                break;
            case MSG_DURABLE:
                if (m.k > nb->min)
                    nb->min = m.k;
                if (m.k > nb->max)
                    nb->max = m.k;
                total_acked++;
                break;
            case MSG_COMMITTED:
                if (m.k > nb->max)
                    nb->max = m.k;
                total_acked++;
                break;
            case MSG_ERROR:
                fail_msg("kill point %d: child: %s", iter, m.err);
                break;
            default:
                fail_msg("kill point %d: bad message %u", iter, m.type);
            }
        }
        close(pfd[0]);
        if (!WIFSIGNALED(status))
            fail_msg("kill point %d: child exited by itself (status 0x%x)", iter, status);
        if (recovered == nlanes) {
            for (int l = 0; l < nlanes; l++) {
                next[l].max++; /* the transaction in flight may have made it */
                b[l] = next[l];
            }
            killed_in_commits++;
        } else {
            /* killed before every lane reported: no commit had started */
            killed_in_recovery++;
        }
    }

    /* the last kill point, checked here */
    struct store s;
    store_paths(&s, c->dir);
    const char *why;
    rvm_return_t rc = store_open(&s, LOG_LEN, TRUNC, 0, &why);
    if (rc != RVM_SUCCESS)
        fail_msg("final recovery: %s: %s [%s]", why, rvm_return(rc), rvm_errmsg());
    uint64_t ks[STORE_LANES];
    for (int l = 0; l < nlanes; l++) {
        uint64_t life;
        char err[256];
        int whole = store_check_lane(&s, l, &ks[l], &life, err, sizeof err);
        if (whole != 0) {
            store_close(&s);
            fail_msg("final recovery: state is not whole: %s", err);
        }
        struct msg fm = {.whole = 1, .k = ks[l]};
        check_recovered(&fm, &b[l], iters);
    }
    assert_rvm_ok(store_close(&s));

    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("kill points checked: %d (%d during commits, %d during recovery), "
                  "%llu commits acknowledged, final k=%llu (lane 0), %.1f s\n",
                  iters, killed_in_commits, killed_in_recovery,
                  (unsigned long long)total_acked, (unsigned long long)ks[0], secs);
    assert_true(killed_in_commits > 0);
}

static int iters_from_env(int dflt)
{
    const char *e = getenv("RVM_CRASH_ITERS");
    return e && atoi(e) > 0 ? atoi(e) : dflt;
}

static void test_kill_during_commits_keeps_durable_whole_prefix(void **state)
{
    run_kill_points(*state, iters_from_env(220), 1);
}

static void test_kill_during_concurrent_commits_keeps_each_lane_whole(void **state)
{
    run_kill_points(*state, iters_from_env(220) / 2, 4);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_kill_during_commits_keeps_durable_whole_prefix),
        T(test_kill_during_concurrent_commits_keeps_each_lane_whole),
    };
    return cmocka_run_group_tests_name("librvm crash", tests, NULL, NULL);
}
