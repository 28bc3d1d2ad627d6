/*
 * logread: the read-only log parser of rvmctl.  See logread.h and
 * docs/log-format.md.
 */
#include "logread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef RVMCTL_LIB_CRC32C
/* librvm's CRC32C (src/crc32c.c), SSE4.2 when the CPU has it. */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

uint32_t logread_crc32c(uint32_t crc, const void *buf, size_t len)
{
    return crc32c(crc, buf, len);
}
#else
/* Reflected polynomial 0x82F63B78, init ~0, final xor ~0. */
static uint32_t crc_table[256];

uint32_t logread_crc32c(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;

    if (crc_table[1] == 0) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
            crc_table[i] = c;
        }
    }
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}
#endif

static int fail(struct logread *lr, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(lr->err, sizeof lr->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* Read exactly len bytes at off; -1 with lr->err set otherwise. */
static int read_at(struct logread *lr, void *buf, size_t len, uint64_t off)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = pread(lr->fd, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(lr, "cannot read %s at offset %llu: %s", lr->path,
                        (unsigned long long)(off + done), strerror(errno));
        if (n == 0)
            return fail(lr, "%s ends at offset %llu, inside its own layout "
                        "(truncated file?)", lr->path,
                        (unsigned long long)(off + done));
        done += (size_t)n;
    }
    return 0;
}

static void free_segs(struct logread_seg *segs, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(segs[i].path);
    free(segs);
}

/*
 * Check one status slot of S bytes at off.  Returns 1 if it is valid (st,
 * segs and nsegs filled in), 0 if not (why in reason), -1 on I/O error.
 */
static int slot_load(struct logread *lr, uint64_t off, uint64_t S,
                     struct log_status *st, struct logread_seg **segs,
                     uint32_t *nsegs, char *reason, size_t rlen)
{
    unsigned char *buf;
    uint32_t crc;
    uint64_t p;
    struct logread_seg *sv = NULL;

    if (off + S > lr->file_size) {
        snprintf(reason, rlen, "the file is too short for it");
        return 0;
    }
    buf = malloc(S);
    if (!buf)
        return fail(lr, "out of memory reading the status block");
    if (read_at(lr, buf, S, off) < 0) {
        free(buf);
        return -1;
    }
    memcpy(st, buf, sizeof *st);
    if (st->magic != LOG_STATUS_MAGIC) {
        snprintf(reason, rlen, "bad magic");
        goto invalid;
    }
    if (st->used < sizeof *st || st->used > S) {
        snprintf(reason, rlen, "bad length %u", st->used);
        goto invalid;
    }
    memset(buf + offsetof(struct log_status, crc), 0, sizeof st->crc);
    crc = logread_crc32c(0, buf, st->used);
    if (crc != st->crc) {
        snprintf(reason, rlen, "checksum mismatch (stored %08x, computed %08x)",
                 st->crc, crc);
        goto invalid;
    }
    if (st->version != LOG_VERSION) {
        snprintf(reason, rlen, "format version %u (this rvmctl reads %u)",
                 st->version, LOG_VERSION);
        goto invalid;
    }
    if (st->status_size != S || st->data_size < LOG_MIN_DATA_SIZE ||
        st->data_size % 4096 || 2 * S + st->data_size > lr->file_size) {
        snprintf(reason, rlen, "sizes do not fit the file (S=%llu D=%llu)",
                 (unsigned long long)st->status_size,
                 (unsigned long long)st->data_size);
        goto invalid;
    }
    sv = calloc(st->n_segs ? st->n_segs : 1, sizeof *sv);
    if (!sv) {
        free(buf);
        return fail(lr, "out of memory reading the segment dictionary");
    }
    p = sizeof *st;
    for (uint32_t i = 0; i < st->n_segs; i++) {
        struct log_dict_entry e;

        if (p + sizeof e > st->used) {
            snprintf(reason, rlen, "dictionary entry %u past the block's end", i);
            goto invalid_dict;
        }
        memcpy(&e, buf + p, sizeof e);
        p += sizeof e;
        if (p + e.path_len > st->used) {
            snprintf(reason, rlen, "dictionary path %u past the block's end", i);
            goto invalid_dict;
        }
        sv[i].id = e.seg_id;
        sv[i].path = strndup((char *)buf + p, e.path_len);
        if (!sv[i].path) {
            free_segs(sv, i);
            free(buf);
            return fail(lr, "out of memory reading the segment dictionary");
        }
        p += log_align(e.path_len);
    }
    free(buf);
    *segs = sv;
    *nsegs = st->n_segs;
    return 1;

invalid_dict:
    free_segs(sv, st->n_segs);
invalid:
    free(buf);
    return 0;
}

int logread_open(struct logread *lr, const char *path)
{
    struct stat sb;
    struct log_status head, st[2];
    struct logread_seg *segs[2] = {NULL, NULL};
    uint32_t nsegs[2] = {0, 0};
    char why[2][160];
    int ok[2];
    uint64_t S;

    memset(lr, 0, sizeof *lr);
    lr->fd = -1;
    lr->path = strdup(path);
    if (!lr->path)
        return fail(lr, "out of memory");
    lr->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (lr->fd < 0)
        return fail(lr, "cannot open %s: %s", path, strerror(errno));
    if (fstat(lr->fd, &sb) < 0)
        return fail(lr, "cannot stat %s: %s", path, strerror(errno));
    lr->file_size = (uint64_t)sb.st_size;
    if (S_ISBLK(sb.st_mode)) {
        off_t end = lseek(lr->fd, 0, SEEK_END);
        if (end < 0)
            return fail(lr, "cannot size %s: %s", path, strerror(errno));
        lr->file_size = (uint64_t)end;
    }
    if (lr->file_size < sizeof head)
        return fail(lr, "%s is not an RVM log (only %llu bytes)", path,
                    (unsigned long long)lr->file_size);

    /*
     * Slot 0 names S; if slot 0 is torn its size field cannot be trusted,
     * so fall back to the default S for finding slot 1.
     */
    if (read_at(lr, &head, sizeof head, 0) < 0)
        return -1;
    S = LOG_STATUS_SIZE_DEFAULT;
    if (head.magic == LOG_STATUS_MAGIC && head.status_size >= 4096 &&
        head.status_size % 4096 == 0 && 2 * head.status_size <= lr->file_size)
        S = head.status_size;
    for (int i = 0; i < 2; i++) {
        ok[i] = slot_load(lr, i * S, S, &st[i], &segs[i], &nsegs[i],
                          why[i], sizeof why[i]);
        if (ok[i] < 0) {
            if (i == 1)
                free_segs(segs[0], nsegs[0]);
            return -1;
        }
    }
    if (!ok[0] && !ok[1]) {
        if (head.magic == LOG_STATUS_MAGIC && head.version != LOG_VERSION)
            return fail(lr, "%s was written by log format version %u; this "
                        "rvmctl reads version %u", path, head.version,
                        LOG_VERSION);
        if (head.magic != LOG_STATUS_MAGIC && st[1].magic != LOG_STATUS_MAGIC)
            return fail(lr, "%s is not an RVM log (no status block magic)", path);
        return fail(lr, "%s: both status blocks are damaged (slot 0: %s; "
                    "slot 1: %s)", path, why[0], why[1]);
    }
    lr->slot = (ok[1] && (!ok[0] || st[1].gen > st[0].gen)) ? 1 : 0;
    lr->st = st[lr->slot];
    lr->segs = segs[lr->slot];
    lr->nsegs = nsegs[lr->slot];
    lr->other_valid = ok[!lr->slot];
    lr->other_gen = st[!lr->slot].gen;
    free_segs(segs[!lr->slot], nsegs[!lr->slot]);
    return 0;
}

void logread_close(struct logread *lr)
{
    if (lr->fd >= 0)
        close(lr->fd);
    free_segs(lr->segs, lr->nsegs);
    free(lr->path);
    lr->fd = -1;
    lr->segs = NULL;
    lr->path = NULL;
}

const char *logread_seg_path(const struct logread *lr, uint64_t id)
{
    for (uint32_t i = 0; i < lr->nsegs; i++)
        if (lr->segs[i].id == id)
            return lr->segs[i].path;
    return NULL;
}

static uint64_t phys_of(const struct logread *lr, uint64_t pos)
{
    return 2 * lr->st.status_size + pos % lr->st.data_size;
}

enum rec_check { REC_OK, REC_END, REC_BAD };

/*
 * Check the record that should start at pos with sequence number seq (with
 * any_later, any sequence number from seq on is accepted).
 * REC_OK: *out is a malloc'd copy of the whole record.  REC_END: no record
 * of this life starts here.  REC_BAD: one does, but it fails (why in
 * reason).  -1: I/O error.
 */
static int rec_check(struct logread *lr, uint64_t pos, uint64_t seq,
                     uint64_t limit, int any_later, unsigned char **out,
                     char *reason, size_t rlen)
{
    const uint64_t D = lr->st.data_size;
    uint64_t room = D - pos % D;
    struct log_rec_hdr h;
    struct log_rec_trailer t;
    unsigned char *buf;
    uint64_t need;
    uint32_t crc;

    *out = NULL;
    if (read_at(lr, &h, sizeof h, phys_of(lr, pos)) < 0)
        return -1;
    if (h.magic != LOG_RECORD_MAGIC || h.epoch != lr->st.epoch)
        return REC_END;
    /* A lower sequence number: a stale record of an earlier lap.  A
     * higher one where seq is due: nothing but damage puts it there. */
    if (h.seq < seq)
        return REC_END;
    if (h.seq != seq && !any_later) {
        snprintf(reason, rlen, "sequence number %llu where %llu is due",
                 (unsigned long long)h.seq, (unsigned long long)seq);
        return REC_BAD;
    }
    if (h.len < LOG_REC_MIN || h.len % LOG_ALIGN || h.len > room ||
        pos + h.len > limit) {
        snprintf(reason, rlen, "bad record length %llu",
                 (unsigned long long)h.len);
        return REC_BAD;
    }
    if (h.type != LOG_REC_TRANS && h.type != LOG_REC_WRAP) {
        snprintf(reason, rlen, "unknown record type %u", h.type);
        return REC_BAD;
    }
    need = sizeof h + (uint64_t)h.nranges * sizeof(struct log_rec_range);
    if (need > h.len - sizeof t) {
        snprintf(reason, rlen, "%u ranges do not fit in %llu bytes",
                 h.nranges, (unsigned long long)h.len);
        return REC_BAD;
    }
    buf = malloc(h.len);
    if (!buf)
        return fail(lr, "out of memory (record of %llu bytes)",
                    (unsigned long long)h.len);
    if (read_at(lr, buf, h.len, phys_of(lr, pos)) < 0) {
        free(buf);
        return -1;
    }
    memcpy(&t, buf + h.len - sizeof t, sizeof t);
    crc = logread_crc32c(0, buf, h.len - sizeof t);
    if (t.magic != LOG_RECORD_MAGIC) {
        snprintf(reason, rlen, "bad trailer magic");
        goto bad;
    }
    if (crc != t.crc) {
        snprintf(reason, rlen, "checksum mismatch (stored %08x, computed %08x)",
                 t.crc, crc);
        goto bad;
    }
    {
        /* The ranges' bytes, padded, must fill the record exactly. */
        const struct log_rec_range *r = (const void *)(buf + sizeof h);
        uint64_t sum = 0;

        for (uint32_t i = 0; i < h.nranges; i++) {
            if (r[i].len > h.len || (sum += r[i].len) > h.len) {
                snprintf(reason, rlen, "range bytes overrun the record");
                goto bad;
            }
        }
        if (need + log_align(sum) + sizeof t != h.len) {
            snprintf(reason, rlen, "ranges do not match the record length");
            goto bad;
        }
    }
    *out = buf;
    return REC_OK;
bad:
    free(buf);
    return REC_BAD;
}

/*
 * After a bad record at pos: is there a valid record of this life with a
 * later sequence number anywhere up to limit?  Then the damage is in the
 * middle of the log (corruption), not an interrupted last write.
 */
static int find_later(struct logread *lr, uint64_t pos, uint64_t seq,
                      uint64_t limit, struct logread_result *res)
{
    const uint64_t D = lr->st.data_size;
    const size_t chunk = 1u << 20;
    unsigned char *buf = malloc(chunk);
    int found = 0;

    if (!buf)
        return fail(lr, "out of memory");
    for (uint64_t p = pos + LOG_ALIGN; p < limit && !found;) {
        uint64_t room = D - p % D;
        size_t n = chunk;

        if (n > room)
            n = room;
        if (n > limit - p)
            n = limit - p;
        if (read_at(lr, buf, n, phys_of(lr, p)) < 0) {
            free(buf);
            return -1;
        }
        for (size_t i = 0; i + sizeof(uint32_t) <= n; i += LOG_ALIGN) {
            uint32_t magic;
            unsigned char *rec;
            char why[128];
            int rc;

            memcpy(&magic, buf + i, sizeof magic);
            if (magic != LOG_RECORD_MAGIC || D - (p + i) % D < LOG_REC_MIN)
                continue;
            rc = rec_check(lr, p + i, seq + 1, limit, 1, &rec, why, sizeof why);
            if (rc < 0) {
                free(buf);
                return -1;
            }
            if (rc == REC_OK) {
                struct log_rec_hdr h;

                memcpy(&h, rec, sizeof h);
                free(rec);
                res->later_seq = h.seq;
                res->later_pos = p + i;
                found = 1;
                break;
            }
        }
        p += n;
    }
    free(buf);
    return found;
}

int logread_scan(struct logread *lr, logread_cb cb, void *arg,
                 struct logread_result *res)
{
    const uint64_t D = lr->st.data_size;
    const uint64_t limit = lr->st.head + D;
    uint64_t pos = lr->st.head, seq = lr->st.head_seq;

    memset(res, 0, sizeof *res);
    for (;;) {
        struct logread_rec r;
        unsigned char *buf;
        char why[128] = "";
        int rc;

        if (D - pos % D < LOG_REC_MIN)      /* too little room: skipped */
            pos += D - pos % D;
        if (pos + LOG_REC_MIN > limit) {
            res->end = LOGREAD_END_FULL;
            break;
        }
        rc = rec_check(lr, pos, seq, limit, 0, &buf, why, sizeof why);
        if (rc < 0)
            return -1;
        if (rc == REC_END) {
            res->end = LOGREAD_END_CLEAN;
            break;
        }
        if (rc == REC_BAD) {
            res->bad_pos = pos;
            res->bad_phys = phys_of(lr, pos);
            snprintf(res->bad_reason, sizeof res->bad_reason, "%s", why);
            if (read_at(lr, &res->bad_hdr, sizeof res->bad_hdr, res->bad_phys) < 0)
                return -1;
            rc = find_later(lr, pos, seq, limit, res);
            if (rc < 0)
                return -1;
            res->end = rc ? LOGREAD_END_CORRUPT : LOGREAD_END_TORN;
            break;
        }
        memcpy(&r.hdr, buf, sizeof r.hdr);
        r.pos = pos;
        r.phys = phys_of(lr, pos);
        r.ranges = (const void *)(buf + sizeof r.hdr);
        r.data = buf + sizeof r.hdr +
                 (r.hdr.type == LOG_REC_TRANS ? r.hdr.nranges : 0) *
                 sizeof(struct log_rec_range);
        res->records++;
        if (r.hdr.type == LOG_REC_WRAP) {
            res->wraps++;
        } else {
            res->transactions += r.hdr.ntrans;
            res->ranges += r.hdr.nranges;
            for (uint32_t i = 0; i < r.hdr.nranges; i++)
                res->range_bytes += r.ranges[i].len;
        }
        /* After a WRAP record the rest of the lap is unused. */
        pos += r.hdr.type == LOG_REC_WRAP ? D - pos % D : r.hdr.len;
        seq++;
        res->tail = pos;
        res->next_seq = seq;
        if (cb && (rc = cb(&r, arg)) != 0) {
            free(buf);
            return rc;
        }
        free(buf);
    }
    if (res->records == 0) {
        res->tail = lr->st.head;
        res->next_seq = lr->st.head_seq;
    }
    return 0;
}
