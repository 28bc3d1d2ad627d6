/*
 * rvmctl status (of a store) and rvmctl log: read the log with logread,
 * never write it.
 */
#include "rvmctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "logread.h"

static const char *end_name(enum logread_end e)
{
    switch (e) {
    case LOGREAD_END_CLEAN: return "clean";
    case LOGREAD_END_FULL: return "full";
    case LOGREAD_END_TORN: return "torn";
    case LOGREAD_END_CORRUPT: return "corrupt";
    }
    return "?";
}

/* Open and walk the log of store; 0, or an exit status after an error. */
static int open_scan(const char *store, const char *log_opt, char *log,
                     size_t loglen, struct logread *lr, logread_cb cb,
                     void *arg, struct logread_result *res)
{
    int rv = ctl_store_log(store, log_opt, log, loglen);

    if (rv)
        return rv;
    if (logread_open(lr, log) < 0) {
        ctl_err("%s", lr->err);
        logread_close(lr);
        return EXIT_FAIL;
    }
    rv = logread_scan(lr, cb, arg, res);
    if (rv < 0) {
        ctl_err("%s", lr->err);
        logread_close(lr);
        return EXIT_FAIL;
    }
    return rv;
}

static int report_corrupt(const char *store, const struct logread_result *res)
{
    return ctl_err("the log of %s is damaged at log position %llu (%s); valid "
                   "records follow from seq %llu and recovery would drop "
                   "them; see 'rvmctl log %s', then 'rvmctl recover --force "
                   "%s' to keep the records before it",
                   store, (unsigned long long)res->bad_pos, res->bad_reason,
                   (unsigned long long)res->later_seq, store, store);
}

int status_store(const char *store, const char *log_opt)
{
    char log[PATH_MAX];
    struct logread lr;
    struct logread_result res;
    uint64_t used;
    int rv;

    rv = open_scan(store, log_opt, log, sizeof log, &lr, NULL, NULL, &res);
    if (rv)
        return rv;
    used = res.tail - lr.st.head;
    printf("store=%s\n", store);
    printf("log=%s\n", log);
    printf("log_size=%llu\n", (unsigned long long)lr.st.data_size);
    printf("status_size=%llu\n", (unsigned long long)lr.st.status_size);
    printf("used=%llu\n", (unsigned long long)used);
    printf("used_pct=%.1f\n", 100.0 * (double)used / (double)lr.st.data_size);
    printf("records=%llu\n", (unsigned long long)(res.records - res.wraps));
    printf("wrap_records=%llu\n", (unsigned long long)res.wraps);
    printf("transactions=%llu\n", (unsigned long long)res.transactions);
    printf("ranges=%llu\n", (unsigned long long)res.ranges);
    printf("range_bytes=%llu\n", (unsigned long long)res.range_bytes);
    printf("head=%llu\n", (unsigned long long)lr.st.head);
    printf("tail=%llu\n", (unsigned long long)res.tail);
    printf("head_seq=%llu\n", (unsigned long long)lr.st.head_seq);
    printf("next_seq=%llu\n", (unsigned long long)res.next_seq);
    printf("epoch=%llu\n", (unsigned long long)lr.st.epoch);
    printf("status_gen=%llu\n", (unsigned long long)lr.st.gen);
    printf("status_slot=%d\n", lr.slot);
    printf("status_other_slot=%s\n", lr.other_valid ? "valid" : "invalid");
    printf("segments=%u\n", lr.nsegs);
    printf("next_seg_id=%llu\n", (unsigned long long)lr.st.next_seg_id);
    printf("end=%s\n", end_name(res.end));
    if (res.end == LOGREAD_END_TORN || res.end == LOGREAD_END_CORRUPT) {
        printf("bad_pos=%llu\n", (unsigned long long)res.bad_pos);
        printf("bad_reason=%s\n", res.bad_reason);
    }
    logread_close(&lr);
    if (res.end == LOGREAD_END_CORRUPT)
        return report_corrupt(store, &res);
    return EXIT_OK;
}

int cmd_status(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *log_opt = NULL, *path;
    struct stat sb;
    int opt;

    while ((opt = getopt_long(argc, argv, ":l:h", lopts, NULL)) != -1) {
        if (opt == 'l')
            log_opt = optarg;
        else
            return ctl_common_opt("status", opt, argv);
    }
    if (optind != argc - 1)
        return ctl_usage("status", optind == argc ? "give a STORE or a "
                         "MOUNTPOINT" : "give exactly one STORE or MOUNTPOINT");
    path = argv[optind];
    if (stat(path, &sb) < 0)
        return ctl_err("cannot open %s: %s; give a store made by 'rvmctl init' "
                       "or an rvmfs mount point", path, strerror(errno));
    if (log_opt || S_ISREG(sb.st_mode) || ctl_is_store(path))
        return status_store(path, log_opt);
    if (ctl_is_mount(path))
        return status_mount(path);
    return ctl_err("%s is neither an rvmfs store (no %s in it) nor an rvmfs "
                   "mount; create a store with 'rvmctl init %s'", path,
                   STORE_LOG, path);
}

/* ---- log ---- */

struct log_args {
    const struct logread *lr;
    const char *store;
    int have_seg;
    uint64_t seg;
    int have_tid;
    uint64_t tid;
    int bytes;
    uint64_t shown;
};

static void hexdump(const unsigned char *p, uint64_t len)
{
    for (uint64_t i = 0; i < len; i += 16) {
        char asc[17];
        uint64_t n = len - i < 16 ? len - i : 16;

        printf("    %08llx ", (unsigned long long)i);
        for (uint64_t j = 0; j < 16; j++) {
            if (j < n)
                printf(" %02x", p[i + j]);
            else
                printf("   ");
            if (j == 7)
                putchar(' ');
        }
        for (uint64_t j = 0; j < n; j++)
            asc[j] = p[i + j] >= 0x20 && p[i + j] < 0x7f ? (char)p[i + j] : '.';
        asc[n] = 0;
        printf("  |%s|\n", asc);
    }
}

static void print_row(const struct log_rec_hdr *h, uint64_t pos, const char *crc,
                      const struct log_rec_range *r, const char *path)
{
    const char *type = h->type == LOG_REC_WRAP ? "wrap" :
                       (h->flags & LOG_REC_F_BATCH) || h->ntrans > 1 ? "batch" :
                       "trans";

    printf("%-8llu %-8llu %-5s %-12llu %-8llu %-4s ", (unsigned long long)h->seq,
           (unsigned long long)h->tid, type, (unsigned long long)pos,
           (unsigned long long)h->len, crc);
    if (r)
        printf("%-5llu %-12llu %-8llu %s\n", (unsigned long long)r->seg_id,
               (unsigned long long)r->offset, (unsigned long long)r->len,
               path ? path : "(not in dictionary)");
    else
        printf("%-5s %-12s %-8s %s\n", "-", "-", "-", "-");
}

static int log_row(const struct logread_rec *rec, void *arg)
{
    struct log_args *a = arg;
    const unsigned char *data = rec->data;
    int printed = 0;

    if (a->have_tid && (rec->hdr.type != LOG_REC_TRANS || rec->hdr.tid != a->tid))
        return 0;
    if (rec->hdr.type == LOG_REC_WRAP || rec->hdr.nranges == 0) {
        if (!a->have_seg) {
            print_row(&rec->hdr, rec->pos, "ok", NULL, NULL);
            a->shown++;
        }
        return 0;
    }
    for (uint32_t i = 0; i < rec->hdr.nranges; i++) {
        const struct log_rec_range *r = &rec->ranges[i];

        if (!a->have_seg || r->seg_id == a->seg) {
            print_row(&rec->hdr, rec->pos, "ok", r,
                      logread_seg_path(a->lr, r->seg_id));
            if (a->bytes)
                hexdump(data, r->len);
            printed = 1;
        }
        data += r->len;
    }
    a->shown += printed;
    return 0;
}

/* A dictionary path as a name to stat: relative ones are in the store. */
static void seg_file(const char *store, const char *path, char *out, size_t len)
{
    if (path[0] == '/')
        snprintf(out, len, "%s", path);
    else
        snprintf(out, len, "%s/%s", store, path);
}

/* Find the segment id that NAME means; 0 if found, else an exit status. */
static int seg_resolve(const struct logread *lr, const char *store,
                       const char *name, uint64_t *id)
{
    struct stat want, sb;
    char p[PATH_MAX];
    int have_want;
    uint64_t n;

    if (ctl_parse_u64(name, &n) == 0 && logread_seg_path(lr, n)) {
        *id = n;
        return 0;
    }
    for (uint32_t i = 0; i < lr->nsegs; i++) {
        const char *path = lr->segs[i].path, *base = strrchr(path, '/');

        if (!strcmp(path, name) || (base && !strcmp(base + 1, name))) {
            *id = lr->segs[i].id;
            return 0;
        }
    }
    /* Any name of the segment's file: tree/ names are hard links of seg/. */
    have_want = stat(name, &want) == 0;
    if (!have_want) {
        snprintf(p, sizeof p, "%s/tree/%s", store, name);
        have_want = stat(p, &want) == 0;
    }
    if (have_want) {
        for (uint32_t i = 0; i < lr->nsegs; i++) {
            seg_file(store, lr->segs[i].path, p, sizeof p);
            if (stat(p, &sb) == 0 && sb.st_dev == want.st_dev &&
                sb.st_ino == want.st_ino) {
                *id = lr->segs[i].id;
                return 0;
            }
        }
    }
    return ctl_err("no segment '%s' in the log's dictionary (%u segments); "
                   "give a segment id, a path from 'rvmctl log %s', or a "
                   "file of the store", name, lr->nsegs, store);
}

int cmd_log(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"segment", required_argument, NULL, 'S'},
        {"tid", required_argument, NULL, 't'},
        {"bytes", no_argument, NULL, 'x'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *log_opt = NULL, *seg_name = NULL, *store;
    char log[PATH_MAX], hb[32];
    struct log_args a;
    struct logread lr;
    struct logread_result res;
    int opt, rv;

    memset(&a, 0, sizeof a);
    while ((opt = getopt_long(argc, argv, ":S:t:xl:h", lopts, NULL)) != -1) {
        switch (opt) {
        case 'S':
            seg_name = optarg;
            break;
        case 't':
            if (ctl_parse_u64(optarg, &a.tid) < 0)
                return ctl_usage("log", "bad tid '%s' (a decimal number)", optarg);
            a.have_tid = 1;
            break;
        case 'x':
            a.bytes = 1;
            break;
        case 'l':
            log_opt = optarg;
            break;
        default:
            return ctl_common_opt("log", opt, argv);
        }
    }
    if (optind != argc - 1)
        return ctl_usage("log", optind == argc ? "give the STORE whose log to "
                         "list" : "give exactly one STORE");
    store = argv[optind];
    if ((rv = ctl_store_log(store, log_opt, log, sizeof log)))
        return rv;
    if (logread_open(&lr, log) < 0) {
        ctl_err("%s", lr.err);
        logread_close(&lr);
        return EXIT_FAIL;
    }
    a.lr = &lr;
    a.store = store;
    if (seg_name) {
        if ((rv = seg_resolve(&lr, store, seg_name, &a.seg))) {
            logread_close(&lr);
            return rv;
        }
        a.have_seg = 1;
    }
    printf("%-8s %-8s %-5s %-12s %-8s %-4s %-5s %-12s %-8s %s\n", "SEQ", "TID",
           "TYPE", "POS", "LEN", "CRC", "SEG", "OFFSET", "LENGTH", "PATH");
    if (logread_scan(&lr, log_row, &a, &res) < 0) {
        fflush(stdout);
        ctl_err("%s", lr.err);
        logread_close(&lr);
        return EXIT_FAIL;
    }
    if (res.end == LOGREAD_END_TORN || res.end == LOGREAD_END_CORRUPT)
        print_row(&res.bad_hdr, res.bad_pos, "BAD", NULL, NULL);
    printf("# %llu records (%llu wrap), %llu transactions, %s of new data, "
           "%llu listed; log positions %llu..%llu of %llu\n",
           (unsigned long long)(res.records - res.wraps),
           (unsigned long long)res.wraps, (unsigned long long)res.transactions,
           ctl_human(res.range_bytes, hb, sizeof hb),
           (unsigned long long)a.shown, (unsigned long long)lr.st.head,
           (unsigned long long)res.tail, (unsigned long long)lr.st.data_size);
    switch (res.end) {
    case LOGREAD_END_CLEAN:
        printf("# end: clean\n");
        break;
    case LOGREAD_END_FULL:
        printf("# end: the records fill the whole log\n");
        break;
    case LOGREAD_END_TORN:
        printf("# end: torn record at position %llu (%s): an interrupted last "
               "write, never acknowledged; recovery drops it\n",
               (unsigned long long)res.bad_pos, res.bad_reason);
        break;
    case LOGREAD_END_CORRUPT:
        printf("# end: DAMAGED record at position %llu (%s); valid records "
               "follow from seq %llu at position %llu\n",
               (unsigned long long)res.bad_pos, res.bad_reason,
               (unsigned long long)res.later_seq,
               (unsigned long long)res.later_pos);
        break;
    }
    logread_close(&lr);
    fflush(stdout);
    if (res.end == LOGREAD_END_CORRUPT)
        return report_corrupt(store, &res);
    return EXIT_OK;
}
