/*
 * A no_flush write-out starts the write-back of what it wrote (a hint,
 * sync_file_range) only after it has given up the leader's role: the
 * hint can block for a long time, and an rvm_flush must not wait for it.
 * The log's fd method is where the hint begins, so an fd that blocks
 * stands for a slow hint.
 */
#include "test_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rvm_io.h"

struct wb_file {
    rvm_io_file *inner;
    bool is_log;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool armed, released;
static int blocked;             /* fd calls waiting in wb_fd */

static int wb_open(const char *path, int flags, mode_t mode, rvm_io_file **out)
{
    struct wb_file *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    int rc = rvm_io_posix()->open(path, flags, mode, &f->inner);
    if (rc < 0) {
        free(f);
        return rc;
    }
    const char *base = strrchr(path, '/');
    f->is_log = strcmp(base ? base + 1 : path, "log") == 0;
    *out = (rvm_io_file *)f;
    return rc;
}

#define IN(f) (((struct wb_file *)(f))->inner)
static ssize_t wb_pread(rvm_io_file *f, void *b, size_t n, uint64_t o) { return rvm_io_posix()->pread(IN(f), b, n, o); }
static ssize_t wb_pwrite(rvm_io_file *f, const void *b, size_t n, uint64_t o) { return rvm_io_posix()->pwrite(IN(f), b, n, o); }
static int wb_sync(rvm_io_file *f) { return rvm_io_posix()->sync(IN(f)); }
static int wb_size(rvm_io_file *f, uint64_t *out) { return rvm_io_posix()->size(IN(f), out); }
static int wb_resize(rvm_io_file *f, uint64_t n) { return rvm_io_posix()->resize(IN(f), n); }

static int wb_close(rvm_io_file *f)
{
    int rc = rvm_io_posix()->close(IN(f));
    free(f);
    return rc;
}

/* Blocks the log's fd while armed, until released (10 s at most). */
static int wb_fd(rvm_io_file *f)
{
    if (((struct wb_file *)f)->is_log) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 10;
        pthread_mutex_lock(&mu);
        if (armed) {
            blocked++;
            pthread_cond_broadcast(&cond);
            while (!released && pthread_cond_timedwait(&cond, &mu, &until) == 0)
                ;
            blocked--;
        }
        pthread_mutex_unlock(&mu);
    }
    return rvm_io_posix()->fd(IN(f));
}

static const rvm_io_methods wb_methods = {
    wb_open, wb_pread, wb_pwrite, wb_sync, wb_size, wb_resize, wb_close, wb_fd, NULL,
};

static bool flushed;

static void *flusher(void *arg)
{
    rvm_return_t *ret = arg;
    *ret = rvm_flush();
    pthread_mutex_lock(&mu);
    flushed = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Wait (5 s at most) for *flag to become true; mu held. */
static bool wait_for(bool *flag, int *count)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    while (!(flag ? *flag : *count > 0) && pthread_cond_timedwait(&cond, &mu, &until) == 0)
        ;
    return flag ? *flag : *count > 0;
}

static void test_flush_does_not_wait_for_a_write_out_hint(void **state)
{
    struct tctx *c = *state;
    t_create_log(c, MIB(4));
    rvm_io_set(&wb_methods);
    rvm_options_t o;
    t_options(c, &o, 0);
    o.flush_buf_len = MIN_FLUSH_BUF_LEN;
    assert_rvm_ok(RVM_INIT(&o));
    rvm_region_t *r = t_map(c, "seg", 0, 64 * (size_t)rvm_page_size(), 0);
    pthread_mutex_lock(&mu);
    armed = true;
    pthread_mutex_unlock(&mu);
    /* 100 KiB of no_flush commits against a 64 KiB queue: the writer
     * thread writes them out and then gives the hint. */
    unsigned char buf[2048];
    for (unsigned i = 0; i < 50; i++) {
        t_fill(buf, sizeof buf, i);
        t_commit_bytes(r->vmaddr + i * sizeof buf, buf, sizeof buf, no_flush);
    }
    pthread_mutex_lock(&mu);
    assert_true(wait_for(NULL, &blocked));
    pthread_mutex_unlock(&mu);
    /* More commits, then a flush while the hint hangs. */
    for (unsigned i = 50; i < 60; i++) {
        t_fill(buf, sizeof buf, i);
        t_commit_bytes(r->vmaddr + i * sizeof buf, buf, sizeof buf, no_flush);
    }
    rvm_return_t fret = RVM_EIO;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flusher, &fret), 0);
    pthread_mutex_lock(&mu);
    bool done = wait_for(&flushed, NULL);
    bool still_blocked = blocked > 0;
    released = true;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    assert_true(done);
    assert_true(still_blocked);
    assert_rvm_ok(fret);
    assert_int_equal(t_stats().no_flush_pending, 0);
    t_reinit(c, 0);
    r = t_map(c, "seg", 0, 64 * (size_t)rvm_page_size(), 0);
    for (unsigned i = 0; i < 60; i++)
        assert_true(t_check_fill(r->vmaddr + i * sizeof buf, sizeof buf, i));
}

static int teardown(void **state)
{
    int rc = t_teardown(state);
    rvm_io_set(NULL);
    return rc;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_does_not_wait_for_a_write_out_hint,
                                        t_setup, teardown),
    };
    return cmocka_run_group_tests_name("librvm write-back hint", tests, NULL, NULL);
}
