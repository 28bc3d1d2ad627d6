/*
 * The invariants, checked on the segments after recovery:
 *  - whole transactions only: each thread's slices equal exactly the
 *    prefix of its entries that its counter cell names (no partial
 *    transaction, no bytes of an aborted one, nothing lost or applied
 *    twice out of order by truncation);
 *  - durability: every flush commit that returned, and every commit that
 *    returned before a successful rvm_flush/rvm_truncate/flush commit
 *    began, is present;
 *  - commit order: a surviving commit implies every commit (of any
 *    thread) that returned before it began.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define FAIL(...) do { snprintf(msg, msglen, __VA_ARGS__); rc = 1; goto out; } while (0)

/* Entries of thread u that returned before clock value s: a prefix. */
static uint64_t returned_before(const struct t_thread_model *tm, uint64_t n, uint64_t s)
{
    uint64_t need = 0;
    for (uint64_t j = 0; j < n; j++)
        if (tm->e[j].end && tm->e[j].end < s)
            need = j + 1;
    return need;
}

static void apply_entry(const struct t_thread_model *tm, const struct t_entry *e,
                        unsigned char **img)
{
    const unsigned char *d = tm->data + e->data_off;
    for (uint32_t i = 0; i < e->nranges; i++) {
        struct t_range r;
        memcpy(&r, d, sizeof r);
        memcpy(img[r.seg] + r.off, d + sizeof r, r.len);
        d += sizeof r + t_align8(r.len);
    }
}

/* Which entries wrote this byte, and whether one of them wrote `val`. */
static void describe_byte(const struct t_thread_model *tm, uint64_t n, int seg, uint32_t off,
                          unsigned char val, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = 0;
    for (uint64_t j = 0; j < n && used + 40 < outlen; j++) {
        const struct t_entry *e = &tm->e[j];
        const unsigned char *d = tm->data + e->data_off;
        for (uint32_t i = 0; i < e->nranges; i++) {
            struct t_range r;
            memcpy(&r, d, sizeof r);
            if ((int)r.seg == seg && off >= r.off && off < r.off + r.len) {
                unsigned char b = d[sizeof r + (off - r.off)];
                used += (size_t)snprintf(out + used, outlen - used, " #%llu%s%s=0x%02x%s",
                                         (unsigned long long)j + 1,
                                         e->aborted ? "(aborted)" : "",
                                         e->end ? "" : "(in doubt)", b,
                                         b == val ? "<-" : "");
                break;
            }
            d += sizeof r + t_align8(r.len);
        }
    }
}

int check_state(const struct t_shared *sh, unsigned char *const seg[T_MAX_SEGS],
                char *msg, size_t msglen)
{
    const struct t_params *p = &sh->p;
    int rc = 0;
    uint64_t k[T_MAX_THREADS] = {0}, n[T_MAX_THREADS] = {0}, req[T_MAX_THREADS] = {0};
    char why[T_MAX_THREADS][160];
    unsigned char *img[T_MAX_SEGS] = {0};

    for (int s = 0; s < p->nsegs; s++) {
        img[s] = malloc(p->slice);
        if (!img[s])
            FAIL("out of memory");
        for (uint32_t i = (uint32_t)p->nthreads * p->slice; i < p->seg_size; i++)
            if (seg[s][i])
                FAIL("segment %d offset %u outside every slice is 0x%02x", s, i, seg[s][i]);
    }
    for (int t = 0; t < p->nthreads; t++) {
        const struct t_thread_model *tm = &sh->t[t];
        n[t] = __atomic_load_n(&tm->n, __ATOMIC_ACQUIRE);
        memcpy(&k[t], seg[0] + (size_t)t * p->slice, 8);
        if (k[t] > n[t])
            FAIL("thread %d: counter cell says transaction %llu survived, but only %llu began "
                 "to commit", t, (unsigned long long)k[t], (unsigned long long)n[t]);
        if (k[t] && tm->e[k[t] - 1].aborted)
            FAIL("thread %d: transaction #%llu, aborted after its commit failed, survived "
                 "the crash", t, (unsigned long long)k[t]);
        for (int s = 0; s < p->nsegs; s++)
            memset(img[s], 0, p->slice);
        for (uint64_t j = 0; j < k[t]; j++)
            if (!tm->e[j].aborted)
                apply_entry(tm, &tm->e[j], img);
        for (int s = 0; s < p->nsegs; s++) {
            const unsigned char *got = seg[s] + (size_t)t * p->slice;
            if (memcmp(got, img[s], p->slice) == 0)
                continue;
            uint32_t i = 0;
            while (got[i] == img[s][i])
                i++;
            char who[600];
            describe_byte(tm, n[t], s, i, got[i], who, sizeof who);
            FAIL("thread %d: %llu of %llu transactions survived (counter cell), but segment %d "
                 "slice offset %u is 0x%02x where that prefix gives 0x%02x; transactions "
                 "that wrote the byte (<- wrote the value found):%s", t,
                 (unsigned long long)k[t], (unsigned long long)n[t], s, i, got[i], img[s][i],
                 who[0] ? who : " none");
        }
    }

    /* What must have survived. */
    for (int t = 0; t < p->nthreads; t++)
        snprintf(why[t], sizeof why[t], "nothing");
#define REQUIRE(u, v, ...) do { \
        uint64_t v_ = (v); \
        if (v_ > req[u]) { req[u] = v_; snprintf(why[u], sizeof why[u], __VA_ARGS__); } \
    } while (0)
    for (int t = 0; t < p->nthreads; t++) {
        const struct t_thread_model *tm = &sh->t[t];
        for (uint64_t j = 0; j < n[t]; j++) {
            const struct t_entry *e = &tm->e[j];
            if (!e->flush || !e->end || e->aborted)
                continue;
            REQUIRE(t, j + 1, "its flush commit #%llu returned", (unsigned long long)j + 1);
            for (int u = 0; u < p->nthreads; u++)
                REQUIRE(u, returned_before(&sh->t[u], n[u], e->start),
                        "thread %d's flush commit #%llu returned", t, (unsigned long long)j + 1);
        }
        uint64_t nb = __atomic_load_n(&tm->nb, __ATOMIC_ACQUIRE);
        for (uint64_t b = 0; b < nb; b++)
            for (int u = 0; u < p->nthreads; u++)
                REQUIRE(u, returned_before(&sh->t[u], n[u], tm->b[b].start),
                        "thread %d's %s returned", t,
                        tm->b[b].kind == T_BAR_FLUSH ? "rvm_flush" : "rvm_truncate");
        if (k[t])
            for (int u = 0; u < p->nthreads; u++)
                REQUIRE(u, returned_before(&sh->t[u], n[u], tm->e[k[t] - 1].start),
                        "thread %d's transaction #%llu survived (commit order)", t,
                        (unsigned long long)k[t]);
    }
    for (int t = 0; t < p->nthreads; t++)
        if (k[t] < req[t])
            FAIL("thread %d: only %llu transactions survived, but %llu must have: %s", t,
                 (unsigned long long)k[t], (unsigned long long)req[t], why[t]);
out:
    for (int s = 0; s < T_MAX_SEGS; s++)
        free(img[s]);
    return rc;
}
