/*
 * logread: a read-only parser of the RVM log (src/log_format.h,
 * docs/log-format.md) for rvmctl.  It shares no code with librvm's own
 * scanner on purpose except the CRC32C routine: rvmctl is the second
 * opinion on what a log holds.  It never writes to the log.
 *
 * Functions return 0 or -1; on -1, lr->err holds a one-line reason.
 */
#ifndef RVMCTL_LOGREAD_H
#define RVMCTL_LOGREAD_H

#include <stddef.h>
#include <stdint.h>

#include "log_format.h"

struct logread_seg {
    uint64_t id;
    char *path;       /* as stored in the dictionary */
};

struct logread {
    int fd;
    char *path;
    uint64_t file_size;
    struct log_status st;       /* fixed part of the slot in force */
    int slot;                   /* 0 or 1 */
    int other_valid;            /* the other slot checks too */
    uint64_t other_gen;
    struct logread_seg *segs;
    uint32_t nsegs;
    char err[512];
};

/* One record, as handed to a logread_scan() callback (valid during it). */
struct logread_rec {
    uint64_t pos;                       /* logical position */
    uint64_t phys;                      /* byte offset in the log file */
    struct log_rec_hdr hdr;
    const struct log_rec_range *ranges; /* hdr.nranges of them */
    const unsigned char *data;          /* new bytes of all ranges in order */
};

enum logread_end {
    LOGREAD_END_CLEAN,   /* the next position holds no record of this life */
    LOGREAD_END_FULL,    /* the records fill the whole data area */
    LOGREAD_END_TORN,    /* a record fails its checks; nothing valid after it */
    LOGREAD_END_CORRUPT, /* a record fails its checks; valid ones follow it */
};

struct logread_result {
    uint64_t records;        /* valid records from head, wrap records included */
    uint64_t wraps;          /* of which LOG_REC_WRAP */
    uint64_t transactions;   /* sum of ntrans over TRANS records */
    uint64_t ranges;
    uint64_t range_bytes;    /* new-value bytes */
    uint64_t tail;           /* logical position after the last valid record */
    uint64_t next_seq;       /* sequence number expected at tail */
    enum logread_end end;
    uint64_t bad_pos;        /* TORN/CORRUPT: logical position of the bad record */
    uint64_t bad_phys;
    char bad_reason[128];    /* e.g. "checksum mismatch" */
    struct log_rec_hdr bad_hdr; /* the bad record's header as read */
    uint64_t later_seq;      /* CORRUPT: sequence number of a valid later record */
    uint64_t later_pos;
};

/* Open a log read-only and load the newer valid status slot. */
int logread_open(struct logread *lr, const char *path);
void logread_close(struct logread *lr);

/* Dictionary path of a segment id, or NULL. */
const char *logread_seg_path(const struct logread *lr, uint64_t id);

/*
 * Walk the live records from head.  cb (may be NULL) sees each valid
 * record in order; a nonzero return stops the walk (logread_scan then
 * returns that value).  Returns 0 after a full walk, -1 on an I/O error.
 */
typedef int (*logread_cb)(const struct logread_rec *rec, void *arg);
int logread_scan(struct logread *lr, logread_cb cb, void *arg,
                 struct logread_result *res);

/* CRC32C (Castagnoli) as the log uses it: crc32c(0, "123456789", 9) ==
 * 0xE3069283; pass a previous result as crc to continue. */
uint32_t logread_crc32c(uint32_t crc, const void *buf, size_t len);

#endif
