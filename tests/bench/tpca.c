/*
 * tpca: a TPC-A-like benchmark of librvm against the stores a user would
 * pick instead (SQLite, LMDB, PMDK libpmemobj) and the raw disk limit.
 *
 * Every configuration ("cell": commit mode x threads x access pattern x
 * peer) runs for --seconds on a fresh store in --dir; rounds are
 * interleaved (round 1 of every cell, then round 2, ...) so that drift of
 * the disk hits all peers alike, and the median of the rounds is
 * reported.  After each run the peer checks that the balance sums of the
 * accounts, tellers and branches all equal the sum of committed deltas
 * (librvm also after recovering its log into fresh memory).
 *
 * Output: progress on stderr; on stdout a table of transactions/s with
 * each peer's ratio to librvm, librvm's log bytes per transaction with
 * and without its optimizations, the goals of the performance issue, and
 * one final "RESULT key=value ..." line with every figure.
 * Exit status: 0, or 1 when a check failed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "tpca.h"

#define MAX_ROUNDS 15
#define NPEERS 6

static const struct tpca_peer *peers[NPEERS] = {
    &tpca_peer_rvm, &tpca_peer_rvm_noopt, &tpca_peer_sqlite,
    &tpca_peer_lmdb, &tpca_peer_pmem, &tpca_peer_raw,
};
enum { P_RVM, P_NOOPT, P_SQLITE, P_LMDB, P_PMEM, P_RAW };
/* Order within a round: raw right after librvm, so that the ratio of the
 * two meets the disk in the same state; the start rotates by round so no
 * peer always follows the same one. */
static const int run_order[NPEERS] = {P_RVM, P_RAW, P_NOOPT, P_SQLITE, P_LMDB, P_PMEM};

static int run_order_at(int round, int o)
{
    /* Units: {rvm, raw}, noopt, sqlite, lmdb, pmem (5), rotated by round. */
    int unit_start[5] = {0, 2, 3, 4, 5}, unit_len[5] = {2, 1, 1, 1, 1};
    for (int u = 0, pos = 0; u < 5; u++) {
        int uu = (u + round) % 5;
        if (o < pos + unit_len[uu])
            return run_order[unit_start[uu] + (o - pos)];
        pos += unit_len[uu];
    }
    return run_order[o];
}

/* A configuration of the workload, run against every peer. */
struct wcfg {
    enum tpca_mode mode;
    int nthreads;
    enum tpca_pattern pattern;
};

struct stat_cell {
    bool ran, ok;
    char note[200];
    double tps, set_range_b, logged_b, log_written_b, forces, group_commits, truncations;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void summarize(struct tpca_result *r, int nr, struct stat_cell *s)
{
    double v[7][MAX_ROUNDS];
    memset(s, 0, sizeof *s);
    s->ran = r[0].ran;
    s->ok = true;
    snprintf(s->note, sizeof s->note, "%s", r[0].note);
    for (int i = 0; i < nr; i++) {
        if (r[i].ran && !r[i].ok && s->ok) {
            s->ok = false;
            snprintf(s->note, sizeof s->note, "%s", r[i].note);
        }
        v[0][i] = r[i].tps;
        v[1][i] = r[i].set_range_b;
        v[2][i] = r[i].logged_b;
        v[3][i] = r[i].log_written_b;
        v[4][i] = r[i].forces / (r[i].secs > 0 ? r[i].secs : 1);
        v[5][i] = r[i].group_commits / (r[i].secs > 0 ? r[i].secs : 1);
        v[6][i] = r[i].truncations;
    }
    if (!s->ran)
        s->ok = false;
    s->tps = median(v[0], nr);
    s->set_range_b = median(v[1], nr);
    s->logged_b = median(v[2], nr);
    s->log_written_b = median(v[3], nr);
    s->forces = median(v[4], nr);
    s->group_commits = median(v[5], nr);
    s->truncations = median(v[6], nr);
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x01021994: return "tmpfs";
    case 0x794c7630: return "overlayfs";
    case 0x6969: return "nfs";
    case 0x2FC12FC1: return "zfs";
    case 0xF2F52010: return "f2fs";
    default: return "other";
    }
}

static void cpu_model(char *buf, size_t n)
{
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p += 1 + strspn(p + 1, " \t");
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, n, "%s", p);
            }
            break;
        }
    fclose(f);
}

static void loadavg(char *buf, size_t n)
{
    snprintf(buf, n, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(buf, (int)n, f))
            buf[strcspn(buf, " ")] = 0;
        fclose(f);
    }
}

static int list_has(const char *list, const char *word)
{
    if (!list)
        return 1;
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        size_t m = strcspn(p, ",");
        if (m == n && !strncmp(p, word, n))
            return 1;
        p += m + (p[m] == ',');
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tpca [--dir DIR] [--seconds S] [--rounds R] [--threads N]\n"
            "            [--flush-every K] [--accounts N] [--tellers N] [--branches N]\n"
            "            [--history N] [--log-mb M] [--peers LIST] [--modes LIST]\n"
            "            [--patterns LIST] [--quick]\n"
            "  peers: rvm,rvm-noopt,sqlite,lmdb,pmemobj,raw  modes: flush,no_flush\n"
            "  patterns: seq,random,local   (defaults: all; 3 s x 3 rounds; N=8; K=1000)\n"
            "  DIR must be on the disk to measure (not tmpfs); default: a new\n"
            "  directory under /var/tmp, removed at exit.\n");
}

/* Appends " key=value" to the RESULT line. */
static char *result;
static size_t result_len, result_cap;
static void kvs(const char *key, const char *val)
{
    size_t n = strlen(key) + strlen(val) + 2;
    if (result_len + n + 1 > result_cap) {
        result_cap = (result_cap + n + 1) * 2;
        result = realloc(result, result_cap);
        if (!result)
            exit(2);
    }
    result_len += (size_t)sprintf(result + result_len, " %s=%s", key, val);
}

static void kv(const char *key, const char *fmt, double v)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, v);
    kvs(key, buf);
}

int main(int argc, char **argv)
{
    struct tpca_config cfg = {
        .n = {100000, 80, 8, 16384}, .flush_every = 1000, .seconds = 3.0,
        .log_bytes = 64ull << 20,
    };
    int rounds = 3, nthreads = 8;
    const char *dir = NULL, *peer_list = NULL, *mode_list = NULL, *pat_list = NULL;
    static const struct option lo[] = {
        {"dir", 1, 0, 'd'}, {"seconds", 1, 0, 's'}, {"rounds", 1, 0, 'r'},
        {"threads", 1, 0, 't'}, {"flush-every", 1, 0, 'k'}, {"accounts", 1, 0, 'a'},
        {"tellers", 1, 0, 'T'}, {"branches", 1, 0, 'b'}, {"history", 1, 0, 'H'},
        {"log-mb", 1, 0, 'l'}, {"peers", 1, 0, 'p'}, {"modes", 1, 0, 'm'},
        {"patterns", 1, 0, 'P'}, {"quick", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "d:s:r:t:k:a:T:b:H:l:p:m:P:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 's': cfg.seconds = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'k': cfg.flush_every = (uint32_t)atoi(optarg); break;
        case 'a': cfg.n[TAB_ACCOUNT] = (uint32_t)atoi(optarg); break;
        case 'T': cfg.n[TAB_TELLER] = (uint32_t)atoi(optarg); break;
        case 'b': cfg.n[TAB_BRANCH] = (uint32_t)atoi(optarg); break;
        case 'H': cfg.n[TAB_HISTORY] = (uint32_t)atoi(optarg); break;
        case 'l': cfg.log_bytes = (uint64_t)atoi(optarg) << 20; break;
        case 'p': peer_list = optarg; break;
        case 'm': mode_list = optarg; break;
        case 'P': pat_list = optarg; break;
        case 'q': cfg.seconds = 0.5; rounds = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || nthreads < 1 || nthreads > TPCA_MAX_THREADS ||
        cfg.seconds <= 0 || cfg.flush_every < 1) {
        fprintf(stderr, "tpca: bad option value; rounds 1..%d, threads 1..%d\n", MAX_ROUNDS,
                TPCA_MAX_THREADS);
        return 2;
    }
    for (int t = 0; t < TAB_COUNT; t++)
        if (cfg.n[t] < (uint32_t)nthreads) {
            fprintf(stderr, "tpca: every table needs at least --threads records\n");
            return 2;
        }
    char tmpdir[] = "/var/tmp/rvm-tpca.XXXXXX";
    if (!dir) {
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "tpca: mkdtemp %s: %s; give --dir\n", tmpdir, strerror(errno));
            return 2;
        }
        dir = tmpdir;
    }
    cfg.dir = dir;
    struct statfs sfs;
    const char *fs = statfs(dir, &sfs) == 0 ? fs_name((long)sfs.f_type) : "unknown";
    if (!strcmp(fs, "tmpfs"))
        fprintf(stderr, "tpca: warning: %s is on tmpfs; forces cost nothing there\n", dir);

    struct wcfg w[MODE_COUNT * 2 * PAT_COUNT];
    int nw = 0;
    int tcounts[2] = {1, nthreads};
    for (int m = 0; m < MODE_COUNT; m++)
        for (int ti = 0; ti < (nthreads > 1 ? 2 : 1); ti++)
            for (int p = 0; p < PAT_COUNT; p++)
                if (list_has(mode_list, tpca_mode_name((enum tpca_mode)m)) &&
                    list_has(pat_list, tpca_pattern_name((enum tpca_pattern)p)))
                    w[nw++] = (struct wcfg){(enum tpca_mode)m, tcounts[ti], (enum tpca_pattern)p};
    bool use[NPEERS];
    for (int p = 0; p < NPEERS; p++)
        use[p] = list_has(peer_list, peers[p]->name);

    char cpu[256], date[64];
    cpu_model(cpu, sizeof cpu);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    struct utsname un;
    uname(&un);
    char load[64];
    loadavg(load, sizeof load);
    printf("tpca: TPC-A-like benchmark of librvm and peers\n");
    printf("date %s; %ld cpus (%s); kernel %s; dir %s (%s)\n", date, sysconf(_SC_NPROCESSORS_ONLN),
           cpu, un.release, dir, fs);
    printf("accounts %u, tellers %u, branches %u (%d B records), history %u x %d B; "
           "K=%u; %.1f s x %d rounds per cell, median; librvm log %llu MiB\n",
           cfg.n[0], cfg.n[1], cfg.n[2], TPCA_REC, cfg.n[3], TPCA_HIST, cfg.flush_every,
           cfg.seconds, rounds, (unsigned long long)(cfg.log_bytes >> 20));
    printf("load average (1 min) at start %s\n\n", load);
    fflush(stdout);

    struct tpca_result *res = calloc((size_t)rounds * (size_t)nw * NPEERS, sizeof *res);
    if (!res)
        return 2;
#define RES(r, i, p) res[((size_t)(r) * (size_t)nw + (size_t)(i)) * NPEERS + (size_t)(p)]
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nw; i++)
            for (int o = 0; o < NPEERS; o++) {
                int p = run_order_at(r, o);
                struct tpca_cell cell = {&cfg, w[i].mode, w[i].pattern, w[i].nthreads};
                struct tpca_result *x = &RES(r, i, p);
                if (!use[p]) {
                    snprintf(x->note, sizeof x->note, "skipped");
                    continue;
                }
                tpca_run_cell(peers[p], &cell, x);
                if (x->ran)
                    fprintf(stderr, "round %d/%d %-8s t%-2d %-6s %-9s %10.0f tx/s%s%s\n", r + 1,
                            rounds, tpca_mode_name(w[i].mode), w[i].nthreads,
                            tpca_pattern_name(w[i].pattern), peers[p]->name, x->tps,
                            x->ok ? "" : "  FAILED: ", x->ok ? "" : x->note);
            }

    struct stat_cell *st = calloc((size_t)nw * NPEERS, sizeof *st);
    struct tpca_result tmp[MAX_ROUNDS];
    if (!st)
        return 2;
    int failures = 0;
    for (int i = 0; i < nw; i++)
        for (int p = 0; p < NPEERS; p++) {
            for (int r = 0; r < rounds; r++)
                tmp[r] = RES(r, i, p);
            summarize(tmp, rounds, &st[i * NPEERS + p]);
            if (st[i * NPEERS + p].ran && !st[i * NPEERS + p].ok)
                failures++;
        }
#define ST(i, p) st[(i) * NPEERS + (p)]

    loadavg(load, sizeof load);
    printf("load average (1 min) at end %s\n\n", load);

    /* ---- throughput table ---- */
    printf("transactions/s (median of %d), and ratio to librvm (rvm = RVM_ALL_OPTIMIZATIONS)\n",
           rounds);
    printf("%-8s %3s %-6s", "mode", "thr", "access");
    for (int p = 0; p < NPEERS; p++)
        printf(" | %-17s", peers[p]->name);
    printf("\n");
    for (int i = 0; i < nw; i++) {
        printf("%-8s %3d %-6s", tpca_mode_name(w[i].mode), w[i].nthreads,
               tpca_pattern_name(w[i].pattern));
        double base = ST(i, P_RVM).ok ? ST(i, P_RVM).tps : 0;
        for (int p = 0; p < NPEERS; p++) {
            struct stat_cell *s = &ST(i, p);
            char cellbuf[64];
            if (s->ok)
                snprintf(cellbuf, sizeof cellbuf, "%10.0f %5.2fx", s->tps,
                         base > 0 ? s->tps / base : 0);
            else if (s->ran)
                snprintf(cellbuf, sizeof cellbuf, "FAILED");
            else
                snprintf(cellbuf, sizeof cellbuf, "%.17s", s->note);
            printf(" | %-17s", cellbuf);
        }
        printf("\n");
    }
    for (int i = 0; i < nw; i++)
        for (int p = 0; p < NPEERS; p++)
            if (ST(i, p).ran && !ST(i, p).ok)
                printf("FAILED %s %s t%d %s: %s\n", peers[p]->name, tpca_mode_name(w[i].mode),
                       w[i].nthreads, tpca_pattern_name(w[i].pattern), ST(i, p).note);
    for (int p = 0; p < NPEERS; p++)
        if (peers[p]->missing)
            printf("%s: %s\n", peers[p]->name, peers[p]->missing);
    if (use[P_PMEM] && !peers[P_PMEM]->missing)
        printf("pmemobj: pmem_is_pmem=%d: %s; it has no deferred commit, so its no_flush "
               "rows are durable commits\n", tpca_pmem_is_pmem,
               tpca_pmem_is_pmem == 1 ? "persists are cache-line flushes"
                                      : "every persist is an msync(2)");
    printf("sqlite: WAL, synchronous=FULL (flush) / NORMAL with every K-th commit FULL (no_flush)\n"
           "lmdb: default sync (flush) / MDB_NOSYNC + mdb_env_sync every K (no_flush)\n"
           "raw: 4 KiB pwrite + fdatasync of a preallocated file, 1 thread\n\n");

    /* ---- log bytes ---- */
    printf("librvm log bytes per transaction: declared by set_range, new-value bytes logged,\n"
           "all bytes written to the log; flags 0 (rvm-noopt) vs RVM_ALL_OPTIMIZATIONS (rvm)\n");
    printf("%-8s %3s %-6s | %9s | %9s %9s | %9s %9s | %s | %s\n", "mode", "thr", "access",
           "set_range", "logged/0", "written/0", "logged/A", "written/A", "written A/0",
           "forces/s rvm, group commits/s");
    for (int i = 0; i < nw; i++) {
        struct stat_cell *a = &ST(i, P_RVM), *z = &ST(i, P_NOOPT);
        if (!a->ok || !z->ok)
            continue;
        printf("%-8s %3d %-6s | %9.1f | %9.1f %9.1f | %9.1f %9.1f | %11.3f | %.0f, %.0f\n",
               tpca_mode_name(w[i].mode), w[i].nthreads, tpca_pattern_name(w[i].pattern),
               a->set_range_b, z->logged_b, z->log_written_b, a->logged_b, a->log_written_b,
               z->log_written_b > 0 ? a->log_written_b / z->log_written_b : 0, a->forces,
               a->group_commits);
    }
    printf("\n");

    /* ---- RESULT figures ---- */
    char key[128];
    for (int i = 0; i < nw; i++) {
        const char *mn = tpca_mode_name(w[i].mode), *pn = tpca_pattern_name(w[i].pattern);
        double base = ST(i, P_RVM).ok ? ST(i, P_RVM).tps : 0;
        for (int p = 0; p < NPEERS; p++) {
            struct stat_cell *s = &ST(i, p);
            if (!s->ok)
                continue;
            snprintf(key, sizeof key, "tps_%s_%s_t%d_%s", peers[p]->name, mn, w[i].nthreads, pn);
            kv(key, "%.0f", s->tps);
            if (p != P_RVM && base > 0) {
                snprintf(key, sizeof key, "ratio_%s_%s_t%d_%s", peers[p]->name, mn,
                         w[i].nthreads, pn);
                kv(key, "%.3f", s->tps / base);
            }
            if (p <= P_NOOPT) {
                snprintf(key, sizeof key, "logw_%s_%s_t%d_%s", peers[p]->name, mn,
                         w[i].nthreads, pn);
                kv(key, "%.1f", s->log_written_b);
                snprintf(key, sizeof key, "logged_%s_%s_t%d_%s", peers[p]->name, mn,
                         w[i].nthreads, pn);
                kv(key, "%.1f", s->logged_b);
            }
        }
        if (ST(i, P_RVM).ok) {
            snprintf(key, sizeof key, "setrange_%s_t%d_%s", mn, w[i].nthreads, pn);
            kv(key, "%.1f", ST(i, P_RVM).set_range_b);
        }
    }

    /* ---- goals: ratios paired within a round, median over rounds ---- */
#define PAIRED(out, i, p, j, q)                                                    \
    do {                                                                           \
        double v_[MAX_ROUNDS];                                                     \
        int n_ = 0;                                                                \
        for (int r_ = 0; r_ < rounds; r_++)                                        \
            if (RES(r_, i, p).ok && RES(r_, j, q).ok && RES(r_, j, q).tps > 0)     \
                v_[n_++] = RES(r_, i, p).tps / RES(r_, j, q).tps;                  \
        (out) = n_ ? median(v_, n_) : -1;                                          \
    } while (0)
    /* ---- goals ---- */
    printf("goals (per access pattern, the headline is the worst pattern; ratios of two\n"
           "cells are the median over rounds of the ratio within a round):\n");
    double g1 = -1, g2 = -1, g3 = -1, g4 = -1, g5 = -1;
    const char *g4_peer = "-";
    for (int i = 0; i < nw; i++) {
        if (!ST(i, P_RVM).ok)
            continue;
        double rvm = ST(i, P_RVM).tps;
        const char *pn = tpca_pattern_name(w[i].pattern);
        if (w[i].mode == MODE_FLUSH && w[i].nthreads == 1 && ST(i, P_RAW).ok) {
            double v;
            PAIRED(v, i, P_RVM, i, P_RAW);
            printf("  flush 1 thread vs raw, %-6s: %.3f (goal >= 0.9)\n", pn, v);
            g1 = g1 < 0 || v < g1 ? v : g1;
        }
        if (w[i].nthreads > 1) {
            for (int j = 0; j < nw; j++)
                if (w[j].nthreads == 1 && w[j].mode == w[i].mode &&
                    w[j].pattern == w[i].pattern && ST(j, P_RVM).ok) {
                    double v;
                    PAIRED(v, i, P_RVM, j, P_RVM);
                    printf("  %s %d threads vs 1, %-6s: %.2f%s\n", tpca_mode_name(w[i].mode),
                           w[i].nthreads, pn, v,
                           w[i].mode == MODE_FLUSH ? " (goal >= 4)" : "");
                    if (w[i].mode == MODE_FLUSH)
                        g2 = g2 < 0 || v < g2 ? v : g2;
                }
        }
        if (w[i].mode == MODE_NO_FLUSH && w[i].nthreads == 1) {
            printf("  no_flush 1 thread, %-6s: %.0f tx/s (goal >= 1000000)", pn, rvm);
            g3 = g3 < 0 || rvm < g3 ? rvm : g3;
            for (int p = P_SQLITE; p < NPEERS; p++)
                if (ST(i, p).ok) {
                    double v = rvm / ST(i, p).tps;
                    printf("; %.1fx %s", v, peers[p]->name);
                    if (g4 < 0 || v < g4) {
                        g4 = v;
                        g4_peer = peers[p]->name;
                    }
                }
            printf("\n");
        }
        if (w[i].mode == MODE_NO_FLUSH && w[i].pattern == PAT_LOCAL && ST(i, P_NOOPT).ok &&
            ST(i, P_NOOPT).log_written_b > 0) {
            double v = ST(i, P_RVM).log_written_b / ST(i, P_NOOPT).log_written_b;
            printf("  no_flush %d thread(s) local: log bytes with/without optimizations %.3f%s\n",
                   w[i].nthreads, v, w[i].nthreads == 1 ? " (goal <= 0.5)" : "");
            if (w[i].nthreads == 1)
                g5 = v;
        }
    }
    printf("  met: flush_t1_vs_raw %s, flush_t%d_vs_t1 %s, no_flush_t1_tps %s, "
           "no_flush_vs_peers %s, local_log_ratio %s\n",
           g1 < 0 ? "n/a" : g1 >= 0.9 ? "yes" : "NO", nthreads,
           g2 < 0 ? "n/a" : g2 >= 4 ? "yes" : "NO", g3 < 0 ? "n/a" : g3 >= 1e6 ? "yes" : "NO",
           g4 < 0 ? "n/a" : g4 > 1 ? "yes" : "NO", g5 < 0 ? "n/a" : g5 <= 0.5 ? "yes" : "NO");
    printf("\n");
    kv("goal_flush_t1_vs_raw", "%.3f", g1);
    snprintf(key, sizeof key, "goal_flush_t%d_vs_t1", nthreads);
    kv(key, "%.2f", g2);
    kv("goal_no_flush_t1_tps", "%.0f", g3);
    kv("goal_no_flush_t1_vs_best_peer", "%.2f", g4);
    kvs("goal_no_flush_t1_closest_peer", g4_peer);
    kv("goal_local_log_ratio", "%.3f", g5);
    kv("failures", "%.0f", failures);
    kv("rounds", "%.0f", rounds);
    kv("seconds", "%.1f", cfg.seconds);
    printf("RESULT%s\n", result ? result : "");

    if (dir == tmpdir)
        rmdir(tmpdir);
    free(result);
    free(st);
    free(res);
    return failures ? 1 : 0;
}
