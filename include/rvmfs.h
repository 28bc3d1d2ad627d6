/**
 * @file rvmfs.h
 * @brief Client interface of rvmfs: transactions on files of an rvmfs mount.
 *
 * rvmfs mounts a store in which every regular file is a recoverable
 * segment of librvm.  Any write to a file is atomic; a program groups
 * several writes, on one file or on several files of the same mount, into
 * one transaction with the calls below.  They are ioctl()s on an open
 * descriptor of a file in the mount, so they work from any language that
 * can call ioctl; shells and scripting languages can use the extended
 * attributes instead (#RVMFS_XATTR_TXN and friends).
 *
 * Model, in short (the full contract is docs/rvmfs-interface.md):
 * - A transaction has a 64-bit id, is begun on one file and may be joined
 *   by other files of the same mount; its commit is atomic across them.
 * - While a file is in an active transaction, every write to it (write,
 *   pwrite, dirty pages of shared mappings written back by the kernel)
 *   belongs to that transaction, whichever process makes it.  A file is in
 *   at most one active transaction.  Isolation is the application's
 *   business (use fcntl locks).
 * - File size is transactional: extending writes and ftruncate inside a
 *   transaction are undone by abort.
 * - Writes outside any transaction are each their own atomic transaction,
 *   committed without a log force; fsync()/fdatasync() or rvmfs_flush()
 *   makes every committed transaction durable.  The kernel hands the
 *   daemon at most 1 MiB per request, so a larger write() outside a
 *   transaction is atomic per 1 MiB piece; inside one it is whole.
 * - Closing descriptors does not end a transaction; a transaction ends
 *   at commit or abort, when the daemon stops (aborted) or when it stays
 *   idle longer than the mount's txn_timeout (aborted).
 * - Shared mappings: dirty pages reach the daemon only when the kernel
 *   writes them back.  Before a commit, msync(MS_SYNC) the range you
 *   changed; rvmfs_commit_mapped() does both.  Dirty pages still in the
 *   kernel at an abort are discarded whatever made them dirty, so msync a
 *   mapping before rvmfs_begin() if it holds changes made earlier.
 * - Capacity: inside one transaction a file can grow up to its capacity
 *   (rvmfs_status(): at least 256 MiB, or twice its size when the daemon
 *   first opened it); writes beyond it fail with EFBIG.  Outside a
 *   transaction files grow up to 1 TiB.
 *
 * Every function returns 0 on success and -1 with errno set on failure,
 * like the system calls they wrap.  Errors common to all of them:
 * - EBADF: fd is not an open descriptor;
 * - ENOTTY: fd is not a file of an rvmfs mount (or the daemon is older and
 *   does not know the request);
 * - EIO: the log or a segment could not be written.
 *
 * Thread-safety: all functions are thread-safe as far as the process is
 * concerned; they act on files, not on threads.  Two threads that commit
 * the same file's transaction race like any two writers: only the first
 * succeeds, the second gets ENOENT.
 */
#ifndef RVMFS_H
#define RVMFS_H

#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @name Flags */
/**@{*/
/** rvmfs_begin(): keep no old values; the transaction cannot be aborted
 *  (cheaper for large writes). */
#define RVMFS_NO_RESTORE 0x1u
/** rvmfs_commit(): return at once; the transaction becomes durable at the
 *  next flush (fsync, rvmfs_flush(), a flush commit, or the mount's
 *  flush_interval). */
#define RVMFS_NO_FLUSH 0x1u
/**@}*/

/** @name ioctl arguments (fixed size, no pointers, so FUSE can move them) */
/**@{*/
/** Argument of #RVMFS_IOC_BEGIN. */
struct rvmfs_begin_arg {
    uint64_t flags; /**< in: 0 or #RVMFS_NO_RESTORE */
    uint64_t tid;   /**< out: the new transaction's id (never 0) */
};

/** Argument of #RVMFS_IOC_JOIN. */
struct rvmfs_join_arg {
    uint64_t tid; /**< in: id of an active transaction of this mount */
};

/** Argument of #RVMFS_IOC_COMMIT. */
struct rvmfs_commit_arg {
    uint64_t flags; /**< in: 0 (flush) or #RVMFS_NO_FLUSH */
};

/** Result of #RVMFS_IOC_STATUS. */
struct rvmfs_status {
    uint64_t tid;           /**< the file's active transaction, or 0 */
    uint64_t ranges;        /**< ranges declared in that transaction so far */
    uint64_t bytes;         /**< bytes declared in that transaction so far */
    uint64_t txn_age_ms;    /**< milliseconds since that transaction began */
    uint64_t size;          /**< the file's logical size */
    uint64_t capacity;      /**< bytes the file can grow to without a remap */
    uint64_t log_size;      /**< the store's log data area, bytes */
    uint64_t log_used;      /**< bytes of the log in use */
    uint64_t log_records;   /**< records in the log */
    uint64_t active_txns;   /**< active transactions in the mount */
    uint64_t reserved[6];   /**< zero */
};
/**@}*/

/** @name ioctl requests (type 'R') */
/**@{*/
#define RVMFS_IOC_BEGIN _IOWR('R', 1, struct rvmfs_begin_arg)
#define RVMFS_IOC_JOIN _IOW('R', 2, struct rvmfs_join_arg)
#define RVMFS_IOC_COMMIT _IOW('R', 3, struct rvmfs_commit_arg)
#define RVMFS_IOC_ABORT _IO('R', 4)
#define RVMFS_IOC_FLUSH _IO('R', 5)
#define RVMFS_IOC_STATUS _IOR('R', 6, struct rvmfs_status)
/**@}*/

/** @name Extended attributes
 *
 * For programs that cannot call ioctl.  Values are ASCII text without a
 * trailing newline (one is accepted on writes).
 */
/**@{*/
/** Write "begin", "begin no_restore", "join <tid>", "commit",
 *  "commit no_flush" or "abort".  Read: "none", or
 *  "<tid> ranges=<n> bytes=<n>".  Errors as the ioctls; EINVAL for a
 *  value that is none of these. */
#define RVMFS_XATTR_TXN "user.rvm.txn"
/** Write anything: make every committed transaction durable. */
#define RVMFS_XATTR_FLUSH "user.rvm.flush"
/** Read-only: "key=value" lines about the file; on the mount's root
 *  directory, about the whole store (log, counters). */
#define RVMFS_XATTR_STAT "user.rvm.stat"
/** Every other name under this prefix is reserved: EINVAL on write,
 *  ENODATA on read. */
#define RVMFS_XATTR_PREFIX "user.rvm."
/**@}*/

/**
 * Begin a transaction on the file open on fd.
 *
 * From now on every write to the file, by any process, belongs to the
 * transaction, until rvmfs_commit() or rvmfs_abort() on any descriptor of
 * any member file.
 *
 * @param fd    descriptor of a regular file in an rvmfs mount (any mode).
 * @param flags 0, or #RVMFS_NO_RESTORE.
 * @param tid   NULL, or where to store the transaction's id, for
 *              rvmfs_join() on other files.
 * @return 0; -1 with errno EBUSY (the file is already in an active
 *   transaction), EINVAL (unknown flags, or fd is not a regular file),
 *   ENOMEM, and the common errors.
 */
static inline int rvmfs_begin(int fd, unsigned flags, uint64_t *tid)
{
    struct rvmfs_begin_arg a = {flags, 0};
    if (ioctl(fd, RVMFS_IOC_BEGIN, &a) < 0)
        return -1;
    if (tid)
        *tid = a.tid;
    return 0;
}

/**
 * Add the file open on fd to the active transaction tid, so that the
 * transaction's commit or abort covers it too.  Joining a file to the
 * transaction it is already in does nothing and succeeds.
 *
 * @return 0; -1 with errno ENOENT (no active transaction tid in this
 *   mount), EBUSY (the file is in another active transaction), EINVAL
 *   (not a regular file), and the common errors.
 */
static inline int rvmfs_join(int fd, uint64_t tid)
{
    struct rvmfs_join_arg a = {tid};
    return ioctl(fd, RVMFS_IOC_JOIN, &a) < 0 ? -1 : 0;
}

/**
 * Commit the transaction the file open on fd is in; every member file's
 * changes become visible as one atomic unit.  Without #RVMFS_NO_FLUSH
 * the call returns when the transaction (and every earlier commit) is
 * durable; concurrent commits share one log force.
 *
 * Pages of shared mappings still dirty in the kernel are not part of the
 * commit: msync() them first, or use rvmfs_commit_mapped().
 *
 * @param flags 0 or #RVMFS_NO_FLUSH.
 * @return 0; -1 with errno ENOENT (the file is in no active transaction),
 *   EINVAL (unknown flags), ENOSPC (the transaction does not fit in the
 *   log even after truncation; it stays active and can be aborted), EIO
 *   (log write failed; it stays active), and the common errors.
 */
static inline int rvmfs_commit(int fd, unsigned flags)
{
    struct rvmfs_commit_arg a = {flags};
    return ioctl(fd, RVMFS_IOC_COMMIT, &a) < 0 ? -1 : 0;
}

/**
 * Abort the transaction the file open on fd is in: every byte and the
 * size of every member file are put back, and the kernel's cached pages
 * of the member files are dropped before the call returns, so readers and
 * existing mappings see the old bytes.  Dirty mapped pages that carried
 * the aborted bytes are discarded.
 *
 * @return 0; -1 with errno ENOENT (the file is in no active transaction),
 *   EINVAL (the transaction began with #RVMFS_NO_RESTORE: it stays active
 *   and must be committed), and the common errors.
 */
static inline int rvmfs_abort(int fd)
{
    return ioctl(fd, RVMFS_IOC_ABORT) < 0 ? -1 : 0;
}

/**
 * Make every committed transaction of the mount durable (like fsync() on
 * every file).  fd may be any file or directory of the mount.
 * @return 0; -1 with errno EIO, and the common errors.
 */
static inline int rvmfs_flush(int fd)
{
    return ioctl(fd, RVMFS_IOC_FLUSH) < 0 ? -1 : 0;
}

/**
 * Fill *st with the state of the file open on fd (its transaction, size,
 * capacity) and of the store's log.  On a directory the file fields are 0.
 * @return 0; -1 with errno EINVAL (st is NULL), and the common errors.
 */
static inline int rvmfs_status(int fd, struct rvmfs_status *st)
{
    if (!st) {
        errno = EINVAL;
        return -1;
    }
    return ioctl(fd, RVMFS_IOC_STATUS, st) < 0 ? -1 : 0;
}

/**
 * msync(addr, len, MS_SYNC) and then rvmfs_commit(fd, flags): the way to
 * commit changes made through a shared mapping of the file.  addr must be
 * page aligned (as for msync).  With len 0 nothing is synced.
 * @return 0; -1 with errno from msync (EINVAL, ENOMEM) or rvmfs_commit().
 */
static inline int rvmfs_commit_mapped(int fd, void *addr, size_t len,
                                      unsigned flags)
{
    if (len && msync(addr, len, MS_SYNC) < 0)
        return -1;
    return rvmfs_commit(fd, flags);
}

#ifdef __cplusplus
}
#endif
#endif /* RVMFS_H */
