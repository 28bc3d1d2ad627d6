/*
 * The torture workload: random transactions against librvm over the
 * power-failure I/O layer, recorded in the shared model, until the power
 * fails (the process then ends inside the I/O layer) or the work is done
 * (the power then fails at the end).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log_format.h"
#include "model.h"
#include "powerfail_io.h"
#include "rng.h"
#include "rvm/rvm.h"

struct worker {
    struct t_shared *sh;
    int id;
    struct rng rng;
    unsigned char *image[T_MAX_SEGS];   /* the model's view of its slices */
};

static char *base[T_MAX_SEGS];

static uint64_t clock_tick(struct t_shared *sh)
{
    return __atomic_add_fetch(&sh->clock, 1, __ATOMIC_SEQ_CST);
}

/* A violation seen inside the workload: say it and end the process. */
static void __attribute__((noreturn, format(printf, 2, 3)))
inproc_violation(struct t_shared *sh, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sh->msg, sizeof sh->msg, fmt, ap);
    va_end(ap);
    __atomic_store_n(&sh->violation, 1, __ATOMIC_SEQ_CST);
    _exit(3);
}

static char *slice_addr(struct worker *w, int seg, uint32_t off)
{
    return base[seg] + (size_t)w->id * w->sh->p.slice + off;
}

/* Memory must show exactly the model after every call. */
static void check_memory(struct worker *w, const char *after)
{
    const struct t_params *p = &w->sh->p;
    for (int s = 0; s < p->nsegs; s++) {
        const char *m = slice_addr(w, s, 0);
        if (memcmp(m, w->image[s], p->slice) != 0) {
            uint32_t i = 0;
            while (m[i] == (char)w->image[s][i])
                i++;
            inproc_violation(w->sh, "thread %d: memory differs from the model after %s: "
                             "segment %d slice offset %u: 0x%02x, expected 0x%02x",
                             w->id, after, s, i, (unsigned char)m[i], w->image[s][i]);
        }
    }
}

static uint32_t pick_len(struct worker *w, uint32_t room)
{
    uint64_t r = rng_below(&w->rng, 100);
    uint32_t len;
    if (r < 55)
        len = (uint32_t)rng_range(&w->rng, 1, 64);
    else if (r < 90)
        len = (uint32_t)rng_range(&w->rng, 65, 2048);
    else
        len = (uint32_t)rng_range(&w->rng, 2049, 16384);
    uint32_t cap = w->sh->p.log_size / 8;
    if (len > cap)
        len = cap;
    return len > room ? room : len;
}

struct pick {
    int seg;
    uint32_t off, len;
};

static void fill_random(struct worker *w, unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint64_t v = rng_next(&w->rng);
        size_t n = len - i < 8 ? len - i : 8;
        memcpy(p + i, &v, n);
        i += n;
    }
}

static void op_barrier(struct worker *w, int kind);

static void op_transaction(struct worker *w)
{
    struct t_shared *sh = w->sh;
    const struct t_params *p = &sh->p;
    struct t_thread_model *tm = &sh->t[w->id];
    uint64_t n = __atomic_load_n(&tm->n, __ATOMIC_ACQUIRE);
    if (n >= T_MAX_ENTRIES - 1)
        return;
    bool restore_mode = rng_below(&w->rng, 2);
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc = rvm_begin_transaction(&tid, restore_mode ? restore : no_restore);
    if (rc != RVM_SUCCESS)
        inproc_violation(sh, "thread %d: begin: %s", w->id, rvm_return(rc));

    struct pick picks[9];
    int np = (int)rng_range(&w->rng, 1, 6);
    unsigned char tmp[16384];
    for (int i = 0; i < np; i++) {
        struct pick *k = &picks[i];
        k->seg = (int)rng_below(&w->rng, (uint64_t)p->nsegs);
        uint32_t lo = k->seg == 0 ? 8 : 0;
        k->len = pick_len(w, p->slice - lo);
        k->off = lo + (uint32_t)rng_below(&w->rng, p->slice - lo - k->len + 1);
        char *a = slice_addr(w, k->seg, k->off);
        if (rng_below(&w->rng, 2)) {
            fill_random(w, tmp, k->len);
            rc = rvm_modify_bytes(&tid, a, tmp, k->len);
        } else {
            rc = rvm_set_range(&tid, a, k->len);
            if (rc == RVM_SUCCESS)
                fill_random(w, (unsigned char *)a, k->len);
        }
        if (rc != RVM_SUCCESS)
            inproc_violation(sh, "thread %d: set_range: %s", w->id, rvm_return(rc));
        if (getenv("TORTURE_TRACE"))
            fprintf(stderr, "t%d txn %llu %s range seg %d off %u len %u\n", w->id,
                    (unsigned long long)n + 1, restore_mode ? "restore" : "no_restore",
                    k->seg, k->off, k->len);
    }
    /* The counter cell: this transaction's entry number. */
    uint64_t num = n + 1;
    picks[np] = (struct pick){.seg = 0, .off = 0, .len = 8};
    rc = rvm_modify_bytes(&tid, slice_addr(w, 0, 0), &num, 8);
    if (rc != RVM_SUCCESS)
        inproc_violation(sh, "thread %d: modify_bytes: %s", w->id, rvm_return(rc));
    np++;

    if (restore_mode && rng_below(&w->rng, 100) < 15) {
        rc = rvm_abort_transaction(&tid);
        if (rc != RVM_SUCCESS)
            inproc_violation(sh, "thread %d: abort: %s", w->id, rvm_return(rc));
        __atomic_add_fetch(&sh->stats_aborts, 1, __ATOMIC_RELAXED);
        check_memory(w, "abort");
        return;
    }

    /* Record the entry: the final bytes of every range. */
    uint64_t need = 0;
    for (int i = 0; i < np; i++)
        need += sizeof(struct t_range) + t_align8(picks[i].len);
    if (tm->data_used + need > T_DATA_PER_THREAD) {
        /* Out of model space: leave the transaction uncommitted. */
        if (restore_mode) {
            rvm_abort_transaction(&tid);
            check_memory(w, "abort");
        } else {
            rvm_end_transaction(&tid, no_flush);
            inproc_violation(sh, "model full"); /* cannot happen with the caps */
        }
        return;
    }
    struct t_entry *e = &tm->e[n];
    memset(e, 0, sizeof *e);
    e->data_off = tm->data_used;
    e->nranges = (uint32_t)np;
    unsigned char *d = tm->data + tm->data_used;
    for (int i = 0; i < np; i++) {
        struct t_range r = {.seg = (uint32_t)picks[i].seg, .off = picks[i].off,
                            .len = picks[i].len};
        memcpy(d, &r, sizeof r);
        memcpy(d + sizeof r, slice_addr(w, r.seg, r.off), r.len);
        d += sizeof r + t_align8(r.len);
    }
    tm->data_used += need;
    bool fl = rng_below(&w->rng, 100) < 40;
    e->flush = fl;
    e->start = clock_tick(sh);
    __atomic_store_n(&tm->n, n + 1, __ATOMIC_RELEASE);

    rc = rvm_end_transaction(&tid, fl ? flush : no_flush);
    if (getenv("TORTURE_TRACE"))
        fprintf(stderr, "t%d txn %llu end %s: %s\n", w->id, (unsigned long long)n + 1,
                fl ? "flush" : "no_flush", rvm_return(rc));
    for (int tries = 0; rc != RVM_SUCCESS && !restore_mode && tries < 3; tries++)
        rc = rvm_end_transaction(&tid, fl ? flush : no_flush);
    if (rc == RVM_SUCCESS) {
        __atomic_store_n(&e->end, clock_tick(sh), __ATOMIC_RELEASE);
        __atomic_add_fetch(&sh->stats_commits, 1, __ATOMIC_RELAXED);
        for (int i = 0; i < np; i++)
            memcpy(w->image[picks[i].seg] + picks[i].off,
                   slice_addr(w, picks[i].seg, picks[i].off), picks[i].len);
        check_memory(w, "commit");
        return;
    }
    if (rc != RVM_EIO && rc != RVM_ENO_MEMORY)
        inproc_violation(sh, "thread %d: end_transaction: %s (%s)", w->id,
                         rvm_return(rc), rvm_errmsg());
    if (!restore_mode) {
        /* Cannot be aborted: it stays in doubt; this thread stops. */
        pthread_exit(NULL);
    }
    rc = rvm_abort_transaction(&tid);
    if (rc == RVM_EIO) {
        /* librvm could not make the failed record unreachable, so it
         * refuses the abort: the transaction stays in doubt, this thread
         * stops. */
        pthread_exit(NULL);
    }
    if (rc != RVM_SUCCESS)
        inproc_violation(sh, "thread %d: abort after a failed commit: %s", w->id,
                         rvm_return(rc));
    __atomic_store_n(&e->aborted, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&sh->stats_aborts, 1, __ATOMIC_RELAXED);
    check_memory(w, "abort after a failed commit");
    /* What an application may do next: flush what did commit. */
    if (rng_below(&w->rng, 2))
        op_barrier(w, T_BAR_FLUSH);
}

static void op_barrier(struct worker *w, int kind)
{
    struct t_shared *sh = w->sh;
    struct t_thread_model *tm = &sh->t[w->id];
    uint64_t nb = tm->nb;
    if (nb >= T_MAX_BARRIERS)
        return;
    uint64_t start = clock_tick(sh);
    rvm_return_t rc = kind == T_BAR_FLUSH ? rvm_flush() : rvm_truncate();
    if (getenv("TORTURE_TRACE"))
        fprintf(stderr, "t%d %s: %s\n", w->id, kind == T_BAR_FLUSH ? "rvm_flush" : "rvm_truncate",
                rvm_return(rc));
    if (rc == RVM_SUCCESS) {
        struct t_barrier *b = &tm->b[nb];
        b->start = start;
        b->kind = (uint32_t)kind;
        b->end = clock_tick(sh);
        __atomic_store_n(&tm->nb, nb + 1, __ATOMIC_RELEASE);
        __atomic_add_fetch(kind == T_BAR_FLUSH ? &sh->stats_flushes : &sh->stats_truncations,
                           1, __ATOMIC_RELAXED);
    } else if (rc != RVM_EIO) {
        inproc_violation(sh, "thread %d: %s: %s (%s)", w->id,
                         kind == T_BAR_FLUSH ? "rvm_flush" : "rvm_truncate",
                         rvm_return(rc), rvm_errmsg());
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int op = 0; op < w->sh->p.ops; op++) {
        uint64_t r = rng_below(&w->rng, 100);
        if (r < 84)
            op_transaction(w);
        else if (r < 94)
            op_barrier(w, T_BAR_FLUSH);
        else
            op_barrier(w, T_BAR_TRUNCATE);
    }
    return NULL;
}

void workload_run(struct t_shared *sh, const char *dir)
{
    const struct t_params *p = &sh->p;
    char log[4200], seg[T_MAX_SEGS][4200];
    snprintf(log, sizeof log, "%s/log", dir);

    rvm_options_t *o = rvm_malloc_options();
    o->log_dev = strdup(log);
    rvm_offset_t len = RVM_MK_OFFSET(0, p->log_size);
    rvm_return_t rc = rvm_create_log(o, &len, 0600);
    if (rc != RVM_SUCCESS)
        inproc_violation(sh, "rvm_create_log: %s", rvm_return(rc));

    struct pf_config cfg = {
        .seed = p->seed, .crash_at = p->crash_kind == T_CRASH_END ? 0 : p->crash_at,
        .crash_class = p->crash_kind == T_CRASH_APPLY ? PF_CLASS_APPLY : PF_CLASS_ANY,
        .keep = (enum pf_keep)p->keep, .tear_pct = p->tear_pct,
        .fail_at = p->fail_at, .fail_err = p->fail_err, .fail_times = p->fail_times,
        .fail_syncs_only = p->fail_syncs_only, .failed_out = &sh->stats_failed_io,
        .log_path = o->log_dev, .status_area = 2ull * LOG_STATUS_SIZE_DEFAULT,
    };
    pf_install(&cfg);

    o->truncate = p->truncate_pct;
    o->flags = p->flags | (p->map_private ? RVM_MAP_PRIVATE : 0);
    o->flush_buf_len = p->flush_buf_len;
    rc = RVM_INIT(o);
    if (rc != RVM_SUCCESS) {
        if (pf_failed())
            pf_crash_now(); /* an injected error at initialization */
        inproc_violation(sh, "rvm_initialize: %s (%s)", rvm_return(rc), rvm_errmsg());
    }
    for (int s = 0; s < p->nsegs; s++) {
        snprintf(seg[s], sizeof seg[s], "%s/seg%d", dir, s);
        rvm_region_t *r = rvm_malloc_region();
        r->data_dev = seg[s];
        r->length = p->seg_size;
        rc = rvm_map(r, NULL);
        if (rc != RVM_SUCCESS) {
            if (pf_failed())
                pf_crash_now();
            inproc_violation(sh, "rvm_map %s: %s (%s)", seg[s], rvm_return(rc), rvm_errmsg());
        }
        base[s] = r->vmaddr;
        r->data_dev = NULL;
        rvm_free_region(r);
    }

    struct worker w[T_MAX_THREADS];
    pthread_t th[T_MAX_THREADS];
    struct rng master;
    rng_seed(&master, p->seed);
    for (int i = 0; i < p->nthreads; i++) {
        w[i].sh = sh;
        w[i].id = i;
        rng_seed(&w[i].rng, rng_next(&master));
        for (int s = 0; s < p->nsegs; s++) {
            w[i].image[s] = calloc(1, p->slice);
            if (!w[i].image[s])
                inproc_violation(sh, "out of memory");
        }
    }
    /* Even one worker runs on its own thread: a worker that must stop
     * with a transaction in doubt ends its thread. */
    for (int i = 0; i < p->nthreads; i++)
        if (pthread_create(&th[i], NULL, worker_main, &w[i]) != 0)
            inproc_violation(sh, "pthread_create failed");
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(th[i], NULL);
    if (p->clean_end) {
        uint64_t start = clock_tick(sh);
        rc = rvm_terminate();
        if (rc == RVM_SUCCESS && sh->t[0].nb < T_MAX_BARRIERS) {
            /* A clean terminate flushed everything: a barrier too. */
            struct t_barrier *b = &sh->t[0].b[sh->t[0].nb];
            b->start = start;
            b->kind = T_BAR_FLUSH;
            b->end = clock_tick(sh);
            __atomic_store_n(&sh->t[0].nb, sh->t[0].nb + 1, __ATOMIC_RELEASE);
        } else if (rc != RVM_SUCCESS && rc != RVM_EIO && rc != RVM_EUNCOMMIT) {
            inproc_violation(sh, "rvm_terminate: %s (%s)", rvm_return(rc), rvm_errmsg());
        }
    }
    pf_crash_now();
}
