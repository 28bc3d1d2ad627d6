/*
 * Fault-injecting I/O methods; see fault_io.h for the model.
 */
#include "fault_io.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One per path ever opened (since install/reset). */
struct frec {
    struct frec *next;
    char *path;
    unsigned long n_pwrite, n_sync, n_direct;
    int crash_fd;               /* during a crash only */
};

struct fault_file {
    rvm_io_file *inner;
    struct frec *rec;
};

struct pending {
    struct frec *rec;
    uint64_t off;
    size_t len;
    unsigned char *new_bytes;
    unsigned char *old_bytes;   /* len bytes: what was there (zero past EOF) */
};

struct rule {
    bool armed;
    char match[512];
    bool any;
    unsigned countdown;
    int err;
    int times;
};

struct crash_rule {
    bool armed;
    char match[512];
    bool any;
    unsigned countdown;
    enum fault_keep keep;
    long tear;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct frec *recs;
static struct pending *pend;
static size_t npend, cappend;
static struct rule rules[3];
static struct crash_rule crash_rule;
static bool crashed;
static uint64_t rng = 88172645463325252ull;
static size_t last_kept;
static long last_tear = FAULT_NO_TEAR;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const struct rvm_io_methods *posix(void)
{
    return rvm_io_posix();
}

static bool path_matches(const struct frec *r, bool any, const char *match)
{
    return any || strstr(r->path, match) != NULL;
}

static struct frec *rec_get(const char *path)
{
    for (struct frec *r = recs; r; r = r->next)
        if (strcmp(r->path, path) == 0)
            return r;
    struct frec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->path = strdup(path);
    if (!r->path) {
        free(r);
        return NULL;
    }
    r->crash_fd = -1;
    r->next = recs;
    recs = r;
    return r;
}

static void pending_free(struct pending *p)
{
    free(p->new_bytes);
    free(p->old_bytes);
}

static void drop_pending_of(struct frec *rec)
{
    size_t j = 0;
    for (size_t i = 0; i < npend; i++) {
        if (pend[i].rec == rec)
            pending_free(&pend[i]);
        else
            pend[j++] = pend[i];
    }
    npend = j;
}

static void drop_all_pending(void)
{
    for (size_t i = 0; i < npend; i++)
        pending_free(&pend[i]);
    free(pend);
    pend = NULL;
    npend = cappend = 0;
}

/* An armed rule fires for this op? (mu held) */
static int rule_check(enum fault_op op, struct frec *rec)
{
    struct rule *r = &rules[op];
    if (!r->armed || !path_matches(rec, r->any, r->match))
        return 0;
    if (r->countdown > 1) {
        r->countdown--;
        return 0;
    }
    int err = r->err;
    if (r->times == 0)
        r->armed = false;
    else if (r->times > 0)
        r->times--;
    return -err;
}

static void raw_write(struct frec *rec, const void *buf, size_t len, uint64_t off)
{
    if (rec->crash_fd < 0)
        rec->crash_fd = open(rec->path, O_WRONLY | O_CLOEXEC);
    if (rec->crash_fd < 0)
        return;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(rec->crash_fd, (const char *)buf + done, len - done,
                           (off_t)(off + done));
        if (n <= 0) {
            if (n < 0 && errno == EINTR)
                continue;
            return;
        }
        done += (size_t)n;
    }
}

/* The power loss itself (mu held). */
static void do_crash(enum fault_keep keep, long tear)
{
    /* back to the durable state, newest first */
    for (size_t i = npend; i-- > 0;)
        raw_write(pend[i].rec, pend[i].old_bytes, pend[i].len, pend[i].off);

    bool *kept = calloc(npend ? npend : 1, sizeof *kept);
    size_t prefix = npend ? (size_t)(rnd() % (npend + 1)) : 0;
    for (size_t i = 0; kept && i < npend; i++) {
        switch (keep) {
        case FAULT_KEEP_NONE: kept[i] = false; break;
        case FAULT_KEEP_ALL: kept[i] = true; break;
        case FAULT_KEEP_RANDOM: kept[i] = rnd() & 1; break;
        case FAULT_KEEP_PREFIX: kept[i] = i < prefix; break;
        }
    }
    size_t last = npend;
    for (size_t i = 0; kept && i < npend; i++)
        if (kept[i])
            last = i;
    last_kept = 0;
    last_tear = FAULT_NO_TEAR;
    for (size_t i = 0; kept && i < npend; i++) {
        if (!kept[i])
            continue;
        size_t len = pend[i].len;
        if (i == last && tear != FAULT_NO_TEAR && len > 0) {
            size_t t = tear == FAULT_TEAR_RANDOM ? (size_t)(rnd() % len)
                                                 : (size_t)tear;
            if (t < len) {
                len = t;
                last_tear = (long)t;
            }
        }
        raw_write(pend[i].rec, pend[i].new_bytes, len, pend[i].off);
        last_kept++;
    }
    free(kept);
    for (struct frec *r = recs; r; r = r->next) {
        if (r->crash_fd >= 0) {
            fdatasync(r->crash_fd);
            close(r->crash_fd);
            r->crash_fd = -1;
        }
    }
    drop_all_pending();
    crashed = true;
}

static int f_open(const char *path, int flags, mode_t mode, rvm_io_file **out)
{
    pthread_mutex_lock(&mu);
    int rc = -EIO;
    if (crashed)
        goto out;
    struct fault_file *ff = calloc(1, sizeof *ff);
    if (!ff) {
        rc = -ENOMEM;
        goto out;
    }
    ff->rec = rec_get(path);
    if (!ff->rec) {
        free(ff);
        rc = -ENOMEM;
        goto out;
    }
    rc = posix()->open(path, flags, mode, &ff->inner);
    if (rc < 0) {
        free(ff);
        goto out;
    }
    *out = (rvm_io_file *)ff;
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

static ssize_t f_pread(rvm_io_file *f, void *buf, size_t len, uint64_t off)
{
    struct fault_file *ff = (struct fault_file *)f;
    pthread_mutex_lock(&mu);
    ssize_t rc = -EIO;
    if (!crashed) {
        rc = rule_check(FAULT_PREAD, ff->rec);
        if (rc == 0)
            rc = posix()->pread(ff->inner, buf, len, off);
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

static ssize_t f_pwrite(rvm_io_file *f, const void *buf, size_t len, uint64_t off)
{
    struct fault_file *ff = (struct fault_file *)f;
    ssize_t rc = -EIO;
    pthread_mutex_lock(&mu);
    if (crashed)
        goto out;
    ff->rec->n_pwrite++;
    int err = rule_check(FAULT_PWRITE, ff->rec);
    if (err) {
        rc = err;
        goto out;
    }
    struct pending p = {.rec = ff->rec, .off = off, .len = len};
    p.new_bytes = malloc(len ? len : 1);
    p.old_bytes = calloc(1, len ? len : 1);
    if (!p.new_bytes || !p.old_bytes) {
        pending_free(&p);
        rc = -ENOMEM;
        goto out;
    }
    memcpy(p.new_bytes, buf, len);
    ssize_t got = posix()->pread(ff->inner, p.old_bytes, len, off);
    if (got < 0) {
        pending_free(&p);
        rc = got;
        goto out;
    }
    rc = posix()->pwrite(ff->inner, buf, len, off);
    if (rc < 0) {
        pending_free(&p);
        goto out;
    }
    if (npend == cappend) {
        size_t ncap = cappend ? 2 * cappend : 64;
        struct pending *np = realloc(pend, ncap * sizeof *np);
        if (!np) {
            pending_free(&p);
            rc = -ENOMEM;
            goto out;
        }
        pend = np;
        cappend = ncap;
    }
    pend[npend++] = p;
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

static int f_sync(rvm_io_file *f)
{
    struct fault_file *ff = (struct fault_file *)f;
    int rc = -EIO;
    pthread_mutex_lock(&mu);
    if (crashed)
        goto out;
    ff->rec->n_sync++;
    if (crash_rule.armed && path_matches(ff->rec, crash_rule.any, crash_rule.match)) {
        if (crash_rule.countdown > 1) {
            crash_rule.countdown--;
        } else {
            crash_rule.armed = false;
            do_crash(crash_rule.keep, crash_rule.tear);
            rc = -EIO;
            goto out;
        }
    }
    rc = rule_check(FAULT_SYNC, ff->rec);
    if (rc)
        goto out; /* a failed sync leaves the writes pending */
    rc = posix()->sync(ff->inner);
    if (rc == 0)
        drop_pending_of(ff->rec); /* durability point of this file */
out:
    pthread_mutex_unlock(&mu);
    return rc;
}

static int f_size(rvm_io_file *f, uint64_t *out)
{
    struct fault_file *ff = (struct fault_file *)f;
    pthread_mutex_lock(&mu);
    int rc = crashed ? -EIO : posix()->size(ff->inner, out);
    pthread_mutex_unlock(&mu);
    return rc;
}

static int f_resize(rvm_io_file *f, uint64_t size)
{
    struct fault_file *ff = (struct fault_file *)f;
    pthread_mutex_lock(&mu);
    /* size changes are taken as durable at once (a simplification) */
    int rc = crashed ? -EIO : posix()->resize(ff->inner, size);
    pthread_mutex_unlock(&mu);
    return rc;
}

static int f_close(rvm_io_file *f)
{
    struct fault_file *ff = (struct fault_file *)f;
    pthread_mutex_lock(&mu);
    int rc = posix()->close(ff->inner); /* pending writes stay pending */
    pthread_mutex_unlock(&mu);
    free(ff);
    return rc;
}

/* The disk sees a direct write as any other; its alignment is checked,
 * since the real one refuses a misaligned write. */
static ssize_t f_pwrite_direct(rvm_io_file *f, const void *buf, size_t len, uint64_t off)
{
    if ((uintptr_t)buf % RVM_IO_DIRECT_ALIGN || len % RVM_IO_DIRECT_ALIGN ||
        off % RVM_IO_DIRECT_ALIGN)
        return -EINVAL;
    pthread_mutex_lock(&mu);
    ((struct fault_file *)f)->rec->n_direct++;
    pthread_mutex_unlock(&mu);
    return f_pwrite(f, buf, len, off);
}

static int f_fd(rvm_io_file *f)
{
    struct fault_file *ff = (struct fault_file *)f;
    return posix()->fd(ff->inner);
}

static const rvm_io_methods methods = {
    .open = f_open,
    .pread = f_pread,
    .pwrite = f_pwrite,
    .sync = f_sync,
    .size = f_size,
    .resize = f_resize,
    .close = f_close,
    .fd = f_fd,
    .pwrite_direct = f_pwrite_direct,
};

const rvm_io_methods *fault_io_methods(void)
{
    return &methods;
}

static void reset_locked(void)
{
    drop_all_pending();
    while (recs) {
        struct frec *r = recs;
        recs = r->next;
        free(r->path);
        free(r);
    }
    memset(rules, 0, sizeof rules);
    memset(&crash_rule, 0, sizeof crash_rule);
    crashed = false;
    last_kept = 0;
    last_tear = FAULT_NO_TEAR;
}

void fault_io_reset(void)
{
    pthread_mutex_lock(&mu);
    /* Files RVM still holds open keep pointers to their records: keep the
     * records, forget only what is per-scenario. */
    drop_all_pending();
    for (struct frec *r = recs; r; r = r->next)
        r->n_pwrite = r->n_sync = r->n_direct = 0;
    memset(rules, 0, sizeof rules);
    memset(&crash_rule, 0, sizeof crash_rule);
    crashed = false;
    pthread_mutex_unlock(&mu);
}

void fault_io_install(unsigned seed)
{
    pthread_mutex_lock(&mu);
    reset_locked();
    rng = 88172645463325252ull ^ ((uint64_t)seed * 0x9E3779B97F4A7C15ull);
    if (!rng)
        rng = 1;
    pthread_mutex_unlock(&mu);
    rvm_io_set(&methods);
}

void fault_io_uninstall(void)
{
    rvm_io_set(NULL);
    pthread_mutex_lock(&mu);
    reset_locked();
    pthread_mutex_unlock(&mu);
}

void fault_io_fail(enum fault_op op, const char *match, unsigned nth, int err,
                   int times)
{
    pthread_mutex_lock(&mu);
    struct rule *r = &rules[op];
    memset(r, 0, sizeof *r);
    r->armed = true;
    r->any = match == NULL;
    if (match) {
        snprintf(r->match, sizeof r->match, "%s", match);
    }
    r->countdown = nth ? nth : 1;
    r->err = err;
    r->times = times;
    pthread_mutex_unlock(&mu);
}

void fault_io_crash_at_sync(const char *match, unsigned nth,
                            enum fault_keep keep, long tear)
{
    pthread_mutex_lock(&mu);
    memset(&crash_rule, 0, sizeof crash_rule);
    crash_rule.armed = true;
    crash_rule.any = match == NULL;
    if (match)
        snprintf(crash_rule.match, sizeof crash_rule.match, "%s", match);
    crash_rule.countdown = nth ? nth : 1;
    crash_rule.keep = keep;
    crash_rule.tear = tear;
    pthread_mutex_unlock(&mu);
}

void fault_io_crash(enum fault_keep keep, long tear)
{
    pthread_mutex_lock(&mu);
    if (!crashed)
        do_crash(keep, tear);
    pthread_mutex_unlock(&mu);
}

bool fault_io_crashed(void)
{
    pthread_mutex_lock(&mu);
    bool c = crashed;
    pthread_mutex_unlock(&mu);
    return c;
}

size_t fault_io_pending(void)
{
    pthread_mutex_lock(&mu);
    size_t n = npend;
    pthread_mutex_unlock(&mu);
    return n;
}

unsigned long fault_io_count(enum fault_op op, const char *match)
{
    unsigned long n = 0;
    pthread_mutex_lock(&mu);
    for (struct frec *r = recs; r; r = r->next)
        if (!match || strstr(r->path, match))
            n += op == FAULT_PWRITE  ? r->n_pwrite
                 : op == FAULT_DIRECT ? r->n_direct
                                      : r->n_sync;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t fault_io_last_crash_kept(void)
{
    return last_kept;
}

long fault_io_last_crash_tear(void)
{
    return last_tear;
}
