/*
 * The on-disk format of the RVM log.  docs/log-format.md describes it byte
 * by byte; keep the two in step.  All integers are little-endian (the only
 * byte order librvm runs on is checked at build time).
 *
 * File layout:
 *   [0, S)        status slot 0
 *   [S, 2S)       status slot 1
 *   [2S, 2S + D)  data area: records, written as a circular buffer
 * S is status_size, D is data_size (both in the status block; S and D are
 * multiples of 4096).
 *
 * Positions in the data area are *logical*: a 64-bit byte count that only
 * grows; the physical offset of logical position p is 2S + p % D.
 */
#ifndef RVM_LOG_FORMAT_H
#define RVM_LOG_FORMAT_H

#include <stdint.h>

#define LOG_STATUS_MAGIC 0x53564d52u  /* "RMVS" read as bytes: 'R','M','V','S' */
#define LOG_RECORD_MAGIC 0x52564d52u  /* 'R','M','V','R' */
#define LOG_VERSION 1u

#define LOG_STATUS_SIZE_DEFAULT (256u * 1024u)
#define LOG_MIN_DATA_SIZE (64u * 1024u)
#define LOG_ALIGN 8u

/*
 * Status block.  Written alternately to slot (gen % 2) and forced, so that
 * a torn status write leaves the other slot intact; the valid slot with
 * the larger gen wins.  The dictionary follows the fixed part.
 */
struct log_status {
    uint32_t magic;        /* LOG_STATUS_MAGIC */
    uint32_t version;      /* LOG_VERSION */
    uint64_t gen;          /* +1 on every status write */
    uint64_t status_size;  /* bytes per slot, S */
    uint64_t data_size;    /* bytes of the data area, D */
    uint64_t head;         /* logical position of the oldest live record */
    uint64_t head_seq;     /* sequence number expected at head */
    uint64_t epoch;        /* records of another epoch are not live */
    uint64_t next_seg_id;  /* next segment id to hand out */
    uint32_t n_segs;       /* dictionary entries that follow */
    uint32_t used;         /* bytes of this block in use, fixed part included */
    uint32_t crc;          /* CRC32C of [0, used) with this field zero */
    uint32_t reserved;     /* zero */
};
/* then n_segs times: struct log_dict_entry, path bytes, zero pad to 8 */
struct log_dict_entry {
    uint64_t seg_id;
    uint32_t path_len;     /* without terminator */
    uint32_t reserved;
};

enum log_rec_type {
    LOG_REC_TRANS = 1,  /* one transaction, or a coalesced batch of them */
    LOG_REC_WRAP = 2,   /* nothing more before the end of the data area */
};

/*
 * Record: header, nranges range descriptors, the new bytes of each range
 * in order, zero padding to LOG_ALIGN, then the trailer.  len counts all
 * of it.  A record never straddles the end of the data area: a WRAP
 * record (or, when fewer than LOG_REC_MIN bytes are left, nothing) fills
 * the rest and the next record starts at the beginning.
 */
struct log_rec_hdr {
    uint32_t magic;     /* LOG_RECORD_MAGIC */
    uint16_t type;      /* enum log_rec_type */
    uint16_t flags;     /* LOG_REC_F_* */
    uint64_t seq;       /* consecutive from 1 within the log's life */
    uint64_t epoch;     /* must equal the status epoch */
    uint64_t len;       /* whole record, multiple of LOG_ALIGN */
    uint64_t tid;       /* transaction id (first of a batch) */
    uint32_t nranges;
    uint32_t ntrans;    /* transactions in this record (>1: a batch) */
};
#define LOG_REC_F_BATCH 1u  /* coalesced no_flush batch: all or nothing */

struct log_rec_range {
    uint64_t seg_id;
    uint64_t offset;    /* byte offset in the segment */
    uint64_t len;
};

struct log_rec_trailer {
    uint32_t crc;       /* CRC32C of header through padding */
    uint32_t magic;     /* LOG_RECORD_MAGIC again */
};

#define LOG_REC_MIN (sizeof(struct log_rec_hdr) + sizeof(struct log_rec_trailer))

_Static_assert(sizeof(struct log_status) == 80, "status layout");
_Static_assert(sizeof(struct log_rec_hdr) == 48, "record header layout");
_Static_assert(sizeof(struct log_rec_range) == 24, "range layout");
_Static_assert(sizeof(struct log_rec_trailer) == 8, "trailer layout");
_Static_assert(sizeof(struct log_dict_entry) == 16, "dictionary entry layout");

static inline uint64_t log_align(uint64_t n)
{
    return (n + LOG_ALIGN - 1) & ~(uint64_t)(LOG_ALIGN - 1);
}

#endif
