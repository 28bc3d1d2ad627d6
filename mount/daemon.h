/*
 * daemon.h - shared declarations of the rvmfs daemon (mount/).
 *
 * Locking, in the order locks may be taken:
 *   fs.table_mu    (node creation/removal only; never on the I/O path)
 *   node->mu       serializes every change of one file: writes, truncate,
 *                  begin/join, growth of its mapping; guards node->txn
 *   node->maplock  read-held while the region memory is used, write-held
 *                  to replace the mapping (growth)
 *   txn->mu        one thread at a time uses the librvm tid
 * Commit and abort take txn->mu alone, then release it before taking
 * member nodes' mu to detach them, so the order above is never inverted.
 */
#ifndef RVMFS_DAEMON_H
#define RVMFS_DAEMON_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#include <rvm/rvm.h>

/* Segment header page (docs/design.md, "The store"). */
#define SEG_HDR 4096u
#define SEG_MAGIC 0x4745535346564d52ull /* "RVMFSSEG" little endian */
#define SEG_VERSION 1u
#define SEG_MIN_CAP (256ull << 20)

struct seg_hdr {
    uint64_t magic;
    uint64_t size;
    uint64_t version;
};

struct txn;

enum node_kind { NODE_DIR, NODE_REG, NODE_OTHER };

struct node {
    struct cds_lfht_node hnode;
    struct rcu_head rcu;
    fuse_ino_t ino;      /* the kernel's inode number */
    ino_t bino;          /* inode number of the backing file */
    enum node_kind kind;
    int fd;              /* dirs: O_RDONLY dir fd; others: O_PATH fd; regs: -1 */
    pthread_mutex_t mu;
    pthread_rwlock_t maplock;
    uint64_t nlookup;    /* kernel references (mu) */
    int txnrefs;         /* transactions holding the node (mu) */
    bool dead;           /* removed from the table (mu) */
    struct txn *txn;     /* active (or just ended) transaction (mu) */
    atomic_int discard_wb; /* > 0: an abort's invalidation is under way */
    atomic_int_fast64_t mtime_ns; /* last data change seen here, or 0 */
    atomic_uint_fast64_t seg_gen; /* new segment: its entry must be durable
                                   * before its first record (store.c) */
    /* regular files: the mapped region (maplock) */
    rvm_region_t region;
    char *base;          /* region.vmaddr: header page, then data */
    uint64_t cap;        /* data bytes the region can hold */
    uint64_t dirty;      /* bytes of pages written since their private
                          * copies were last dropped (mu; seg.c) */
    uint64_t dirty_lo, dirty_hi; /* region offsets they lie in (mu) */
    /* Written pages handed to truncation: their copies go once every
     * commit before rel_mark is in the segment file (mu; seg.c) */
    uint64_t rel_lo, rel_hi, rel_bytes, rel_mark;
    bool rel_remark;     /* written there since: mark again (mu) */
    char segname[24];    /* decimal bino: name under seg/ */
};

struct rvmfs {
    char *store;         /* absolute path */
    char *log_path;
    uint64_t log_size;
    unsigned truncate_pct;
    unsigned flush_interval_ms;
    unsigned txn_timeout_s;
    unsigned poll_us;    /* a reader polls this long before it blocks */
    bool uring;          /* -o uring: requests over io_uring if offered */
    unsigned uring_threads; /* threads (ring entries) per CPU queue */
    int singlethread;
    int store_fd, tree_fd, seg_fd;
    ino_t root_bino;
    struct fuse_session *se;
    struct cds_lfht *nodes;
    pthread_mutex_t table_mu;
    struct cds_lfht *txns;
    atomic_uint_fast64_t next_tid;
    atomic_int n_active;
    bool rvm_up;
    bool threads_up;
    atomic_bool stopping;
    atomic_bool dropped_no_restore; /* rvm_terminate will say EUNCOMMIT */
};

extern struct rvmfs fs;

/* main.c: one line for the administrator, on stderr while in the
 * foreground, to syslog once daemonized. */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* node.c */
void rcu_thread_online(void);
int nodes_init(void);
void nodes_fini(void);
fuse_ino_t ino_of(ino_t bino);
struct node *node_find(fuse_ino_t ino);
int node_get_or_create(ino_t bino, const struct stat *st, int dirfd,
                       const char *name, struct node **out);
void node_forget(fuse_ino_t ino, uint64_t n);
void node_txn_unref(struct node *n);
void node_txn_ref(struct node *n);
void nodes_unmap_all(void);
void nodes_release_applied(void);
int node_stat(struct node *n, struct stat *st);

/* store.c */
int store_open(const char *store, bool create, uint64_t log_size,
               const char *log_path);
void store_sweep_orphans(void);
int store_new_segment(mode_t mode, uid_t uid, gid_t gid, struct stat *st,
                      uint64_t *gen);
int store_seg_durable(uint64_t gen);
void store_orphan_later(ino_t bino);
void store_orphans_collect(void);

/* seg.c */
int rvm_errno(rvm_return_t rc);
int seg_map(struct node *n);
void seg_unmap(struct node *n);
uint64_t seg_size(const struct node *n);
int seg_reserve(struct node *n, uint64_t end);
void seg_idle(struct node *n);
/* Caller holds n->mu, the file in no active transaction: drop the copies
 * handed to truncation once it has applied them (seg_idle does it too). */
void seg_release_applied(struct node *n);
bool seg_release_pending(void);    /* some file has copies handed off */
struct seg_copies {
    uint64_t bytes;             /* pages written and not dropped (upper bound) */
    uint64_t handoffs;          /* written pages handed to truncation */
    uint64_t dropped;           /* hand-offs whose copies were dropped */
    uint64_t dropped_by_writer; /* drops after the writer flushed and truncated */
};
void seg_copies_stats(struct seg_copies *c);
int seg_shrink(struct node *n, uint64_t size);
void seg_trim_repair(const char *marker);
#define SEG_SHRINK_MIN (256u << 10) /* below: shrink in the log */
int seg_write(struct node *n, rvm_tid_t *tid, const char *buf, size_t len,
              uint64_t off, uint64_t *ranges, uint64_t *bytes);
int seg_resize(struct node *n, rvm_tid_t *tid, uint64_t size,
               uint64_t *ranges, uint64_t *bytes);

/* txn.c */
struct txn {
    struct cds_lfht_node hnode;
    struct rcu_head rcu;
    uint64_t id;
    pthread_mutex_t mu;
    rvm_tid_t tid;       /* mu */
    bool active;         /* mu */
    bool no_restore;
    atomic_int refs;
    struct node **members; /* mu */
    int nmembers, capmembers;
    uint64_t ranges, bytes; /* mu */
    struct timespec began, last_use; /* mu */
    struct txn *next_free; /* txn.c's pool of ended transactions */
};
int txns_init(void);
void txns_fini(void);
void txn_put(struct txn *t);
bool node_busy(struct node *n);
int txn_begin(struct node *n, unsigned flags, uint64_t *id);
int txn_join(struct node *n, uint64_t id);
int txn_commit(struct node *n, unsigned flags);
int txn_abort(struct node *n);
void txn_abort_all(void);
void txn_expire(unsigned idle_s);
int txn_describe(struct node *n, char *buf, size_t len);
size_t txn_list(char *buf, size_t len);
int txn_info(struct node *n, uint64_t *tid, uint64_t *ranges, uint64_t *bytes,
             uint64_t *age_ms);
/* Run fn(n, t, arg) with n->mu held and t = the file's transaction locked
 * (t->mu) or NULL when there is none; the core of every write. */
int txn_with(struct node *n, int (*fn)(struct node *, rvm_tid_t *, uint64_t *,
                                        uint64_t *, void *), void *arg,
             bool writepage, uint64_t need);
int do_flush(void);

/* chan.c: /dev/fuse I/O; negotiates FUSE_HANDLE_KILLPRIV_V2 */
int chan_attach(struct fuse_session *se, bool multithreaded);
/* Before a handler waits (log force, invalidation): let another worker
 * read /dev/fuse meanwhile. */
void chan_yield_reader(void);
/* The request handled on this thread asks the daemon to clear the file's
 * set-user-ID and set-group-ID bits (a writer without CAP_FSETID). */
bool chan_kill_suidgid(void);
/* Note what libfuse drops from a request about to be handled on this
 * thread (the kill flags); buf is the request as /dev/fuse delivers it. */
void chan_note_request(const char *buf, size_t n);

/* uring.c: requests over io_uring (-o uring).  prepare sets up rings,
 * buffers and threads for every CPU queue before the INIT reply asks for
 * it (false: stay on /dev/fuse); start lets the threads register (go) or
 * ends them; stop ends and joins them (after the unmount); reply
 * takes an answer to a ring request from chan.c's writev hook (false: not
 * one of them). */
bool uring_prepare(struct fuse_session *se, size_t payload);
void uring_start(bool go);
/* After the session loop: later requests get ENOTCONN; returns once no
 * request is being handled. */
void uring_quiesce(void);
void uring_stop(void);
bool uring_reply(const struct iovec *iov, int count, ssize_t *res);
/* The CPU whose queue has the most entries waiting for a request, -1 if
 * none has one (or not over io_uring).  The kernel queues a request on the
 * queue of the CPU its sender runs on; a daemon thread that makes the
 * kernel send requests and waits for them (an invalidation writes back
 * dirty pages) runs there, rather than on a queue whose every entry may be
 * a handler waiting for that very thread. */
int uring_idle_queue(void);
/* True while requests come over io_uring; *requests: answered so far. */
bool uring_served(uint64_t *requests);

/* bg.c: background work */
int bg_start(void);
void bg_stop(void);
void bg_invalidate(fuse_ino_t ino, struct node *n, bool wait);

/* ops_ns.c, ops_file.c, ioctl.c, xattr.c */
extern const struct fuse_lowlevel_ops rvmfs_ops;
void ops_ns_init(struct fuse_lowlevel_ops *ops);
void ops_file_init(struct fuse_lowlevel_ops *ops);
void ops_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
               struct fuse_file_info *fi, unsigned flags, const void *in_buf,
               size_t in_bufsz, size_t out_bufsz);
void ops_xattr_init(struct fuse_lowlevel_ops *ops);
int file_truncate(struct node *n, uint64_t size);

#define ATTR_TIMEOUT 1.0
#define ENTRY_TIMEOUT 1.0

static inline uint64_t ts_ms_since(const struct timespec *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - a->tv_sec) * 1000u +
           (uint64_t)((now.tv_nsec - a->tv_nsec) / 1000000);
}

#endif
