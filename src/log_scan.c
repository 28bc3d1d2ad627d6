/*
 * Record walking, shared by recovery, truncation and rvmctl.
 */
#include "log_scan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

int log_scan_init(struct log_scan *s, const rvm_io_methods *io, rvm_io_file *f,
                  const struct log_status *st, uint64_t end, size_t buf_want)
{
    memset(s, 0, sizeof *s);
    s->io = io;
    s->f = f;
    s->status_size = st->status_size;
    s->data_size = st->data_size;
    s->epoch = st->epoch;
    s->pos = st->head;
    s->seq = st->head_seq;
    s->end = end;
    s->buf_want = buf_want < 65536 ? 65536 : buf_want;
    ahead_init(&s->rd, io, f);
    return 0;
}

void log_scan_done(struct log_scan *s)
{
    ahead_done(&s->rd);
}

void log_scan_direct(struct log_scan *s, const char *path)
{
    ahead_direct(&s->rd, path);
}

void log_scan_reuse(struct log_scan *s, struct ahead_keep *k)
{
    ahead_reuse(&s->rd, k);
}

#define PREFETCH_MIN (1u << 20)

static const struct ahead_buf *view(const struct log_scan *s)
{
    return &s->rd.b[s->rd.cur];
}

static bool in_view(const struct log_scan *s, uint64_t phys, uint64_t len)
{
    const struct ahead_buf *b = view(s);
    return b->len && phys >= b->off && phys + len <= b->off + b->len;
}

/*
 * A walk in big reads keeps one read in flight: the piece after the one
 * just taken (at the start of the area after its end), unless the walk
 * ends in this one.  The read runs while the walk checks and applies the
 * records it has, so the disk never waits for the CPU.  [phys, phys + n)
 * is the new buffer, phys the position of the record at s->pos.
 */
static void prefetch(struct log_scan *s, uint64_t phys, size_t n)
{
    uint64_t area_start = 2 * s->status_size, area_end = area_start + s->data_size;
    uint64_t next = phys + n;
    if (s->buf_want < PREFETCH_MIN || (s->end != UINT64_MAX && s->pos + n >= s->end))
        return;
    if (area_end - next < LOG_REC_MIN)
        next = area_start;
    size_t want = s->buf_want;
    if (want > area_end - next)
        want = (size_t)(area_end - next);
    ahead_start(&s->rd, next, want);
}

/* Make [phys, phys+len) available in the buffer; returns a pointer or NULL. */
static const unsigned char *scan_read(struct log_scan *s, uint64_t phys, size_t len, int *err)
{
    if (in_view(s, phys, len))
        return view(s)->data + (phys - view(s)->off);
    size_t want = len > s->buf_want ? len : s->buf_want;
    uint64_t area_end = 2 * s->status_size + s->data_size;
    if (phys >= area_end) {
        *err = -EINVAL;
        return NULL;
    }
    if (want > area_end - phys)
        want = (size_t)(area_end - phys);
    if (want < len) {
        *err = -EINVAL;
        return NULL;
    }
    ssize_t n = ahead_get(&s->rd, phys, want);
    if (n < 0) {
        *err = (int)n;
        return NULL;
    }
    prefetch(s, phys, (size_t)n);
    if ((size_t)n < len) {
        *err = -ENODATA;
        return NULL;
    }
    return view(s)->data;
}

bool log_scan_buffered(const struct log_scan *s)
{
    if (s->pos >= s->end)
        return true; /* the walk ends without reading */
    uint64_t in_lap = s->pos % s->data_size;
    uint64_t left = s->data_size - in_lap;
    uint64_t phys = 2 * s->status_size + in_lap;
    struct log_rec_hdr h;
    if (left < LOG_REC_MIN || !in_view(s, phys, sizeof h))
        return false;
    memcpy(&h, view(s)->data + (phys - view(s)->off), sizeof h);
    /* After a wrap record the walk goes on at the start of the area. */
    if (h.type == LOG_REC_WRAP)
        return false;
    /* A length the walk refuses ends it before the record is read. */
    return h.len < LOG_REC_MIN || h.len > left || in_view(s, phys, h.len);
}

#define END(...) do { snprintf(s->why, sizeof s->why, __VA_ARGS__); return 0; } while (0)

int log_scan_next(struct log_scan *s, const unsigned char **rec, size_t *len)
{
    for (;;) {
        if (s->pos >= s->end)
            END("end of the records to apply at position %llu", (unsigned long long)s->pos);
        uint64_t in_lap = s->pos % s->data_size;
        uint64_t left = s->data_size - in_lap;
        if (left < LOG_REC_MIN) {
            s->pos += left;
            continue;
        }
        uint64_t phys = 2 * s->status_size + in_lap;
        int err = 0;
        const unsigned char *p = scan_read(s, phys, sizeof(struct log_rec_hdr), &err);
        if (!p) {
            if (err == -ENODATA)
                END("log file ends early at position %llu", (unsigned long long)s->pos);
            return err;
        }
        struct log_rec_hdr h;
        memcpy(&h, p, sizeof h);
        if (h.magic != LOG_RECORD_MAGIC)
            END("no record at position %llu (seq %llu expected): bad magic",
                (unsigned long long)s->pos, (unsigned long long)s->seq);
        if (h.epoch != s->epoch)
            END("stale record at position %llu: epoch %llu, expected %llu",
                (unsigned long long)s->pos, (unsigned long long)h.epoch,
                (unsigned long long)s->epoch);
        if (h.seq != s->seq)
            END("stale record at position %llu: seq %llu, expected %llu",
                (unsigned long long)s->pos, (unsigned long long)h.seq,
                (unsigned long long)s->seq);
        if (h.type != LOG_REC_TRANS && h.type != LOG_REC_WRAP)
            END("record seq %llu at position %llu: unknown type %u",
                (unsigned long long)h.seq, (unsigned long long)s->pos, h.type);
        if (h.len < LOG_REC_MIN || h.len % LOG_ALIGN || h.len > left ||
            (uint64_t)h.nranges * sizeof(struct log_rec_range) > h.len - LOG_REC_MIN)
            END("record seq %llu at position %llu: bad length %llu",
                (unsigned long long)h.seq, (unsigned long long)s->pos,
                (unsigned long long)h.len);
        p = scan_read(s, phys, (size_t)h.len, &err);
        if (!p) {
            if (err == -ENODATA || err == -EINVAL)
                END("record seq %llu at position %llu: cut short by the end of the file",
                    (unsigned long long)h.seq, (unsigned long long)s->pos);
            return err;
        }
        struct log_rec_trailer t;
        memcpy(&t, p + h.len - sizeof t, sizeof t);
        /* The checksum finds torn and stale records after a crash; one
         * this process forced reads back as written (a seventh of the
         * daemon's CPU under sustained writes was checking them again). */
        bool trusted = s->pos + h.len <= s->trusted_end;
        if (t.magic != LOG_RECORD_MAGIC ||
            (!trusted && t.crc != crc32c(0, p, (size_t)h.len - sizeof t)))
            END("record seq %llu at position %llu: checksum mismatch (torn or corrupt)",
                (unsigned long long)h.seq, (unsigned long long)s->pos);
        /* Range lengths must add up to what the record carries. */
        uint64_t data = 0;
        const unsigned char *rp = p + sizeof h;
        for (uint32_t i = 0; i < h.nranges; i++) {
            struct log_rec_range r;
            memcpy(&r, rp + i * sizeof r, sizeof r);
            if (r.len > h.len || data + r.len > h.len)
                END("record seq %llu at position %llu: range %u too long",
                    (unsigned long long)h.seq, (unsigned long long)s->pos, i);
            data += r.len;
        }
        if (sizeof h + h.nranges * sizeof(struct log_rec_range) + log_align(data) +
                sizeof t != h.len)
            END("record seq %llu at position %llu: ranges do not match its length",
                (unsigned long long)h.seq, (unsigned long long)s->pos);
        s->seq++;
        if (h.type == LOG_REC_WRAP) {
            s->pos += left;
            continue;
        }
        s->pos += h.len;
        s->n_records++;
        *rec = p;
        *len = (size_t)h.len;
        return 1;
    }
}

int log_status_check(const unsigned char *slot, size_t slot_size, char *why, size_t why_len)
{
    struct log_status st;
    memcpy(&st, slot, sizeof st);
    if (st.magic != LOG_STATUS_MAGIC) {
        snprintf(why, why_len, "bad status magic");
        return -EINVAL;
    }
    if (st.version != LOG_VERSION) {
        snprintf(why, why_len, "log version %u, expected %u", st.version, LOG_VERSION);
        return -EPROTO;
    }
    if (st.used < sizeof st || st.used > slot_size || st.status_size != slot_size) {
        snprintf(why, why_len, "bad status size");
        return -EINVAL;
    }
    uint32_t want = st.crc;
    st.crc = 0;
    uint32_t crc = crc32c(0, &st, sizeof st);
    crc = crc32c(crc, slot + sizeof st, st.used - sizeof st);
    if (crc != want) {
        snprintf(why, why_len, "status checksum mismatch");
        return -EINVAL;
    }
    /* Bounded so that 2 * status_size + data_size cannot wrap. */
    if (st.data_size < LOG_MIN_DATA_SIZE || st.data_size % 4096 ||
        st.data_size > (UINT64_MAX >> 2)) {
        snprintf(why, why_len, "bad data size");
        return -EINVAL;
    }
    return 0;
}
