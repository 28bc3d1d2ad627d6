#include "test_util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void t_rmtree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int t_mkdtemp(char *buf, size_t size, const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if ((size_t)snprintf(buf, size, "%s/%s.XXXXXX", tmp, prefix) >= size)
        return -1;
    return mkdtemp(buf) ? 0 : -1;
}

int t_setup(void **state)
{
    struct tctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    if (t_mkdtemp(c->dir, sizeof c->dir, "rvmtest") < 0) {
        free(c);
        return -1;
    }
    c->log = (char *)t_path(c, "log");
    *state = c;
    return 0;
}

int t_teardown(void **state)
{
    struct tctx *c = *state;
    for (int i = 0; i < T_MAX_TIDS; i++) {
        rvm_tid_t *t = c->tids[i];
        if (!t)
            continue;
        if (rvm_tid_active(t) && rvm_abort_transaction(t) != RVM_SUCCESS)
            rvm_end_transaction(t, no_flush);
        rvm_free_tid(t);
    }
    for (int i = 0; i < T_MAX_REGIONS; i++) {
        if (c->regions[i]) {
            rvm_unmap(c->regions[i]);
            rvm_free_region(c->regions[i]);
        }
    }
    rvm_terminate();
    if (getenv("RVM_TEST_KEEP"))
        fprintf(stderr, "kept %s\n", c->dir);
    else
        t_rmtree(c->dir);
    for (int i = 0; i < c->npaths; i++)
        free(c->paths[i]);
    free(c);
    return 0;
}

const char *t_path(struct tctx *c, const char *name)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "%s/%s", c->dir, name);
    for (int i = 0; i < c->npaths; i++)
        if (strcmp(c->paths[i], buf) == 0)
            return c->paths[i];
    assert_true(c->npaths < T_MAX_PATHS);
    c->paths[c->npaths] = strdup(buf);
    assert_non_null(c->paths[c->npaths]);
    return c->paths[c->npaths++];
}

void t_create_log(struct tctx *c, size_t data_len)
{
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = c->log;
    rvm_offset_t len = RVM_MK_OFFSET(0, data_len);
    assert_rvm_ok(rvm_create_log(&o, &len, 0600));
}

void t_options(struct tctx *c, rvm_options_t *o, long truncate)
{
    rvm_init_options(o);
    o->log_dev = c->log;
    o->truncate = truncate;
}

void t_init(struct tctx *c, size_t log_data_len, long truncate)
{
    if (!t_file_exists(c->log))
        t_create_log(c, log_data_len);
    rvm_options_t o;
    t_options(c, &o, truncate);
    assert_rvm_ok(RVM_INIT(&o));
}

void t_reinit(struct tctx *c, long truncate)
{
    for (int i = 0; i < T_MAX_REGIONS; i++) {
        if (c->regions[i]) {
            assert_rvm_ok(rvm_unmap(c->regions[i]));
            rvm_free_region(c->regions[i]);
            c->regions[i] = NULL;
        }
    }
    assert_rvm_ok(rvm_terminate());
    rvm_options_t o;
    t_options(c, &o, truncate);
    assert_rvm_ok(RVM_INIT(&o));
}

rvm_return_t t_try_map(struct tctx *c, const char *seg, size_t offset,
                       size_t length, char *vmaddr, rvm_length_t flags,
                       rvm_region_t **out)
{
    rvm_region_t *r = rvm_malloc_region();
    assert_non_null(r);
    r->data_dev = strdup(t_path(c, seg));
    assert_non_null(r->data_dev);
    r->offset = RVM_MK_OFFSET(0, offset);
    r->length = length;
    r->vmaddr = vmaddr;
    rvm_options_t o;
    rvm_init_options(&o);
    o.flags = flags;
    rvm_return_t rc = rvm_map(r, flags ? &o : NULL);
    *out = NULL;
    if (rc != RVM_SUCCESS) {
        rvm_free_region(r);
        return rc;
    }
    int i;
    for (i = 0; i < T_MAX_REGIONS && c->regions[i]; i++)
        ;
    assert_true(i < T_MAX_REGIONS);
    c->regions[i] = r;
    *out = r;
    return rc;
}

rvm_region_t *t_map(struct tctx *c, const char *seg, size_t offset,
                    size_t length, rvm_length_t flags)
{
    rvm_region_t *r;
    rvm_return_t rc = t_try_map(c, seg, offset, length, NULL, flags, &r);
    if (rc != RVM_SUCCESS)
        fail_msg("rvm_map(%s, offset %zu, length %zu): %s; errmsg: %s", seg,
                 offset, length, rvm_return(rc), rvm_errmsg());
    assert_non_null(r->vmaddr);
    assert_int_equal((uintptr_t)r->vmaddr % rvm_page_size(), 0);
    return r;
}

void t_unmap(struct tctx *c, rvm_region_t *r)
{
    for (int i = 0; i < T_MAX_REGIONS; i++) {
        if (c->regions[i] == r) {
            assert_rvm_ok(rvm_unmap(r));
            rvm_free_region(r);
            c->regions[i] = NULL;
            return;
        }
    }
    fail_msg("t_unmap: region not tracked");
}

rvm_tid_t *t_tid(struct tctx *c)
{
    for (int i = 0; i < T_MAX_TIDS; i++) {
        if (!c->tids[i]) {
            c->tids[i] = rvm_malloc_tid();
            assert_non_null(c->tids[i]);
            return c->tids[i];
        }
    }
    fail_msg("t_tid: too many tids");
    return NULL;
}

void t_commit_bytes(void *dest, const void *src, size_t len, rvm_mode_t mode)
{
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    assert_rvm_ok(rvm_begin_transaction(&tid, restore));
    assert_rvm_ok(rvm_modify_bytes(&tid, dest, src, len));
    assert_rvm_ok(rvm_end_transaction(&tid, mode));
}

void t_read_file(const char *path, size_t off, void *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    memset(buf, 0, len);
    ssize_t n = pread(fd, buf, len, (off_t)off);
    close(fd);
    if (n < 0)
        fail_msg("pread %s: %s", path, strerror(errno));
}

void t_write_file(const char *path, size_t off, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        fail_msg("open %s: %s", path, strerror(errno));
    ssize_t n = pwrite(fd, buf, len, (off_t)off);
    close(fd);
    if (n != (ssize_t)len)
        fail_msg("pwrite %s failed", path);
}

uint64_t t_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return 0;
    return (uint64_t)st.st_size;
}

int t_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static unsigned char fill_byte(size_t i, unsigned seed)
{
    uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u + 17u;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return (unsigned char)x;
}

void t_fill(void *buf, size_t len, unsigned seed)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        p[i] = fill_byte(i, seed);
}

int t_check_fill(const void *buf, size_t len, unsigned seed)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++)
        if (p[i] != fill_byte(i, seed))
            return 0;
    return 1;
}

rvm_stats_t t_stats(void)
{
    rvm_stats_t st;
    memset(&st, 0, sizeof st);
    assert_rvm_ok(rvm_get_stats(&st));
    return st;
}

rvm_options_t *t_query(rvm_region_t *region)
{
    rvm_options_t *o = rvm_malloc_options();
    assert_non_null(o);
    rvm_return_t rc = rvm_query(o, region);
    if (rc != RVM_SUCCESS) {
        rvm_free_options(o);
        fail_msg("rvm_query: %s; errmsg: %s", rvm_return(rc), rvm_errmsg());
    }
    return o;
}
