/*
 * Life cycle and process-wide calls: initialize (with recovery),
 * terminate, options, query, flush, truncate, create_log, statistics.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "rvm_internal.h"

struct rvm_global rvm = {
    .init_mu = PTHREAD_MUTEX_INITIALIZER,
    .seg_mu = PTHREAD_MUTEX_INITIALIZER,
    .regions_lock = PTHREAD_RWLOCK_INITIALIZER,
    .txn_mu = PTHREAD_MUTEX_INITIALIZER,
};

static __thread char errmsg[512];

void rvm_set_errmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, sizeof errmsg, fmt, ap);
    va_end(ap);
}

const char *rvm_errmsg(void)
{
    return errmsg;
}

static rvm_return_t options_check(const rvm_options_t *o)
{
    if (o->struct_id != rvm_options_id)
        return RVM_EOPTIONS;
    if (o->pager)
        return RVM_EPAGER;
    if (o->truncate < 0 || o->truncate > 100)
        return RVM_EOPTIONS;
    if (o->log_dev && strlen(o->log_dev) >= PATH_MAX)
        return RVM_ENAME_TOO_LONG;
    if (o->flags & ~(rvm_length_t)(RVM_ALL_OPTIMIZATIONS | RVM_MAP_PRIVATE))
        return RVM_EOPTIONS;
    return RVM_SUCCESS;
}

static void options_apply(const rvm_options_t *o)
{
    OPT_SET(truncate_pct, o->truncate);
    OPT_SET(flags, o->flags);
    if (o->flush_buf_len)
        OPT_SET(flush_buf_len, o->flush_buf_len < MIN_FLUSH_BUF_LEN ? MIN_FLUSH_BUF_LEN
                                                                     : o->flush_buf_len);
    if (o->recovery_buf_len)
        OPT_SET(recovery_buf_len, o->recovery_buf_len < MIN_RECOVERY_BUF_LEN
                                      ? MIN_RECOVERY_BUF_LEN : o->recovery_buf_len);
}

rvm_return_t rvm_initialize(const char *version, rvm_options_t *opts)
{
    if (!version || strcmp(version, RVM_VERSION) != 0)
        return RVM_EVERSION_SKEW;
    rvm_options_t defaults;
    rvm_init_options(&defaults);
    if (!opts)
        opts = &defaults;
    rvm_return_t ret = options_check(opts);
    if (ret)
        return ret;
    pthread_mutex_lock(&rvm.init_mu);
    if (rvm.state == 1) {
        pthread_mutex_unlock(&rvm.init_mu);
        return RVM_SUCCESS;
    }
    /* A segment with records in flight keeps a descriptor open: allow as
     * many as the hard limit does. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    stats_reset();
    rvm.flush_buf_len = FLUSH_BUF_LEN;
    rvm.recovery_buf_len = RECOVERY_BUF_LEN;
    options_apply(opts);
    rvm.log = NULL;
    rvm.log_dev = NULL;
    errmsg[0] = 0;
    if (opts->log_dev) {
        rvm.log_dev = strdup(opts->log_dev);
        int rc = rvm.log_dev ? log_open(opts->log_dev, &rvm.log) : -ENOMEM;
        if (rc == -ENOENT && opts->create_log_file) {
            rvm_offset_t size = opts->create_log_size;
            ret = rvm_create_log(opts, &size, opts->create_log_mode);
            rc = ret ? -EIO : log_open(opts->log_dev, &rvm.log);
        }
        if (rc < 0) {
            if (!ret)
                ret = rc == -ENOMEM ? RVM_ENO_MEMORY
                    : rc == -EPROTO ? RVM_ELOG_VERSION_SKEW
                    : rc == -EINVAL || rc == -ENOENT || rc == -EISDIR || rc == -EACCES ||
                      rc == -ENOTDIR || rc == -ELOOP || rc == -EPERM ? RVM_ELOG : RVM_EIO;
            seg_free_all();
            free(rvm.log_dev);
            rvm.log_dev = NULL;
            rvm.log = NULL;
            pthread_mutex_unlock(&rvm.init_mu);
            return ret;
        }
        if (rvm.log)
            log_stats(rvm.log, &rvm.stats);
    }
    __atomic_store_n(&rvm.state, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&rvm.init_mu);
    return RVM_SUCCESS;
}

rvm_return_t rvm_terminate(void)
{
    pthread_mutex_lock(&rvm.init_mu);
    rvm_return_t ret = rvm_check_init();
    if (ret) {
        pthread_mutex_unlock(&rvm.init_mu);
        return ret;
    }
    pthread_mutex_lock(&rvm.txn_mu);
    bool open = rvm.n_active > 0;
    pthread_mutex_unlock(&rvm.txn_mu);
    if (open) {
        pthread_mutex_unlock(&rvm.init_mu);
        return RVM_EUNCOMMIT;
    }
    rvm_return_t out = RVM_SUCCESS;
    if (rvm.log) {
        int rc = log_flush(rvm.log);
        /* A failed sync of what recovery wrote never heals in this run:
         * terminate anyway, so that a new rvm_initialize recovers again. */
        if (rc < 0 && !log_recovery_failed(rvm.log)) {
            pthread_mutex_unlock(&rvm.init_mu);
            return RVM_EIO;
        }
        if (rc < 0)
            out = RVM_EIO;
    }
    __atomic_store_n(&rvm.state, 2, __ATOMIC_RELEASE);
    if (rvm.log)
        log_close(rvm.log);
    rvm.log = NULL;
    region_free_all();
    seg_free_all();
    img_cache_free(); /* after log_close: its writer is gone */
    free(rvm.log_dev);
    rvm.log_dev = NULL;
    pthread_mutex_unlock(&rvm.init_mu);
    return out;
}

rvm_return_t rvm_set_options(rvm_options_t *opts)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!opts)
        return RVM_EOPTIONS;
    if ((ret = options_check(opts)))
        return ret;
    if (opts->log_dev && (!rvm.log_dev || strcmp(opts->log_dev, rvm.log_dev)))
        return RVM_EOPTIONS;
    options_apply(opts);
    return RVM_SUCCESS;
}

rvm_return_t txn_query(rvm_options_t *opts, struct region *only);

rvm_return_t rvm_query(rvm_options_t *opts, rvm_region_t *region)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!opts || opts->struct_id != rvm_options_id)
        return RVM_EOPTIONS;
    struct region *only = NULL;
    if (region) {
        if (region->struct_id != rvm_region_id)
            return RVM_EREGION;
        pthread_rwlock_rdlock(&rvm.regions_lock);
        only = region->vmaddr ? region_find(region->vmaddr, 1) : NULL;
        if (only && only->vmaddr != region->vmaddr)
            only = NULL;
        pthread_rwlock_unlock(&rvm.regions_lock);
        if (!only)
            return RVM_EREGION;
    }
    opts->truncate = OPT(truncate_pct);
    opts->flags = OPT(flags);
    opts->flush_buf_len = OPT(flush_buf_len);
    opts->recovery_buf_len = OPT(recovery_buf_len);
    if (opts->from_heap) {
        free(opts->log_dev);
        opts->log_dev = rvm.log_dev ? strdup(rvm.log_dev) : NULL;
    } else {
        opts->log_dev = rvm.log_dev; /* the caller does not free a stack record's name */
    }
    rvm_stats_t st = {0};
    if (rvm.log)
        log_stats(rvm.log, &st);
    opts->log_empty = st.log_records == 0 && st.no_flush_pending == 0 ? rvm_true : rvm_false;
    return txn_query(opts, only);
}

rvm_return_t rvm_create_log(rvm_options_t *opts, rvm_offset_t *log_len, long mode)
{
    if (!opts || opts->struct_id != rvm_options_id || !opts->log_dev || !log_len)
        return RVM_EOPTIONS;
    if (strlen(opts->log_dev) >= PATH_MAX)
        return RVM_ENAME_TOO_LONG;
    if (log_len->high)
        return RVM_ERANGE;
    int rc = log_create(opts->log_dev, log_len->low, mode);
    switch (rc) {
    case 0: return RVM_SUCCESS;
    case -ERANGE: return RVM_ERANGE;
    case -EEXIST:
        rvm_set_errmsg("log %s exists already", opts->log_dev);
        return RVM_ELOG;
    case -ENOENT: case -EACCES: case -EPERM: case -ENOTDIR: case -EISDIR:
        rvm_set_errmsg("cannot create log %s: %s", opts->log_dev, strerror(-rc));
        return RVM_ELOG;
    default:
        rvm_set_errmsg("cannot write log %s: %s", opts->log_dev, strerror(-rc));
        return RVM_EIO;
    }
}

rvm_return_t rvm_flush(void)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!rvm.log)
        return RVM_SUCCESS;
    int rc = log_flush(rvm.log);
    if (rc < 0) {
        rvm_set_errmsg("flush failed: %s", strerror(-rc));
        return RVM_EIO;
    }
    return RVM_SUCCESS;
}

rvm_return_t rvm_truncate(void)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!rvm.log)
        return RVM_SUCCESS;
    int rc = log_flush(rvm.log);
    if (rc == 0)
        rc = log_truncate(rvm.log, false);
    if (rc < 0) {
        rvm_set_errmsg("truncation failed: %s", strerror(-rc));
        return RVM_EIO;
    }
    return RVM_SUCCESS;
}

rvm_return_t rvm_commit_mark(uint64_t *mark)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!mark)
        return RVM_ERANGE;
    *mark = rvm.log ? log_commit_mark(rvm.log) : 0;
    return RVM_SUCCESS;
}

rvm_bool_t rvm_mark_applied(uint64_t mark)
{
    if (rvm_check_init() != RVM_SUCCESS || !rvm.log)
        return rvm_false;
    return log_mark_applied(rvm.log, mark) ? rvm_true : rvm_false;
}

rvm_return_t rvm_get_stats(rvm_stats_t *st)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!st)
        return RVM_ESTATISTICS;
    stats_sum(st);
    if (rvm.log)
        log_stats(rvm.log, st);
    return RVM_SUCCESS;
}
