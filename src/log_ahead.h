/*
 * Reading a log in big pieces for a walk (log_scan.c): two buffers, one
 * the walk's records point into and one a reader thread fills with the
 * next piece meanwhile, so that recovery and truncation read the log
 * while they apply what they read.  Reads may bypass the page cache
 * (O_DIRECT): recovery reads a cold log once, and copying it through the
 * cache costs a copy per byte and evicts what the segments need.
 */
#ifndef RVM_LOG_AHEAD_H
#define RVM_LOG_AHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rvm_io.h"
#include "worker.h"

struct ahead_buf {
    unsigned char *mem;        /* aligned allocation */
    size_t cap;
    const unsigned char *data; /* the bytes at off, in mem */
    uint64_t off;
    size_t len;
};

/* A background read, as the reader thread sees it. */
struct ahead_req {
    rvm_io_file *f;
    bool direct;
    struct ahead_buf *b;
    uint64_t off;
    size_t want;
    ssize_t got;               /* its result */
};

/* Buffers kept from one walk to the next, for a caller that walks often
 * (truncation): a fresh buffer costs a page fault and the clearing of a
 * page for every 4 KiB read into it, a fifth of the daemon's CPU under
 * sustained writes. */
struct ahead_keep {
    unsigned char *mem[2];
    size_t cap[2];
};

struct log_ahead {
    const rvm_io_methods *io;
    rvm_io_file *f;            /* the log, as the caller opened it */
    rvm_io_file *direct;       /* the same file opened O_DIRECT, or NULL */
    struct ahead_buf b[2];
    int cur;                   /* b[cur] is the one the walk reads */
    bool pending;              /* req fills b[!cur] (or did) */
    struct ahead_req req;
    struct worker reader;      /* started at the first ahead_start */
    struct ahead_keep *keep;   /* gets the buffers back at ahead_done */
};

void ahead_init(struct log_ahead *a, const rvm_io_methods *io, rvm_io_file *f);

/* Read through a descriptor of path opened with O_DIRECT from now on, if
 * the file system allows it; buffered reads go on otherwise. */
void ahead_direct(struct log_ahead *a, const char *path);

/*
 * Make b[cur] hold the file's bytes [off, off + want), or fewer at its
 * end: the prefetched buffer if it starts at off, or at the end of
 * b[cur] with off in b[cur]; else a read now.  Returns the bytes now at
 * off (b[cur].len: it may be more than want), or -errno.
 */
ssize_t ahead_get(struct log_ahead *a, uint64_t off, size_t want);

/* Start filling the other buffer with [off, off + want) in the
 * background (nothing if a fill is pending already).  b[cur], which the
 * walk's records point into, is never touched. */
void ahead_start(struct log_ahead *a, uint64_t off, size_t want);

/* Frees the buffers, or gives them back to the ahead_keep they came from. */
void ahead_done(struct log_ahead *a);

/* Walk with k's buffers (grown as needed) and return them to k at
 * ahead_done.  Before the first read; one walk at a time per k. */
void ahead_reuse(struct log_ahead *a, struct ahead_keep *k);

void ahead_keep_free(struct ahead_keep *k);

#endif
