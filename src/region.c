/*
 * Regions: rvm_map, rvm_unmap and the address -> region lookup that every
 * set_range makes.  The table is an array sorted by address, read under
 * regions_lock (shared) and changed under it (exclusive).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "rvm_internal.h"
#include "txn.h"

/* Regions are kept sorted by vmaddr: binary search for the last one <= addr. */
static ssize_t region_index(const void *addr)
{
    size_t lo = 0, hi = rvm.nregions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((const char *)rvm.regions[mid]->vmaddr <= (const char *)addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ssize_t)lo - 1;
}

struct region *region_find(const void *addr, size_t len)
{
    ssize_t i = region_index(addr);
    if (i < 0)
        return NULL;
    struct region *r = rvm.regions[i];
    uintptr_t a = (uintptr_t)addr, base = (uintptr_t)r->vmaddr;
    if (a - base >= r->length || len > r->length - (a - base))
        return NULL;
    return r;
}

static int region_insert(struct region *r)
{
    if (rvm.nregions == rvm.regions_cap) {
        size_t nc = rvm.regions_cap ? rvm.regions_cap * 2 : 16;
        struct region **nv = realloc(rvm.regions, nc * sizeof *nv);
        if (!nv)
            return -ENOMEM;
        rvm.regions = nv;
        rvm.regions_cap = nc;
    }
    ssize_t i = region_index(r->vmaddr) + 1;
    memmove(&rvm.regions[i + 1], &rvm.regions[i],
            (rvm.nregions - (size_t)i) * sizeof *rvm.regions);
    rvm.regions[i] = r;
    rvm.nregions++;
    return 0;
}

/* The segment's canonical name: its directory resolved, its own name kept
 * (the file may not exist yet). */
static int canon_path(const char *dev, char *out)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(dev, '/');
    const char *base = slash ? slash + 1 : dev;
    if (!*base)
        return -EINVAL;
    if (slash) {
        size_t n = (size_t)(slash - dev);
        if (n == 0)
            n = 1; /* "/file" */
        memcpy(dir, dev, n);
        dir[n] = 0;
    } else {
        strcpy(dir, ".");
    }
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return -errno;
    if (strlen(real) + 1 + strlen(base) >= PATH_MAX)
        return -ENAMETOOLONG;
    size_t rl = strcmp(real, "/") ? strlen(real) : 0;
    memcpy(out, real, rl);
    out[rl] = '/';
    strcpy(out + rl + 1, base);
    return 0;
}

static rvm_return_t errno_to_rvm(int e)
{
    switch (e) {
    case -ENOMEM: return RVM_ENO_MEMORY;
    case -ENAMETOOLONG: return RVM_ENAME_TOO_LONG;
    default: return RVM_EIO;
    }
}

static rvm_return_t map_pinned(rvm_region_t *region, struct seg *s, const char *path, bool priv);

rvm_return_t rvm_map(rvm_region_t *region, rvm_options_t *opts)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!region || region->struct_id != rvm_region_id || !region->data_dev)
        return RVM_EREGION;
    if (opts && opts->struct_id != rvm_options_id)
        return RVM_EOPTIONS;
    if (opts && opts->pager)
        return RVM_EPAGER;
    if (strlen(region->data_dev) >= PATH_MAX)
        return RVM_ENAME_TOO_LONG;
    size_t ps = rvm_page_size();
    if (region->offset.high || region->offset.low % ps)
        return RVM_EOFFSET;
    if (region->length % ps || (uintptr_t)region->vmaddr % ps)
        return RVM_ERANGE;
    bool priv = ((opts ? opts->flags : 0) | OPT(flags)) & RVM_MAP_PRIVATE;

    char path[PATH_MAX];
    int rc = canon_path(region->data_dev, path);
    if (rc < 0) {
        rvm_set_errmsg("segment %s: %s", region->data_dev, strerror(-rc));
        return errno_to_rvm(rc);
    }
    struct seg *s = seg_get(path, &rc);
    if (!s) {
        rvm_set_errmsg("cannot open segment %s: %s", path, strerror(-rc));
        return errno_to_rvm(rc);
    }
    ret = map_pinned(region, s, path, priv);
    seg_unpin(s);
    return ret;
}

static rvm_return_t map_pinned(rvm_region_t *region, struct seg *s, const char *path, bool priv)
{
    size_t ps = rvm_page_size();
    rvm_return_t ret = RVM_SUCCESS;
    int rc;
    /* The segment files may have lost what recovery wrote to them. */
    if (rvm.log && log_recovery_failed(rvm.log)) {
        rvm_set_errmsg("the segments recovery wrote could not be synced: "
                       "rvm_terminate and initialize again");
        return RVM_EIO;
    }
    /* The memory must show the latest committed state: records of this
     * segment still in the log go to the segment first. */
    if (rvm.log && log_seg_pending(rvm.log, s)) {
        if ((rc = log_flush(rvm.log)) < 0 || (rc = log_truncate(rvm.log, false)) < 0) {
            rvm_set_errmsg("cannot apply pending records of %s: %s", path, strerror(-rc));
            return RVM_EIO;
        }
    }
    uint64_t fsize = RVM_OFFSET_TO_LENGTH(region->dev_length);
    uint64_t real_size;
    if ((rc = s->io->size(s->file, &real_size)) < 0)
        return RVM_EIO;
    if (!fsize)
        fsize = real_size;
    uint64_t off = region->offset.low;
    size_t len = region->length;
    if (!len) {
        if (fsize <= off)
            return RVM_ERANGE;
        len = (size_t)((fsize - off + ps - 1) & ~(uint64_t)(ps - 1));
    }
    /* Private mappings fault past the end of the file: grow it first. */
    if (real_size < off + len && (rc = s->io->resize(s->file, off + len)) < 0) {
        rvm_set_errmsg("cannot extend segment %s: %s", path, strerror(-rc));
        return RVM_EIO;
    }

    pthread_rwlock_wrlock(&rvm.regions_lock);
    for (size_t i = 0; i < rvm.nregions; i++) {
        struct region *o = rvm.regions[i];
        if (o->seg == s && off < o->offset + o->length && o->offset < off + len)
            ret = RVM_EOVERLAP;
        else if (region->vmaddr && region->vmaddr < o->vmaddr + o->length &&
                 o->vmaddr < region->vmaddr + len)
            ret = RVM_EVM_OVERLAP;
        if (ret)
            break;
    }
    struct region *r = ret ? NULL : calloc(1, sizeof *r);
    if (!ret && !r)
        ret = RVM_ENO_MEMORY;
    if (ret) {
        pthread_rwlock_unlock(&rvm.regions_lock);
        return ret;
    }
    char *mem = region->vmaddr;
    int fd = s->io->fd(s->file);
    if (priv && fd >= 0) {
        /* No swap reservation: a segment may be far larger than memory,
         * and only the pages written since the last truncation ever get
         * private copies (region_release_clean drops them). */
        mem = mmap(mem, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_NORESERVE | (mem ? MAP_FIXED : 0), fd, (off_t)off);
        r->private_map = true;
    } else {
        if (!mem) {
            mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            r->rvm_alloc = true;
        }
        if (mem != MAP_FAILED && !region->no_copy) {
            ssize_t n = s->io->pread(s->file, mem, len, off);
            if (n < 0) {
                if (r->rvm_alloc)
                    munmap(mem, len);
                free(r);
                pthread_rwlock_unlock(&rvm.regions_lock);
                rvm_set_errmsg("cannot read segment %s: %s", path, strerror((int)-n));
                return RVM_EIO;
            }
        }
    }
    if (mem == MAP_FAILED) {
        free(r);
        pthread_rwlock_unlock(&rvm.regions_lock);
        return RVM_ENO_MEMORY;
    }
    if (r->private_map && !region->vmaddr)
        r->rvm_alloc = true;
    r->vmaddr = mem;
    r->length = len;
    r->offset = off;
    r->seg = s;
    if (region_insert(r) < 0) {
        if (r->rvm_alloc)
            munmap(mem, len);
        free(r);
        pthread_rwlock_unlock(&rvm.regions_lock);
        return RVM_ENO_MEMORY;
    }
    pthread_mutex_lock(&rvm.seg_mu);
    s->nmapped++;
    pthread_mutex_unlock(&rvm.seg_mu);
    pthread_rwlock_unlock(&rvm.regions_lock);
    auto_protect_region(r);
    region->vmaddr = mem;
    region->length = len;
    return RVM_SUCCESS;
}

rvm_return_t rvm_unmap(rvm_region_t *region)
{
    rvm_return_t ret = rvm_check_init();
    if (ret)
        return ret;
    if (!region || region->struct_id != rvm_region_id)
        return RVM_EREGION;
    pthread_rwlock_wrlock(&rvm.regions_lock);
    ssize_t i = region_index(region->vmaddr);
    struct region *r = i >= 0 ? rvm.regions[i] : NULL;
    if (!r || r->vmaddr != region->vmaddr || (region->length && r->length != region->length)) {
        pthread_rwlock_unlock(&rvm.regions_lock);
        return RVM_EREGION;
    }
    if (__atomic_load_n(&r->n_txn, __ATOMIC_ACQUIRE)) {
        pthread_rwlock_unlock(&rvm.regions_lock);
        return RVM_EUNCOMMIT;
    }
    memmove(&rvm.regions[i], &rvm.regions[i + 1],
            (rvm.nregions - (size_t)i - 1) * sizeof *rvm.regions);
    rvm.nregions--;
    auto_region_unmapped(r, rvm.nregions == 0);
    if (rvm.log)
        log_lock(rvm.log);
    pthread_mutex_lock(&rvm.seg_mu);
    r->seg->nmapped--;
    seg_gc_locked();
    pthread_mutex_unlock(&rvm.seg_mu);
    if (rvm.log)
        log_unlock(rvm.log);
    pthread_rwlock_unlock(&rvm.regions_lock);
    if (r->rvm_alloc)
        munmap(r->vmaddr, r->length);
    free(r);
    return RVM_SUCCESS;
}

void region_free_all(void)
{
    pthread_rwlock_wrlock(&rvm.regions_lock);
    for (size_t i = 0; i < rvm.nregions; i++) {
        auto_region_unmapped(rvm.regions[i], i + 1 == rvm.nregions);
        free(rvm.regions[i]);
    }
    free(rvm.regions);
    rvm.regions = NULL;
    rvm.nregions = rvm.regions_cap = 0;
    page_pool_free();
    pthread_rwlock_unlock(&rvm.regions_lock);
}

/*
 * After a truncation: private mappings whose every change is now in the
 * segment file drop their private copies (MADV_DONTNEED), so the next
 * touch reads the file's committed bytes and memory stays bounded by
 * what is in flight.  A region qualifies when no transaction holds it,
 * nothing of its segment is queued, and no live log record names it.
 * Bytes changed without set_range would be lost here, as they would be
 * by a crash.
 */
void region_release_clean(struct rvm_log *log)
{
    pthread_rwlock_wrlock(&rvm.regions_lock);
    log_lock(log);
    uint64_t head_seq = log_head_seq(log);
    for (size_t i = 0; i < rvm.nregions; i++) {
        struct region *r = rvm.regions[i];
        if (!r->private_map || !__atomic_load_n(&r->dirty, __ATOMIC_RELAXED) ||
            __atomic_load_n(&r->n_txn, __ATOMIC_ACQUIRE))
            continue;
        struct seg *s = r->seg;
        if (s->queued || (s->last_seq && s->last_seq >= head_seq))
            continue;
        if (region_drop(r, 0, r->length, false) == 0)
            r->dirty = false;
    }
    log_unlock(log);
    pthread_rwlock_unlock(&rvm.regions_lock);
}
