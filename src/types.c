/*
 * The classic interface's value types: offsets, tid/options/region
 * records, and the names of codes.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rvm_internal.h"

/* 64-bit longs hold any offset in low; high carries only what overflows. */
rvm_offset_t rvm_mk_offset(rvm_length_t high, rvm_length_t low)
{
    rvm_offset_t o = {high, low};
    return o;
}

rvm_offset_t rvm_add_offsets(const rvm_offset_t *x, const rvm_offset_t *y)
{
    rvm_offset_t o;
    o.low = x->low + y->low;
    o.high = x->high + y->high + (o.low < x->low);
    return o;
}

rvm_offset_t rvm_add_length_to_offset(const rvm_offset_t *x, rvm_length_t len)
{
    rvm_offset_t y = {0, len};
    return rvm_add_offsets(x, &y);
}

rvm_offset_t rvm_sub_offsets(const rvm_offset_t *x, const rvm_offset_t *y)
{
    rvm_offset_t o;
    o.low = x->low - y->low;
    o.high = x->high - y->high - (x->low < y->low);
    return o;
}

rvm_offset_t rvm_sub_length_from_offset(const rvm_offset_t *x, rvm_length_t len)
{
    rvm_offset_t y = {0, len};
    return rvm_sub_offsets(x, &y);
}

rvm_length_t rvm_page_size(void)
{
    static rvm_length_t ps;
    if (!ps)
        ps = (rvm_length_t)sysconf(_SC_PAGESIZE);
    return ps;
}

rvm_length_t rvm_page_mask(void)
{
    return ~(rvm_page_size() - 1);
}

rvm_offset_t rvm_round_up_offset(const rvm_offset_t *x)
{
    rvm_offset_t o = rvm_add_length_to_offset(x, rvm_page_size() - 1);
    o.low &= rvm_page_mask();
    return o;
}

rvm_offset_t rvm_round_down_offset(const rvm_offset_t *x)
{
    rvm_offset_t o = *x;
    o.low &= rvm_page_mask();
    return o;
}

void rvm_init_tid(rvm_tid_t *tid)
{
    if (!tid)
        return;
    memset(tid, 0, sizeof *tid);
    tid->struct_id = rvm_tid_id;
    tid->from_heap = rvm_false;
}

rvm_tid_t *rvm_malloc_tid(void)
{
    rvm_tid_t *tid = malloc(sizeof *tid);
    if (tid) {
        rvm_init_tid(tid);
        tid->from_heap = rvm_true;
    }
    return tid;
}

rvm_tid_t *rvm_copy_tid(const rvm_tid_t *tid)
{
    if (!tid || tid->struct_id != rvm_tid_id)
        return NULL;
    rvm_tid_t *c = malloc(sizeof *c);
    if (c) {
        *c = *tid;
        c->from_heap = rvm_true;
        c->tid = NULL; /* a copy names the transaction but cannot drive it */
    }
    return c;
}

void rvm_free_tid(rvm_tid_t *tid)
{
    if (tid && tid->struct_id == rvm_tid_id && tid->from_heap) {
        tid->struct_id = rvm_first_struct_id; /* catch use after free */
        free(tid);
    }
}

void rvm_init_options(rvm_options_t *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->struct_id = rvm_options_id;
    o->truncate = TRUNCATE;
    o->recovery_buf_len = RECOVERY_BUF_LEN;
    o->flush_buf_len = FLUSH_BUF_LEN;
    o->max_read_len = MAX_READ_LEN;
    o->create_log_size = RVM_MK_OFFSET(0, 64ul * 1024 * 1024);
    o->create_log_mode = 0600;
}

rvm_options_t *rvm_malloc_options(void)
{
    rvm_options_t *o = malloc(sizeof *o);
    if (o) {
        rvm_init_options(o);
        o->from_heap = rvm_true;
    }
    return o;
}

rvm_options_t *rvm_copy_options(const rvm_options_t *src)
{
    if (!src || src->struct_id != rvm_options_id)
        return NULL;
    rvm_options_t *o = malloc(sizeof *o);
    if (!o)
        return NULL;
    *o = *src;
    o->from_heap = rvm_true;
    o->log_dev = NULL;
    o->pager = NULL;
    o->tid_array = NULL;
    o->n_uncommit = 0;
    if ((src->log_dev && !(o->log_dev = strdup(src->log_dev))) ||
        (src->pager && !(o->pager = strdup(src->pager)))) {
        rvm_free_options(o);
        return NULL;
    }
    if (src->tid_array && src->n_uncommit > 0) {
        o->tid_array = malloc(sizeof(rvm_tid_t) * (size_t)src->n_uncommit);
        if (!o->tid_array) {
            rvm_free_options(o);
            return NULL;
        }
        memcpy(o->tid_array, src->tid_array, sizeof(rvm_tid_t) * (size_t)src->n_uncommit);
        o->n_uncommit = src->n_uncommit;
    }
    return o;
}

void rvm_free_options(rvm_options_t *o)
{
    if (!o || o->struct_id != rvm_options_id)
        return;
    free(o->tid_array);
    o->tid_array = NULL;
    o->n_uncommit = 0;
    if (o->from_heap) {
        free(o->log_dev);
        free(o->pager);
        o->struct_id = rvm_first_struct_id;
        free(o);
    }
}

void rvm_init_region(rvm_region_t *r)
{
    if (!r)
        return;
    memset(r, 0, sizeof *r);
    r->struct_id = rvm_region_id;
}

rvm_region_t *rvm_malloc_region(void)
{
    rvm_region_t *r = malloc(sizeof *r);
    if (r) {
        rvm_init_region(r);
        r->from_heap = rvm_true;
    }
    return r;
}

rvm_region_t *rvm_copy_region(const rvm_region_t *src)
{
    if (!src || src->struct_id != rvm_region_id)
        return NULL;
    rvm_region_t *r = malloc(sizeof *r);
    if (!r)
        return NULL;
    *r = *src;
    r->from_heap = rvm_true;
    r->data_dev = NULL;
    if (src->data_dev && !(r->data_dev = strdup(src->data_dev))) {
        free(r);
        return NULL;
    }
    return r;
}

void rvm_free_region(rvm_region_t *r)
{
    if (r && r->struct_id == rvm_region_id && r->from_heap) {
        free(r->data_dev);
        r->struct_id = rvm_first_struct_id;
        free(r);
    }
}

static char *const code_names[] = {
    "RVM_EINIT", "RVM_EINTERNAL", "RVM_EIO", "Invalid RVM return code",
    "RVM_ELOG", "RVM_ELOG_VERSION_SKEW", "RVM_EMODE", "RVM_ENAME_TOO_LONG",
    "RVM_ENO_MEMORY", "RVM_ENOT_MAPPED", "RVM_EOFFSET", "RVM_EOPTIONS",
    "RVM_EOVERLAP", "RVM_EPAGER", "RVM_ERANGE", "RVM_EREGION",
    "RVM_EREGION_DEF", "RVM_ESRC", "RVM_ESTATISTICS", "RVM_ESTAT_VERSION_SKEW",
    "RVM_ETERMINATED", "RVM_ETHREADS", "RVM_ETID", "RVM_ETOO_BIG",
    "RVM_EUNCOMMIT", "RVM_EVERSION_SKEW", "RVM_EVM_OVERLAP",
};

char *rvm_return(rvm_return_t code)
{
    if (code == RVM_SUCCESS)
        return "RVM_SUCCESS";
    if (code >= RVM_EINIT && code < rvm_last_code)
        return code_names[code - RVM_EINIT];
    return "Invalid RVM return code";
}

char *rvm_mode(rvm_mode_t mode)
{
    switch (mode) {
    case restore: return "restore";
    case no_restore: return "no_restore";
    case flush: return "flush";
    case no_flush: return "no_flush";
    default: return "Invalid RVM transaction mode";
    }
}

char *rvm_type(rvm_struct_id_t id)
{
    switch (id) {
    case rvm_region_id: return "rvm_region_id";
    case rvm_options_id: return "rvm_options_id";
    case rvm_tid_id: return "rvm_tid_id";
    case rvm_statistics_id: return "rvm_statistics_id";
    default: return "Invalid RVM structure type";
    }
}
