/*
 * The recovery fuzzer's entry; see fuzz_recovery.h.
 */
#include "fuzz_recovery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "log_format.h"
#include "memio.h"
#include "rvm/rvm.h"
#include "rvm_io.h"

#define S LOG_STATUS_SIZE_DEFAULT
#define MAX_D (1u << 20)

static void fix_status(unsigned char *slot)
{
    struct log_status st;
    memcpy(&st, slot, sizeof st);
    if (st.used < sizeof st || st.used > S)
        return;
    st.crc = 0;
    memcpy(slot, &st, sizeof st);
    uint32_t crc = crc32c(0, slot, st.used);
    memcpy(slot + offsetof(struct log_status, crc), &crc, sizeof crc);
}

/* Make the records from head on check, as far as their lengths allow. */
static void fix_records(unsigned char *file, uint64_t D, bool set_seq)
{
    struct log_status st;
    memcpy(&st, file, sizeof st);
    uint64_t pos = st.head, seq = st.head_seq;
    for (int n = 0; n < 4096; n++) {
        uint64_t in_lap = pos % D, left = D - in_lap;
        if (left < LOG_REC_MIN) {
            pos += left;
            continue;
        }
        unsigned char *p = file + 2 * S + in_lap;
        struct log_rec_hdr h;
        memcpy(&h, p, sizeof h);
        if (h.magic != LOG_RECORD_MAGIC || h.len < LOG_REC_MIN || h.len % LOG_ALIGN ||
            h.len > left)
            return;
        if (set_seq) {
            h.seq = seq;
            h.epoch = st.epoch;
            memcpy(p, &h, sizeof h);
        }
        struct log_rec_trailer t = {.crc = crc32c(0, p, (size_t)h.len - sizeof t),
                                    .magic = LOG_RECORD_MAGIC};
        memcpy(p + h.len - sizeof t, &t, sizeof t);
        seq++;
        pos += h.type == LOG_REC_WRAP ? left : h.len;
    }
}

/* The log file the input describes, in memio. */
static int build_log(const uint8_t *data, size_t size, uint8_t *flags_out)
{
    uint8_t flags = size ? data[0] : FZ_RAW;
    *flags_out = flags;
    if (flags & FZ_RAW || size < 3)
        return memio_put(FUZZ_LOG_PATH, size ? data + 1 : data, size ? size - 1 : 0);
    size_t nst = (size_t)data[1] | (size_t)data[2] << 8;
    if (nst > size - 3)
        nst = size - 3;
    if (nst > 8192)
        nst = 8192;
    const uint8_t *status = data + 3, *rest = status + nst;
    size_t nrest = size - 3 - nst;
    uint64_t D = LOG_MIN_DATA_SIZE;
    struct log_status st = {0};
    memcpy(&st, status, nst < sizeof st ? nst : sizeof st);
    if (st.data_size >= LOG_MIN_DATA_SIZE && st.data_size <= MAX_D && st.data_size % 4096 == 0)
        D = st.data_size;
    if (nrest > D)
        nrest = (size_t)D;
    size_t flen = (size_t)(2 * S + D);
    unsigned char *file = calloc(1, flen);
    if (!file)
        return -1;
    memcpy(file, status, nst);
    memcpy(file + 2 * S, rest, nrest);
    if (flags & FZ_FIX_STATUS)
        fix_status(file);
    if (flags & FZ_SLOT1)
        memcpy(file + S, file, S);
    if (flags & FZ_FIX_RECORDS)
        fix_records(file, D, flags & FZ_FIX_SEQ);
    if (flags & FZ_SHORT)
        flen = (size_t)(2 * S) + nrest;
    int rc = memio_put(FUZZ_LOG_PATH, file, flen);
    free(file);
    return rc;
}

int fuzz_recovery_one(const uint8_t *data, size_t size)
{
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    uint8_t flags;
    memio_reset(false);
    if (build_log(data, size, &flags) < 0)
        return 0;
    memio_reset_auto(flags & FZ_SEGS);
    rvm_io_set(memio_methods());
    rvm_options_t o;
    rvm_init_options(&o);
    o.log_dev = (char *)FUZZ_LOG_PATH;
    o.truncate = 0;
    rvm_return_t rc = RVM_INIT(&o);
    if (verbose) {
        rvm_stats_t st = {0};
        if (rc == RVM_SUCCESS)
            rvm_get_stats(&st);
        fprintf(stderr, "fuzz: %s, %llu records: %s\n", rvm_return(rc),
                (unsigned long long)st.n_recovered_records, rvm_errmsg());
    }
    if (rc != RVM_SUCCESS) {
        /* Garbage must be refused with a code and a message that says why. */
        /* No input here needs more than a few MiB: RVM_ENO_MEMORY means
         * a size taken from the log unchecked. */
        if (!rvm_errmsg()[0] || (rc != RVM_ELOG && rc != RVM_ELOG_VERSION_SKEW &&
                                 rc != RVM_EIO)) {
            fprintf(stderr, "fuzz: recovery failed with %s and message \"%s\"\n",
                    rvm_return(rc), rvm_errmsg());
            abort();
        }
    } else {
        rvm_stats_t s1;
        rvm_get_stats(&s1);
        if (rvm_terminate() != RVM_SUCCESS)
            abort();
        /* Recovery empties the log: a second one finds nothing. */
        rc = RVM_INIT(&o);
        rvm_stats_t s2;
        rvm_get_stats(&s2);
        if (rc != RVM_SUCCESS || s2.n_recovered_records != 0) {
            fprintf(stderr, "fuzz: second recovery: %s, %llu records (first: %llu): %s\n",
                    rvm_return(rc), (unsigned long long)s2.n_recovered_records,
                    (unsigned long long)s1.n_recovered_records, rvm_errmsg());
            abort();
        }
        rvm_terminate();
    }
    rvm_io_set(NULL);
    memio_reset(false);
    return 0;
}

size_t fuzz_encode(uint8_t flags, const void *status, size_t n_status, const void *data,
                   size_t n_data, uint8_t *out, size_t out_cap)
{
    size_t need = 3 + n_status + n_data;
    if (need > out_cap || n_status > 0xffff)
        return 0;
    out[0] = flags;
    out[1] = (uint8_t)(n_status & 0xff);
    out[2] = (uint8_t)(n_status >> 8);
    memcpy(out + 3, status, n_status);
    memcpy(out + 3 + n_status, data, n_data);
    return need;
}
