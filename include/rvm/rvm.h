/**
 * @file rvm.h
 * @brief librvm: Recoverable Virtual Memory.
 *
 * librvm implements the classic RVM interface (Satyanarayanan et al.,
 * "Lightweight Recoverable Virtual Memory", SOSP 1993).  Programs written
 * for the classic RVM build against this header unchanged.
 *
 * A *segment* is a file (or block device) of recoverable bytes.  A *region*
 * is a byte range of a segment mapped into memory by rvm_map().  Changes to
 * mapped memory are bracketed by rvm_begin_transaction() and
 * rvm_end_transaction(); before changing bytes the program declares them
 * with rvm_set_range().  At commit the new values of every declared range
 * are written to a redo *log*; after a crash, rvm_initialize() replays the
 * log so that every durable transaction is present, whole, and no partial
 * one is.
 *
 * Durability: rvm_end_transaction(tid, flush) returns once the transaction
 * is on stable storage.  A no_flush commit returns at once and becomes
 * durable at the next rvm_flush() or flush commit, in commit order; after a
 * crash a prefix (in commit order) of the unflushed no_flush transactions
 * may survive, never a part of one.
 *
 * Isolation is the application's business.  Thread safety: every call may be
 * made from any thread; a transaction (an #rvm_tid_t) must be used by one
 * thread at a time.  Calls that take no tid are fully thread-safe unless
 * their documentation says otherwise.
 *
 * Unless stated otherwise every call returns #RVM_SUCCESS or one of the
 * error codes below; none of them aborts the process on bad arguments.
 */
#ifndef RVM_RVM_H
#define RVM_RVM_H

#include <stdint.h>
#include <sys/time.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Version string passed to rvm_initialize() by #RVM_INIT. */
#define RVM_VERSION "RVM Interface Version 1.3 7 Mar 1994 (rvmfs librvm 0.1)"

/** @name Booleans */
/**@{*/
typedef enum { rvm_false = 0, rvm_true = 1 } rvm_bool_t;
#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
/**@}*/

/** @name Return codes
 *
 * Every call returns one of these.  rvm_return() gives a code's name.
 */
/**@{*/
typedef int rvm_return_t;
#define RVM_SUCCESS 0 /**< the call did what it was asked */
#define rvm_first_code 199
#define RVM_EINIT 200          /**< RVM not initialized (or rvm_initialize failed) */
#define RVM_EINTERNAL 201      /**< internal inconsistency; see rvm_errmsg() */
#define RVM_EIO 202            /**< I/O error on the log or a segment; errno kept */
#define RVM_ELOG 204           /**< the log is missing, unreadable, not a log, or full */
#define RVM_ELOG_VERSION_SKEW 205 /**< the log was written by an incompatible version */
#define RVM_EMODE 206          /**< bad transaction or commit mode */
#define RVM_ENAME_TOO_LONG 207 /**< a device or log name is longer than PATH_MAX */
#define RVM_ENO_MEMORY 208     /**< out of memory */
#define RVM_ENOT_MAPPED 209    /**< the address range is not inside one mapped region */
#define RVM_EOFFSET 210        /**< a segment offset is not page aligned or is too large */
#define RVM_EOPTIONS 211       /**< bad options record or option value */
#define RVM_EOVERLAP 212       /**< the region overlaps a mapped region of the same segment */
#define RVM_EPAGER 213         /**< external pagers are not supported */
#define RVM_ERANGE 214         /**< bad length or address alignment */
#define RVM_EREGION 215        /**< not a region record, or the region is not mapped */
#define RVM_EREGION_DEF 216    /**< the region descriptor is inconsistent */
#define RVM_ESRC 217           /**< bad source address (rvm_modify_bytes) */
#define RVM_ESTATISTICS 218    /**< bad statistics record */
#define RVM_ESTAT_VERSION_SKEW 219 /**< statistics record of another version */
#define RVM_ETERMINATED 220    /**< RVM was terminated */
#define RVM_ETHREADS 221       /**< thread support failed */
#define RVM_ETID 222           /**< not a valid, active transaction */
#define RVM_ETOO_BIG 223       /**< the transaction does not fit in the log */
#define RVM_EUNCOMMIT 224      /**< uncommitted transactions prevent the call */
#define RVM_EVERSION_SKEW 225  /**< rvm_initialize was given another RVM_VERSION */
#define RVM_EVM_OVERLAP 226    /**< the region's memory overlaps another region */
#define rvm_last_code 227
/**@}*/

/** Transaction and commit modes. */
typedef enum {
    rvm_first_mode = 139,
    restore,    /**< begin: save old values so that abort can restore them */
    no_restore, /**< begin: keep no old values; abort is not possible */
    flush,      /**< end: return once the transaction is durable */
    no_flush,   /**< end: return at once; durable at the next flush */
    rvm_last_mode
} rvm_mode_t;

/** Record type tags kept in the struct_id field of the records below. */
typedef enum {
    rvm_first_struct_id = 9,
    rvm_region_id,
    rvm_options_id,
    rvm_tid_id,
    rvm_statistics_id,
    rvm_last_struct_id
} rvm_struct_id_t;

/** @name Lengths and 64-bit offsets */
/**@{*/
typedef unsigned long rvm_length_t;

/** A segment offset kept as two words, as in the classic interface. */
typedef struct {
    rvm_length_t high;
    rvm_length_t low;
} rvm_offset_t;

#define RVM_OFFSET_INITIALIZER {0, 0}
#define RVM_MK_OFFSET(x, y) (rvm_mk_offset((rvm_length_t)(x), (rvm_length_t)(y)))
#define RVM_ZERO_OFFSET RVM_MK_OFFSET(0, 0)
#define RVM_OFFSET_TO_LENGTH(x) ((x).low)
#define RVM_OFFSET_HIGH_BITS_TO_LENGTH(x) ((x).high)
#define RVM_LENGTH_TO_OFFSET(x) RVM_MK_OFFSET(0, (x))
#define RVM_ADD_OFFSETS(x, y) rvm_add_offsets(&(x), &(y))
#define RVM_ADD_LENGTH_TO_OFFSET(x, y) rvm_add_length_to_offset(&(x), (y))
#define RVM_SUB_OFFSETS(x, y) rvm_sub_offsets(&(x), &(y))
#define RVM_SUB_LENGTH_FROM_OFFSET(x, y) rvm_sub_length_from_offset(&(x), (y))
#define RVM_ADD_LENGTH_TO_ADDR(addr, len) \
    ((char *)((rvm_length_t)(addr) + (rvm_length_t)(len)))
#define RVM_SUB_LENGTH_FROM_ADDR(addr, len) \
    ((char *)((rvm_length_t)(addr) - (rvm_length_t)(len)))
#define RVM_OFFSET_LSS(x, y) \
    (((x).high < (y).high) || (((x).high == (y).high) && ((x).low < (y).low)))
#define RVM_OFFSET_GTR(x, y) RVM_OFFSET_LSS(y, x)
#define RVM_OFFSET_LEQ(x, y) (!RVM_OFFSET_GTR(x, y))
#define RVM_OFFSET_GEQ(x, y) (!RVM_OFFSET_LSS(x, y))
#define RVM_OFFSET_EQL(x, y) (((x).high == (y).high) && ((x).low == (y).low))
#define RVM_OFFSET_EQL_ZERO(x) (((x).high == 0) && ((x).low == 0))

#define RVM_PAGE_SIZE rvm_page_size()
#define RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(x) \
    ((rvm_length_t)(((rvm_length_t)(x) + rvm_page_size() - 1) & rvm_page_mask()))
#define RVM_ROUND_LENGTH_DOWN_TO_PAGE_SIZE(x) \
    ((rvm_length_t)((rvm_length_t)(x) & rvm_page_mask()))
#define RVM_ROUND_ADDR_UP_TO_PAGE_SIZE(x) \
    ((char *)RVM_ROUND_LENGTH_UP_TO_PAGE_SIZE(x))
#define RVM_ROUND_ADDR_DOWN_TO_PAGE_SIZE(x) \
    ((char *)RVM_ROUND_LENGTH_DOWN_TO_PAGE_SIZE(x))
#define RVM_ROUND_OFFSET_UP_TO_PAGE_SIZE(x) rvm_round_up_offset(&(x))
#define RVM_ROUND_OFFSET_DOWN_TO_PAGE_SIZE(x) rvm_round_down_offset(&(x))

/** Make an offset from its high and low words. Pure; thread-safe. */
rvm_offset_t rvm_mk_offset(rvm_length_t high, rvm_length_t low);
/** Sum of two offsets. Pure; thread-safe. */
rvm_offset_t rvm_add_offsets(const rvm_offset_t *x, const rvm_offset_t *y);
/** Offset plus a length. Pure; thread-safe. */
rvm_offset_t rvm_add_length_to_offset(const rvm_offset_t *x, rvm_length_t len);
/** x - y (wraps below zero like unsigned arithmetic). Pure; thread-safe. */
rvm_offset_t rvm_sub_offsets(const rvm_offset_t *x, const rvm_offset_t *y);
/** Offset minus a length. Pure; thread-safe. */
rvm_offset_t rvm_sub_length_from_offset(const rvm_offset_t *x, rvm_length_t len);
/** Offset rounded up to a page boundary. Pure; thread-safe. */
rvm_offset_t rvm_round_up_offset(const rvm_offset_t *x);
/** Offset rounded down to a page boundary. Pure; thread-safe. */
rvm_offset_t rvm_round_down_offset(const rvm_offset_t *x);
/** The system page size in bytes. Thread-safe. */
rvm_length_t rvm_page_size(void);
/** ~(rvm_page_size() - 1): the mask that rounds down to a page. Thread-safe. */
rvm_length_t rvm_page_mask(void);
/**@}*/

/** @name Transaction identifiers */
/**@{*/
/**
 * A transaction identifier.  Declare one on the stack and rvm_init_tid()
 * it, or get one from rvm_malloc_tid().  The fields other than uname are
 * private.
 */
typedef struct {
    rvm_struct_id_t struct_id; /**< rvm_tid_id once initialized */
    rvm_bool_t from_heap;      /**< rvm_malloc_tid() made it */
    struct timeval uname;      /**< unique name of the transaction (begin time) */
    void *tid;                 /**< private: the live transaction, or NULL */
    rvm_length_t reserved;     /**< private */
} rvm_tid_t;

/** Allocate and initialize a tid; NULL when out of memory. Thread-safe. */
rvm_tid_t *rvm_malloc_tid(void);
/** Initialize a caller-owned tid (for example one on the stack). */
void rvm_init_tid(rvm_tid_t *tid);
/** Copy a tid record; NULL when out of memory. The copy is from the heap. */
rvm_tid_t *rvm_copy_tid(const rvm_tid_t *tid);
/** Free a tid from rvm_malloc_tid() or rvm_copy_tid(). An active
 *  transaction must be ended or aborted first. */
void rvm_free_tid(rvm_tid_t *tid);
/**@}*/

/** @name Options */
/**@{*/
#define RVM_COALESCE_RANGES 1 /**< merge overlapping ranges of a transaction */
#define RVM_COALESCE_TRANS 2  /**< drop bytes of no_flush commits overwritten by later ones */
#define RVM_ALL_OPTIMIZATIONS (RVM_COALESCE_RANGES | RVM_COALESCE_TRANS)
#define RVM_MAP_PRIVATE 8     /**< map regions lazily as private file mappings */

#define TRUNCATE 50                 /**< default truncation threshold, percent */
#define RECOVERY_BUF_LEN (256 * 1024) /**< default recovery read size */
#define MIN_RECOVERY_BUF_LEN (64 * 1024)
#define FLUSH_BUF_LEN (256 * 1024)    /**< default no_flush queue size before a write-out */
#define MIN_FLUSH_BUF_LEN (64 * 1024)
#define MAX_READ_LEN (512 * 1024)     /**< default largest single read */

/** The options record of rvm_initialize(), rvm_set_options(), rvm_query(). */
typedef struct {
    rvm_struct_id_t struct_id; /**< rvm_options_id */
    rvm_bool_t from_heap;
    char *log_dev;             /**< log file or device; NULL: no log (memory only) */
    long truncate;             /**< auto-truncate when the log is this % full; 0: never */
    rvm_length_t recovery_buf_len; /**< bytes read at a time by log walks: at least 16 MiB in truncation, 64 MiB in recovery */
    rvm_length_t flush_buf_len;    /**< no_flush bytes queued before a write-out */
    rvm_length_t max_read_len;     /**< largest single read of a segment */
    rvm_bool_t log_empty;      /**< rvm_query: true when the log holds no records */
    char *pager;               /**< external pager: must be NULL (#RVM_EPAGER) */
    long n_uncommit;           /**< rvm_query: number of uncommitted transactions */
    rvm_tid_t *tid_array;      /**< rvm_query: the uncommitted tids (owned by the record) */
    rvm_length_t flags;        /**< RVM_COALESCE_*, RVM_MAP_PRIVATE */
    rvm_bool_t create_log_file; /**< rvm_initialize: create log_dev if it is missing */
    rvm_offset_t create_log_size; /**< data size of a log made by create_log_file */
    long create_log_mode;      /**< permission bits of a log made by create_log_file */
} rvm_options_t;

/** Allocate an options record with the defaults; NULL when out of memory. */
rvm_options_t *rvm_malloc_options(void);
/** Fill a caller-owned options record with the defaults. */
void rvm_init_options(rvm_options_t *opts);
/** Deep copy (log_dev included); NULL when out of memory. */
rvm_options_t *rvm_copy_options(const rvm_options_t *opts);
/** Free an options record from rvm_malloc_options()/rvm_copy_options(),
 *  with its log_dev and tid_array. */
void rvm_free_options(rvm_options_t *opts);
/**@}*/

/** @name Regions */
/**@{*/
/** A region: a byte range of a segment and the memory it is mapped at. */
typedef struct {
    rvm_struct_id_t struct_id; /**< rvm_region_id */
    rvm_bool_t from_heap;
    char *data_dev;            /**< the segment: a file or block device */
    rvm_offset_t dev_length;   /**< segment length (0: the file's size) */
    rvm_offset_t offset;       /**< the region's offset in the segment; page aligned */
    char *vmaddr;              /**< memory; NULL asks RVM to choose (filled in) */
    rvm_length_t length;       /**< bytes; a page multiple; 0: to the end of the segment */
    rvm_bool_t no_copy;        /**< do not read the segment's bytes at map time */
} rvm_region_t;

/** Allocate a zeroed region record; NULL when out of memory. */
rvm_region_t *rvm_malloc_region(void);
/** Zero a caller-owned region record. */
void rvm_init_region(rvm_region_t *region);
/** Deep copy (data_dev included); NULL when out of memory. */
rvm_region_t *rvm_copy_region(const rvm_region_t *region);
/** Free a region record from rvm_malloc_region()/rvm_copy_region(). */
void rvm_free_region(rvm_region_t *region);
/**@}*/

/** @name Life cycle */
/**@{*/
/**
 * Initialize RVM and recover the log.
 *
 * With opts->log_dev set, the log is opened (created first when
 * opts->create_log_file is true and it is missing) and every committed
 * record in it is applied to its segment file before the call returns:
 * the files (and regions mapped from them) hold the recovered state.
 * The records keep their log space until those writes are synced, which
 * a background thread does right away; the first truncation, flush
 * commit or rvm_flush waits for it (and reports its errors), and a crash
 * before it recovers the same records again.  Should that sync fail, no
 * commit becomes durable in this run: flush commits, rvm_flush and
 * rvm_map return #RVM_EIO, no_flush commits stay in memory, and mapped
 * memory not written since may show the files' older bytes.  Then
 * rvm_terminate() and a new rvm_initialize() recover again.  Recovery stops at the first record that fails its
 * checksum or sequence check; rvm_errmsg() then says where and why.
 * With NULL opts or no log_dev, transactions work in memory only.
 * A second call while initialized returns #RVM_SUCCESS and changes nothing.
 * Each segment with records in flight holds a file descriptor, so the
 * call raises the soft RLIMIT_NOFILE to the hard limit.
 * After rvm_terminate() RVM may be initialized again.
 *
 * @param version must be #RVM_VERSION (use #RVM_INIT).
 * @param opts    options, or NULL for the defaults; not kept.
 * @return #RVM_SUCCESS; #RVM_EVERSION_SKEW, #RVM_EOPTIONS (bad record or
 *   value), #RVM_EPAGER (pager set), #RVM_ENAME_TOO_LONG, #RVM_ELOG (not a
 *   log, or missing), #RVM_ELOG_VERSION_SKEW, #RVM_EIO (read or apply
 *   failed), #RVM_ENO_MEMORY, #RVM_ETHREADS.
 * Thread-safety: call it once before other calls; concurrent calls to it
 * are serialized.
 */
rvm_return_t rvm_initialize(const char *version, rvm_options_t *opts);
#define RVM_INIT(opts) rvm_initialize(RVM_VERSION, (opts))

/**
 * Shut RVM down: flush no_flush commits, stop the truncation thread and
 * close the log.  Mapped memory stays readable; RVM may be initialized
 * again afterwards.
 * @return #RVM_SUCCESS; #RVM_EUNCOMMIT while transactions are open (nothing
 *   is changed); #RVM_EINIT; #RVM_EIO when the final flush fails (RVM
 *   stays initialized, so that the caller may retry), or when the segments
 *   recovery wrote could not be synced (RVM is terminated, and a second
 *   rvm_terminate returns #RVM_ETERMINATED: the records are still in the log,
 *   and the next rvm_initialize() applies them).
 */
rvm_return_t rvm_terminate(void);

/**
 * Change options after initialization: truncate, flags (the coalescing
 * bits; #RVM_MAP_PRIVATE applies to later rvm_map calls), flush_buf_len.
 * A different log_dev is refused.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_EOPTIONS.
 */
rvm_return_t rvm_set_options(rvm_options_t *opts);

/**
 * Report the state: the options in force, log_empty, n_uncommit (the open
 * transactions; with a region, only those with ranges in it) and
 * tid_array (copies of their tids, owned by opts and freed by
 * rvm_free_options, or NULL when there are none).
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_EOPTIONS; #RVM_EREGION (region
 *   given but not mapped); #RVM_ENO_MEMORY.
 */
rvm_return_t rvm_query(rvm_options_t *opts, rvm_region_t *region);

/**
 * Create a log file, preallocated by writing zeros (overwriting
 * preallocated blocks is faster than appending).
 * @param opts     opts->log_dev names the file, which must not exist.
 * @param log_len  the log's data size (at least 64 KiB; rounded to pages).
 * @param mode     permission bits.
 * @return #RVM_SUCCESS; #RVM_EOPTIONS (no log_dev); #RVM_ENAME_TOO_LONG;
 *   #RVM_ELOG (exists or cannot be created); #RVM_ERANGE (too small);
 *   #RVM_EIO (write failed, e.g. ENOSPC: the partial file is removed).
 * Thread-safe; needs no rvm_initialize().
 */
rvm_return_t rvm_create_log(rvm_options_t *opts, rvm_offset_t *log_len, long mode);
/**@}*/

/** @name Mapping */
/**@{*/
/**
 * Map a region of a segment into memory.
 *
 * The segment file is created if missing and extended if shorter than the
 * region.  If region->vmaddr is NULL, RVM chooses page-aligned memory and
 * stores it in region->vmaddr; otherwise it must be page aligned and the
 * bytes are read into it.  If region->length is 0 the region extends to
 * the segment's end and length is filled in.  Records of the segment
 * still in the log are applied first, so the memory shows the latest
 * committed state.  With #RVM_MAP_PRIVATE (in opts->flags or the options
 * in force) the region is a private file mapping read lazily, page by page.
 *
 * @param region the region to map; vmaddr/length filled in.
 * @param opts   NULL, or options whose flags apply to this mapping.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_EREGION (bad record); #RVM_ENAME_TOO_LONG;
 *   #RVM_EOFFSET (offset not page aligned); #RVM_ERANGE (length or vmaddr
 *   not page aligned); #RVM_EOVERLAP (overlaps a mapped region of that
 *   segment); #RVM_EVM_OVERLAP (memory overlaps another region);
 *   #RVM_EIO (segment unreadable); #RVM_ENO_MEMORY.
 */
rvm_return_t rvm_map(rvm_region_t *region, rvm_options_t *opts);

/**
 * Unmap a region.  Committed changes stay in the log (or segment); memory
 * that RVM chose is released, memory the caller gave is left alone.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_EREGION (not a mapped region:
 *   vmaddr and length must match a mapping); #RVM_EUNCOMMIT (an open
 *   transaction has ranges in it).
 */
rvm_return_t rvm_unmap(rvm_region_t *region);
/**@}*/

/** @name Transactions */
/**@{*/
/**
 * Begin a transaction.
 * @param tid  an initialized tid, not active.
 * @param mode #restore (abort possible) or #no_restore.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_ETID (NULL, uninitialized or
 *   active); #RVM_EMODE; #RVM_ENO_MEMORY.
 */
rvm_return_t rvm_begin_transaction(rvm_tid_t *tid, rvm_mode_t mode);

/**
 * Declare that [dest, dest+length) will change in this transaction.  In
 * restore mode the current bytes are saved (once per byte per
 * transaction).  Length 0 is accepted and does nothing.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_ETID; #RVM_ENOT_MAPPED (not inside
 *   one mapped region); #RVM_ENO_MEMORY.
 */
rvm_return_t rvm_set_range(rvm_tid_t *tid, void *dest, rvm_length_t length);

/**
 * rvm_set_range() followed by memmove(dest, src, length).
 * @return as rvm_set_range(); #RVM_ESRC when src is NULL.
 */
rvm_return_t rvm_modify_bytes(rvm_tid_t *tid, void *dest, const void *src,
                              rvm_length_t length);

/**
 * Abort: put back the old bytes of every range and end the transaction.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_ETID; #RVM_EMODE (began
 *   no_restore: the transaction stays active and must be ended);
 *   #RVM_EIO (only after a failed flush commit: its record may be on disk
 *   and the log could not be made to forget it; the transaction stays
 *   active, memory is unchanged, and a later abort retries).
 */
rvm_return_t rvm_abort_transaction(rvm_tid_t *tid);

/**
 * Commit.  With #flush, returns once the transaction (and every earlier
 * commit) is durable; concurrent flush commits share one log force.  With
 * #no_flush, returns at once; the transaction is durable after the next
 * flush.  When the log is full RVM truncates and retries.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_ETID; #RVM_EMODE; #RVM_ETOO_BIG
 *   (larger than the log; the transaction stays active and abortable);
 *   #RVM_EIO (the log write or force failed; the transaction stays active
 *   and abortable, memory is unchanged); #RVM_ENO_MEMORY (likewise).
 */
rvm_return_t rvm_end_transaction(rvm_tid_t *tid, rvm_mode_t mode);

/**
 * Make every no_flush commit durable, in commit order.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_EIO (the commits stay queued and a
 *   later flush retries them).
 */
rvm_return_t rvm_flush(void);

/**
 * Apply every committed log record to its segment, make the segments
 * durable, then free the log space.  Flushes no_flush commits first.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_EIO (the log keeps the records).
 */
rvm_return_t rvm_truncate(void);
/**@}*/

/** @name Names */
/**@{*/
/** Name of a return code ("RVM_ETID"), or "Invalid RVM return code". */
char *rvm_return(rvm_return_t code);
/** Name of a mode ("no_flush"), or "Invalid RVM transaction mode". */
char *rvm_mode(rvm_mode_t mode);
/** Name of a struct id ("rvm_tid_id"), or "Invalid RVM structure type". */
char *rvm_type(rvm_struct_id_t id);
/**@}*/

/** @name Extensions of librvm (not in the classic interface) */
/**@{*/

/**
 * librvm's counters, read by rvm_get_stats().  All are totals since
 * rvm_initialize().
 */
typedef struct {
    uint64_t n_begin;            /**< transactions begun */
    uint64_t n_flush_commit;     /**< committed with flush */
    uint64_t n_no_flush_commit;  /**< committed with no_flush */
    uint64_t n_abort;            /**< aborted */
    uint64_t n_set_range;        /**< rvm_set_range/rvm_modify_bytes calls */
    uint64_t bytes_set_range;    /**< bytes declared, before any optimization */
    uint64_t bytes_after_ranges; /**< after intra-transaction coalescing */
    uint64_t bytes_logged;       /**< new-value bytes written to the log */
    uint64_t log_bytes_written;  /**< all bytes written to the log (headers too) */
    uint64_t n_records;          /**< log records written */
    uint64_t n_flushes;          /**< rvm_flush calls that wrote something */
    uint64_t n_forces;           /**< log forces (fdatasync) */
    uint64_t n_group_commits;    /**< flush commits that shared another's force */
    uint64_t n_truncations;      /**< truncations completed */
    uint64_t n_auto_truncations; /**< of which started by the threshold */
    uint64_t bytes_truncated;    /**< log bytes freed by truncation */
    uint64_t n_recovered_records;/**< records replayed by rvm_initialize */
    uint64_t recovery_usec;      /**< time rvm_initialize spent recovering */
    uint64_t log_size;           /**< log data area, bytes */
    uint64_t log_used;           /**< bytes between head and tail now */
    uint64_t log_records;        /**< records between head and tail now */
    uint64_t no_flush_pending;   /**< no_flush transactions not yet flushed */
} rvm_stats_t;

/**
 * Copy the counters into *stats.
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_ESTATISTICS (stats NULL).
 * Thread-safe; the copy is not one atomic snapshot.
 */
rvm_return_t rvm_get_stats(rvm_stats_t *stats);

/**
 * A human-readable line about the last failure of this thread's last
 * call, or about the last recovery ("recovery stopped at log offset N:
 * checksum mismatch"); "" when there is none.  The string is valid until
 * the thread's next RVM call.  Thread-safe (thread-local).
 */
const char *rvm_errmsg(void);

/**
 * Begin a transaction that needs no rvm_set_range: the program writes
 * mapped regions freely and librvm finds what changed.
 *
 * From the first auto transaction on, every mapped region is
 * write-protected ("armed") until it is unmapped or RVM terminates.  The
 * first write to a page in an auto transaction faults; librvm's signal
 * handler keeps a copy of the page (its twin) for the calling thread's
 * auto transaction and lets the write through.  The protection is
 * userfaultfd write-protect with SIGBUS delivery where the kernel offers
 * it (Linux 6.4 on; a page table change), mprotect with SIGSEGV
 * otherwise, or when the environment variable RVM_AUTO_NO_UFFD is set.  rvm_end_transaction()
 * compares each written page with its twin and declares only the bytes
 * that changed (byte granularity; changed runs closer than 24 bytes are
 * joined); rvm_abort_transaction() copies the twins back.  Manual
 * rvm_set_range() calls may be mixed in and work as usual.
 *
 * Cost: a fault is a signal and two protection changes (5 to 20
 * microseconds on some virtual machines), so a thread's pages stay writable between its
 * auto transactions while no other transaction runs ("parked", at most
 * 32 pages, each diffed at the next commit and protected again once it
 * is found unchanged): a loop that rewrites the same pages faults rarely,
 * one that writes a new page every transaction faults for it every time.
 *
 * Rules: a thread runs at most one auto transaction at a time, and only
 * that thread writes for it.  A page belongs to the first auto
 * transaction that writes it until that one commits or aborts: writes by
 * another thread to the same page meanwhile are committed with it (its
 * commit protects the page before it looks for changes, so a later write
 * faults and belongs to the writer's own transaction), and an abort puts
 * back the page as it was before the owner's first write, undoing them;
 * isolation is the application's business.  A commit takes its place in
 * the log before it lets its pages go, so that a later commit of the
 * same bytes by another transaction comes after it in the log: a fault on
 * those pages, or any transaction that begins meanwhile, waits for that
 * (the time to copy the commit's bytes).  While regions are armed,
 * truncation writes segments through the page cache only (direct writes
 * would drop the write protection of pages the regions share with it).  Writes made outside any
 * transaction to a page parked for a thread are committed with that
 * thread's next auto transaction.  While regions are armed, a write
 * outside an auto transaction faults once per page, which then stays
 * writable until the next auto transaction begins; an auto transaction
 * active meanwhile that writes such a page without having written it
 * before does not see that write (it is not logged): keep writers outside
 * auto transactions off the pages of concurrent auto transactions.
 * System calls that write into a protected page (read(2) into a region)
 * fail with EFAULT: touch the page first.  When regions are armed,
 * librvm makes sure its SIGSEGV and SIGBUS handlers are installed, and
 * passes faults that are not its own to the handlers it replaced.  A
 * program that installs a SIGSEGV or SIGBUS handler while regions are
 * armed must chain to the one it replaces.
 *
 * @param tid  an initialized tid, not active.
 * @param mode #restore or #no_restore.
 * @return as rvm_begin_transaction(); #RVM_EMODE when the thread already
 *   runs an auto transaction; #RVM_ETHREADS when the handler cannot be
 *   installed.
 * Thread-safety: as rvm_begin_transaction().
 */
rvm_return_t rvm_begin_auto_transaction(rvm_tid_t *tid, rvm_mode_t mode);

/**
 * Called by recovery (inside rvm_initialize) and by truncation as records
 * are applied: done is the number of log bytes walked so far, total the
 * most there can be (the log bytes between head and the end of the walk,
 * or the whole log when recovery does not know yet where the records
 * end).  It runs in the thread that applies the records and must not
 * call librvm.
 */
typedef void (*rvm_progress_fn)(uint64_t done, uint64_t total, void *arg);

/**
 * Install (or with NULL remove) the progress callback.  Process-wide; may
 * be called before rvm_initialize().  Thread-safe.
 */
void rvm_set_progress(rvm_progress_fn fn, void *arg);

/** True when the tid is initialized and its transaction is active. */
rvm_bool_t rvm_tid_active(const rvm_tid_t *tid);

/**
 * For regions mapped with #RVM_MAP_PRIVATE: give the whole pages inside
 * [addr, addr + length) new anonymous zero-filled pages, made at once, in
 * place of copies of the segment file's pages, so that writing them costs
 * no read of the file and no copy.  The caller promises that those bytes
 * are zero in memory now, that no one writes them meanwhile, and that the
 * file, with the log applied, holds zeros there too: like any change made
 * without rvm_set_range, zeros the file lacks are lost when the private
 * copies are dropped.  Dropping private copies there later
 * (rvm_release_pages, and librvm's own after a truncation) maps the file
 * again; madvise advice given for those pages is lost then.
 * @return #RVM_SUCCESS; #RVM_ENOT_MAPPED outside a region; #RVM_EMODE for
 *   a region that is not a private mapping, or while regions are armed for
 *   auto transactions; #RVM_ENO_MEMORY when the pages cannot be mapped.
 * Thread-safety: thread-safe.
 */
rvm_return_t rvm_zero_pages(void *addr, rvm_length_t length);

/**
 * For regions mapped with #RVM_MAP_PRIVATE: drop the private copies of the
 * whole pages inside [addr, addr + length), which then read the segment
 * file again.  Only when the file holds every committed byte there (after
 * rvm_flush and rvm_truncate) and no transaction has changed them since:
 * other bytes are lost.
 * While regions are armed for auto transactions, nothing is dropped from a
 * span that meets the stretch of a region from the first to the last page
 * rvm_zero_pages() gave it (the file would be mapped again over that
 * stretch, without write protection), and librvm's own drop after a
 * truncation leaves such regions whole.
 * @return #RVM_SUCCESS; #RVM_ENOT_MAPPED, #RVM_EMODE as rvm_zero_pages
 *   (while armed: only for a span meeting such a stretch; nothing is
 *   dropped then); #RVM_EIO when the file cannot be mapped again (the
 *   pages keep their bytes).
 * Thread-safety: thread-safe.
 */
rvm_return_t rvm_release_pages(void *addr, rvm_length_t length);

/**
 * rvm_release_pages(), and the anonymous pages that rvm_zero_pages() gave
 * the span are kept (up to 128 MiB in all) for later rvm_zero_pages()
 * calls, which clear them rather than take new pages from the system:
 * on virtual machines a page new to the process costs several times its
 * clearing.  For a moment during the call the span reads zeros: the caller
 * keeps every reader and writer of it away until the call returns.
 * @return as rvm_release_pages().
 * Thread-safety: thread-safe.
 */
rvm_return_t rvm_recycle_pages(void *addr, rvm_length_t length);

/**
 * A mark in the order of commits, for rvm_mark_applied(): it stands after
 * every transaction whose rvm_end_transaction() returned before this call.
 * Lets a caller drop private copies (rvm_release_pages) once truncation
 * has written them to the segment files, without forcing and truncating
 * itself.  Marks are of this run of RVM only (they restart at 0).
 * @return #RVM_SUCCESS; #RVM_EINIT; #RVM_ERANGE (mark NULL).
 * Thread-safety: thread-safe.
 */
rvm_return_t rvm_commit_mark(uint64_t *mark);

/**
 * True once every transaction committed before rvm_commit_mark() gave
 * this mark has been applied to its segment file by a completed
 * truncation (the segments synced, the log space freed).  A no_flush
 * commit must be flushed first, by the caller or by librvm's own forces,
 * and the truncation may be librvm's own, past the threshold.  False while
 * RVM is not initialized or has no log.
 * Thread-safety: thread-safe, lock-free.
 */
rvm_bool_t rvm_mark_applied(uint64_t mark);
/**@}*/

#ifdef __cplusplus
}
#endif
#endif /* RVM_RVM_H */
