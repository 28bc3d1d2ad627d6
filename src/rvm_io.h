/*
 * The I/O layer under librvm.  Every byte librvm reads from or writes to
 * the log and to segments goes through the methods below, so that tests
 * can swap in a layer that loses unsynced writes, tears the last write,
 * or fails with EIO/ENOSPC (tests/fault_io.c does exactly that).
 *
 * All methods return 0 or a byte count on success and -errno on failure;
 * they never print.  Short reads at end of file return the bytes read.
 */
#ifndef RVM_IO_H
#define RVM_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct rvm_io_file rvm_io_file;

typedef struct rvm_io_methods {
    /* flags: O_RDWR | O_CREAT | O_EXCL as for open(2). */
    int (*open)(const char *path, int flags, mode_t mode, rvm_io_file **out);
    ssize_t (*pread)(rvm_io_file *f, void *buf, size_t len, uint64_t off);
    /* Must write all of len or fail. */
    ssize_t (*pwrite)(rvm_io_file *f, const void *buf, size_t len, uint64_t off);
    /* Durability point: after it returns 0, every write before it is stable. */
    int (*sync)(rvm_io_file *f);
    int (*size)(rvm_io_file *f, uint64_t *out);
    /* Grow (or shrink) a regular file. */
    int (*resize)(rvm_io_file *f, uint64_t size);
    int (*close)(rvm_io_file *f);
    /* The descriptor behind f, for mmap of segments; -1 if there is none. */
    int (*fd)(rvm_io_file *f);
    /* Optional (NULL: none).  A write that bypasses the page cache: buf,
     * len and off are multiples of RVM_IO_DIRECT_ALIGN.  Stable only after
     * sync, like pwrite.  -EOPNOTSUPP when the file cannot take one (the
     * caller then writes through pwrite).  Callers must not have buffered
     * writes of the same pages in flight from other threads. */
    ssize_t (*pwrite_direct)(rvm_io_file *f, const void *buf, size_t len, uint64_t off);
} rvm_io_methods;

#define RVM_IO_DIRECT_ALIGN 4096u

/* The methods in force; the POSIX ones unless a test installed others. */
const rvm_io_methods *rvm_io(void);

/* The plain POSIX methods (for a fault layer to wrap). */
const rvm_io_methods *rvm_io_posix(void);

/*
 * Install other methods (NULL: back to POSIX).  Only while RVM is not
 * initialized: files already open keep the methods they were opened with.
 */
void rvm_io_set(const rvm_io_methods *m);

#endif
