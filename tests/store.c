#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PS ((size_t)rvm_page_size())

static uint32_t seed_of(uint64_t k, uint64_t life)
{
    return (uint32_t)(k * 7919u + life * 104729u + 1u);
}

static unsigned char pat(size_t i, uint32_t seed)
{
    uint32_t x = (uint32_t)i * 2246822519u + seed * 3266489917u;
    x ^= x >> 15;
    x *= 668265263u;
    x ^= x >> 13;
    return (unsigned char)x;
}

static void fill(unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pat(i, seed);
}

static bool check_fill(const unsigned char *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != pat(i, seed))
            return false;
    return true;
}

static bool all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

void store_paths(struct store *s, const char *dir)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    snprintf(s->log, sizeof s->log, "%s/rvm.log", dir);
    snprintf(s->sega, sizeof s->sega, "%s/seg-A.dat", dir);
    snprintf(s->segb, sizeof s->segb, "%s/seg-B.dat", dir);
}

static rvm_return_t map_one(rvm_region_t **out, const char *path, size_t off,
                            size_t len, rvm_length_t flags)
{
    rvm_region_t *r = rvm_malloc_region();
    if (!r)
        return RVM_ENO_MEMORY;
    r->data_dev = strdup(path);
    r->offset = RVM_MK_OFFSET(0, off);
    r->length = len;
    rvm_options_t o;
    rvm_init_options(&o);
    o.flags = flags;
    rvm_return_t rc = rvm_map(r, flags ? &o : NULL);
    if (rc != RVM_SUCCESS) {
        rvm_free_region(r);
        return rc;
    }
    *out = r;
    return RVM_SUCCESS;
}

rvm_return_t store_open(struct store *s, size_t log_len, long truncate,
                        rvm_length_t flags, const char **why)
{
    static const char *dummy;
    if (!why)
        why = &dummy;
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = s->log;
    o.truncate = truncate;
    o.flags = flags & RVM_ALL_OPTIMIZATIONS;
    if (access(s->log, F_OK) != 0) {
        rvm_offset_t len = RVM_MK_OFFSET(0, log_len);
        rvm_return_t rc = rvm_create_log(&o, &len, 0600);
        if (rc != RVM_SUCCESS) {
            *why = "rvm_create_log";
            return rc;
        }
    }
    rvm_return_t rc = RVM_INIT(&o);
    if (rc != RVM_SUCCESS) {
        *why = "rvm_initialize";
        return rc;
    }
    *why = "rvm_map";
    flags &= RVM_MAP_PRIVATE;
    size_t L = STORE_LANES * PS;
    if ((rc = map_one(&s->a0, s->sega, 0, L, flags)) != RVM_SUCCESS)
        return rc;
    if ((rc = map_one(&s->a1, s->sega, L + 2 * PS, L, flags)) != RVM_SUCCESS)
        return rc;
    if ((rc = map_one(&s->b, s->segb, PS, L, flags)) != RVM_SUCCESS)
        return rc;
    *why = "";
    return RVM_SUCCESS;
}

rvm_return_t store_close(struct store *s)
{
    rvm_region_t *rs[3] = {s->a0, s->a1, s->b};
    rvm_return_t first = RVM_SUCCESS;
    for (int i = 0; i < 3; i++) {
        if (!rs[i])
            continue;
        rvm_return_t rc = rvm_unmap(rs[i]);
        if (rc != RVM_SUCCESS && first == RVM_SUCCESS)
            first = rc;
        rvm_free_region(rs[i]);
    }
    s->a0 = s->a1 = s->b = NULL;
    rvm_return_t rc = rvm_terminate();
    return first != RVM_SUCCESS ? first : rc;
}

void store_forget(struct store *s)
{
    rvm_free_region(s->a0);
    rvm_free_region(s->a1);
    rvm_free_region(s->b);
    s->a0 = s->a1 = s->b = NULL;
}

static rvm_return_t put(rvm_tid_t *tid, char *dest, const void *src, size_t n,
                        bool use_modify)
{
    if (use_modify)
        return rvm_modify_bytes(tid, dest, src, n);
    rvm_return_t rc = rvm_set_range(tid, dest, n);
    if (rc == RVM_SUCCESS)
        memcpy(dest, src, n);
    return rc;
}

static rvm_return_t write_all(struct store *s, int lane, rvm_tid_t *tid,
                              uint64_t k, uint64_t life)
{
    char *a0 = s->a0->vmaddr + lane * PS, *a1 = s->a1->vmaddr + lane * PS;
    char *b = s->b->vmaddr + lane * PS;
    uint32_t seed = seed_of(k, life);
    unsigned char buf[256];
    rvm_return_t rc;
#define PUT(d, src, n, m) if ((rc = put(tid, (d), (src), (n), (m))) != RVM_SUCCESS) return rc
    PUT(a0, &k, 8, true);
    PUT(a0 + 8, &life, 8, false);
    PUT(a0 + 64 + (k % 32) * 8, &k, 8, true);
    fill(buf, 256, seed);
    PUT(a0 + 1024, buf, 256, false);
    PUT(a1, &k, 8, false);
    fill(buf, 256, seed + 1);
    PUT(a1 + 512, buf, 256, true);
    fill(buf, 200, seed + 3);
    PUT(a1 + PS - 200, buf, 200, true);
    PUT(b, &k, 8, true);
    PUT(b + 8, &life, 8, true);
    fill(buf, 256, seed + 2);
    PUT(b + 2048, buf, 256, false);
#undef PUT
    return RVM_SUCCESS;
}

static rvm_return_t txn_open_lane(struct store *s, int lane, rvm_tid_t *tid,
                                  uint64_t k, uint64_t life, rvm_mode_t begin_mode)
{
    rvm_return_t rc = rvm_begin_transaction(tid, begin_mode);
    if (rc != RVM_SUCCESS)
        return rc;
    return write_all(s, lane, tid, k, life);
}

rvm_return_t store_txn_open(struct store *s, rvm_tid_t *tid, uint64_t k,
                            uint64_t life, rvm_mode_t begin_mode)
{
    return txn_open_lane(s, 0, tid, k, life, begin_mode);
}

rvm_return_t store_txn(struct store *s, uint64_t k, uint64_t life,
                       rvm_mode_t begin_mode, rvm_mode_t end_mode,
                       bool abort_first)
{
    return store_txn_lane(s, 0, k, life, begin_mode, end_mode, abort_first);
}

rvm_return_t store_txn_lane(struct store *s, int lane, uint64_t k, uint64_t life,
                            rvm_mode_t begin_mode, rvm_mode_t end_mode,
                            bool abort_first)
{
    rvm_tid_t tid;
    rvm_init_tid(&tid);
    rvm_return_t rc;
    if (abort_first) {
        rc = txn_open_lane(s, lane, &tid, k + 1000000007u, life + 77, restore);
        if (rc != RVM_SUCCESS)
            return rc;
        if ((rc = rvm_abort_transaction(&tid)) != RVM_SUCCESS)
            return rc;
    }
    rc = txn_open_lane(s, lane, &tid, k, life, begin_mode);
    if (rc == RVM_SUCCESS)
        rc = rvm_end_transaction(&tid, end_mode);
    if (rc != RVM_SUCCESS && rvm_tid_active(&tid) &&
        rvm_abort_transaction(&tid) != RVM_SUCCESS)
        rvm_end_transaction(&tid, no_flush);
    return rc;
}

int store_check(const struct store *s, uint64_t *kp, uint64_t *lifep,
                char *err, size_t errlen)
{
    return store_check_lane(s, 0, kp, lifep, err, errlen);
}

int store_check_lane(const struct store *s, int lane, uint64_t *kp,
                     uint64_t *lifep, char *err, size_t errlen)
{
    const char *a0 = s->a0->vmaddr + lane * PS, *a1 = s->a1->vmaddr + lane * PS;
    const char *b = s->b->vmaddr + lane * PS;
    uint64_t k, life, k1, kb, lifeb;
    memcpy(&k, a0, 8);
    memcpy(&life, a0 + 8, 8);
    memcpy(&k1, a1, 8);
    memcpy(&kb, b, 8);
    memcpy(&lifeb, b + 8, 8);
    *kp = k;
    *lifep = life;
    if (k1 != k || kb != k || lifeb != life) {
        snprintf(err, errlen, "lane %d partial: A0 k=%llu life=%llu, A1 k=%llu, B k=%llu life=%llu",
                 lane, (unsigned long long)k, (unsigned long long)life,
                 (unsigned long long)k1, (unsigned long long)kb,
                 (unsigned long long)lifeb);
        return -1;
    }
    if (k == 0) {
        if (life != 0 || !all_zero((const unsigned char *)a0, PS) ||
            !all_zero((const unsigned char *)a1, PS) ||
            !all_zero((const unsigned char *)b, PS)) {
            snprintf(err, errlen, "k=0 but the regions are not all zero");
            return -1;
        }
        return 0;
    }
    uint32_t seed = seed_of(k, life);
    const char *bad = NULL;
    if (!check_fill((const unsigned char *)a0 + 1024, 256, seed))
        bad = "A0 pattern";
    else if (!check_fill((const unsigned char *)a1 + 512, 256, seed + 1))
        bad = "A1 pattern";
    else if (!check_fill((const unsigned char *)a1 + PS - 200, 200, seed + 3))
        bad = "A1 tail pattern";
    else if (!check_fill((const unsigned char *)b + 2048, 256, seed + 2))
        bad = "B pattern";
    if (bad) {
        snprintf(err, errlen, "partial: %s does not match k=%llu life=%llu", bad,
                 (unsigned long long)k, (unsigned long long)life);
        return -1;
    }
    /* the 32 newest values each left a slot: earlier commits are there too */
    for (uint64_t j = k >= 32 ? k - 31 : 1; j <= k; j++) {
        uint64_t v;
        memcpy(&v, a0 + 64 + (j % 32) * 8, 8);
        if (v != j) {
            snprintf(err, errlen, "slot of k=%llu holds %llu (state k=%llu)",
                     (unsigned long long)j, (unsigned long long)v,
                     (unsigned long long)k);
            return -1;
        }
    }
    return 0;
}
