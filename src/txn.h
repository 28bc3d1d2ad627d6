/*
 * A transaction's insides, shared by txn.c (declared ranges) and auto.c
 * (ranges found by diffing write-protected pages against their twins).
 */
#ifndef RVM_TXN_H
#define RVM_TXN_H

#include "rvm_internal.h"

struct auto_page {
    char *page;
    unsigned char *twin;    /* the page's bytes before the first write */
    struct region *reg;     /* held by the transaction */
    bool changed;           /* the commit found bytes that differ */
};

struct trange {
    char *addr;
    size_t len;
    struct region *reg;
    unsigned char *old;     /* saved bytes (restore mode), TXN_OLD_ZERO, else NULL */
};

/* The old bytes of a range were all zero: nothing saved (see txn.c). */
extern unsigned char txn_old_zero[1];
#define TXN_OLD_ZERO (&txn_old_zero[0])

/* Old values live in an arena: one allocation serves many set_ranges. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    unsigned char data[];
};
#define CHUNK_SIZE (64u * 1024u - sizeof(struct chunk))

struct rvm_txn {
    uint64_t id;
    rvm_mode_t mode;
    struct trange *r;
    size_t n, cap;
    struct region **regs;   /* distinct regions touched; each holds n_txn */
    size_t nregs, regcap;
    struct rvm_txn *prev, *next;
    rvm_tid_t *tid;
    struct region *last_reg;    /* held already: no lookup, no lock */
    struct chunk *arena;
    struct auto_page *pages;    /* auto mode: pages written, with twins */
    size_t npages, pagecap;
    bool is_auto;
    bool active;
    bool commit_failed;         /* a flush commit's force failed */
    /* set_range counts, added to the shared statistics once at the end:
     * two atomic adds per set_range were most of its cost */
    uint64_t n_set, bytes_set;
};


/* Declare [addr, addr+len) of reg; old (if not NULL) gives the bytes it
 * had before the transaction, else they are read from memory now. */
int txn_add_range(struct rvm_txn *t, struct region *reg, char *addr, size_t len,
                  const unsigned char *old);
int txn_hold_region(struct rvm_txn *t, struct region *r);  /* regions_lock held */

/* auto.c */
rvm_return_t auto_collect(struct rvm_txn *t);   /* before a commit */
void auto_abort(struct rvm_txn *t);             /* put the twins back */
void auto_finish(struct rvm_txn *t);            /* reprotect, free twins */
void auto_protect_region(struct region *r);     /* a region mapped now */
/* Regions are write-protected; stable while regions_lock is held
 * exclusively (arming holds it shared). */
bool auto_armed(void);
/* r leaves the table (regions_lock held exclusively); last: no region is
 * left mapped */
void auto_region_unmapped(struct region *r, bool last);
/* A transaction that began (counted in n_active) waits here for any auto
 * commit between its diff and its place in the log (while armed). */
void auto_barrier(void);
/* Around a direct write to a segment: false (write buffered instead)
 * while regions are armed; while one is in progress they are not armed. */
bool auto_direct_enter(void);
void auto_direct_exit(void);

#endif
