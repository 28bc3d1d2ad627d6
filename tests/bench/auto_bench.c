/*
 * auto_bench: librvm's automatic ranges (rvm_begin_auto_transaction)
 * against manual rvm_set_range, on the TPC-A-like workload of tpca.
 *
 * Both sides are the librvm peer of tpca (tpca_rvm.c: same store, same
 * checks, recovery from the log after each run); only the transaction
 * differs.  Manual: begin(no_restore), set_range of the three 100-byte
 * records and the 50-byte history entry, the writes, end.  Auto: begin
 * auto(no_restore), the same writes, end: librvm finds the changed bytes.
 *
 * The two sides of a cell run back to back within each round, in an
 * order that alternates by round, so that both meet the machine in the
 * same state; a cell's ratio is the median over rounds of the ratio
 * within a round (the machine is shared and drifts).
 *
 * Output: a table of tx/s and log bytes per transaction on stdout, the
 * goals of issue 8 as met/not met and a final "RESULT key=value ..."
 * line.  Exit status 0, 1 when a run's check failed, 2 on bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rvm/rvm.h"
#include "tpca.h"

#define MAX_ROUNDS 15
#define MAX_CELLS 8

/* Goals of issue 8, for no_flush. */
#define GOAL_TPS_RATIO 0.5
#define GOAL_LOG_RATIO 1.1

static int auto_txn(void *ctx, struct tpca_thread *th, const struct tpca_op *op, bool durable)
{
    unsigned char *base = tpca_rvm_base(ctx);
    rvm_tid_t *tid = th->p;
    const struct tpca_config *cfg = th->cell->cfg;
    rvm_return_t r = rvm_begin_auto_transaction(tid, no_restore);
    if (r != RVM_SUCCESS)
        goto fail;
    for (int t = 0; t < 3; t++)
        tpca_rec_update(base + tpca_offset(cfg, (enum tpca_table)t, op->idx[t]), op->idx[t],
                        op->delta, op->seq);
    tpca_hist_fill(base + tpca_offset(cfg, TAB_HISTORY, op->idx[TAB_HISTORY]), op);
    bool nf = th->cell->mode == MODE_NO_FLUSH;
    if ((r = rvm_end_transaction(tid, nf ? no_flush : flush)) != RVM_SUCCESS)
        goto fail;
    if (nf && durable && (r = rvm_flush()) != RVM_SUCCESS)
        goto fail;
    return 0;
fail:
    snprintf(th->errmsg, sizeof th->errmsg, "auto transaction: %s %s", rvm_return(r),
             rvm_errmsg());
    return -1;
}

/* Everything but the transaction is the manual peer's. */
static struct tpca_peer auto_peer;

static void auto_peer_init(void)
{
    auto_peer = tpca_peer_rvm;
    auto_peer.name = "rvm-auto";
    auto_peer.txn = auto_txn;
}

struct cell {
    enum tpca_mode mode;
    enum tpca_pattern pattern;
    int nthreads;
    struct tpca_result r[2][MAX_ROUNDS];   /* [0] manual, [1] auto */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n == 0)
        return -1;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median over the rounds where both sides passed; which: 0 tx/s, 1 log
 * bytes written per transaction, 2 new-value bytes per transaction.
 * side -1 gives the paired ratio auto/manual. */
static double cell_median(const struct cell *c, int rounds, int side, int which)
{
    double v[MAX_ROUNDS];
    int n = 0;
    for (int i = 0; i < rounds; i++) {
        const struct tpca_result *m = &c->r[0][i], *a = &c->r[1][i];
        if (!m->ok || !a->ok)
            continue;
        double x[2];
        for (int s = 0; s < 2; s++) {
            const struct tpca_result *p = s ? a : m;
            x[s] = which == 0 ? p->tps : which == 1 ? p->log_written_b : p->logged_b;
        }
        if (side >= 0)
            v[n++] = x[side];
        else if (x[0] > 0)
            v[n++] = x[1] / x[0];
    }
    return median(v, n);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: auto_bench [--dir DIR] [--seconds S] [--rounds R] [--threads N]\n"
            "                  [--flush-every K] [--accounts N] [--quick] [--auto-only]\n"
            "  no_flush cells: 1 thread x seq, random, local, and N threads (default 2)\n"
            "  x random; one flush cell (1 thread, random).  Defaults: 2 s x 5 rounds,\n"
            "  K=1000.  DIR must be on a disk (default: new directory under /var/tmp).\n"
            "  --auto-only runs only the auto side (for a profiler; no ratios).\n");
}

static void kv(char *buf, size_t n, const char *key, const char *fmt, double v)
{
    size_t len = strlen(buf);
    if (len + 2 >= n)
        return;
    buf[len++] = ' ';
    int w = snprintf(buf + len, n - len, "%s=", key);
    if (w > 0 && (size_t)w < n - len)
        snprintf(buf + len + (size_t)w, n - len - (size_t)w, fmt, v);
}

int main(int argc, char **argv)
{
    struct tpca_config cfg = {
        .n = {100000, 80, 8, 16384}, .flush_every = 1000, .seconds = 2.0,
        .log_bytes = 64ull << 20,
    };
    int rounds = 5, nthreads = 2;
    const char *dir = NULL;
    bool auto_only = false; /* for profiling: no manual runs, no ratios */
    static const struct option lo[] = {
        {"dir", 1, 0, 'd'}, {"seconds", 1, 0, 's'}, {"rounds", 1, 0, 'r'},
        {"threads", 1, 0, 't'}, {"flush-every", 1, 0, 'k'}, {"accounts", 1, 0, 'a'},
        {"quick", 0, 0, 'q'}, {"auto-only", 0, 0, 'A'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "d:s:r:t:k:a:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 's': cfg.seconds = atof(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 't': nthreads = atoi(optarg); break;
        case 'k': cfg.flush_every = (uint32_t)atoi(optarg); break;
        case 'a': cfg.n[TAB_ACCOUNT] = (uint32_t)atoi(optarg); break;
        case 'q': cfg.seconds = 0.5; rounds = 1; break;
        case 'A': auto_only = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || rounds < 1 || rounds > MAX_ROUNDS || nthreads < 1 ||
        nthreads > (int)cfg.n[TAB_BRANCH] || cfg.seconds <= 0 || cfg.flush_every < 1 ||
        cfg.n[TAB_ACCOUNT] < (uint32_t)nthreads) {
        fprintf(stderr, "auto_bench: bad arguments; rounds 1..%d, threads 1..%u "
                "(see --help)\n", MAX_ROUNDS, cfg.n[TAB_BRANCH]);
        return 2;
    }
    char tmpdir[] = "/var/tmp/rvm-autob.XXXXXX";
    if (!dir) {
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "auto_bench: mkdtemp %s: %s; give --dir\n", tmpdir, strerror(errno));
            return 2;
        }
        dir = tmpdir;
    }
    cfg.dir = dir;
    auto_peer_init();
    const struct tpca_peer *side[2] = {&tpca_peer_rvm, &auto_peer};

    static struct cell cells[MAX_CELLS];
    int nc = 0;
    for (int p = 0; p < PAT_COUNT; p++)
        cells[nc++] = (struct cell){.mode = MODE_NO_FLUSH, .pattern = (enum tpca_pattern)p,
                                    .nthreads = 1};
    if (nthreads > 1)
        cells[nc++] = (struct cell){.mode = MODE_NO_FLUSH, .pattern = PAT_RANDOM,
                                    .nthreads = nthreads};
    cells[nc++] = (struct cell){.mode = MODE_FLUSH, .pattern = PAT_RANDOM, .nthreads = 1};

    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    double load[3] = {0, 0, 0};
    getloadavg(load, 3);
    printf("auto_bench: librvm auto transactions vs manual set_range (TPC-A-like)\n");
    printf("date %s; %ld cpus; dir %s; load average %.2f\n", date,
           sysconf(_SC_NPROCESSORS_ONLN), dir, load[0]);
    printf("accounts %u, tellers %u, branches %u (%d B records), history %u x %d B; K=%u; "
           "%.1f s x %d rounds per cell, median\n\n", cfg.n[0], cfg.n[1], cfg.n[2], TPCA_REC,
           cfg.n[3], TPCA_HIST, cfg.flush_every, cfg.seconds, rounds);
    fflush(stdout);

    int failures = 0;
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < nc; i++)
            for (int o = 0; o < 2; o++) {
                int s = (o + r + i) % 2;
                if (auto_only && s == 0)
                    continue;
                struct tpca_cell tc = {&cfg, cells[i].mode, cells[i].pattern, cells[i].nthreads};
                struct tpca_result *x = &cells[i].r[s][r];
                tpca_run_cell(side[s], &tc, x);
                if (!x->ok)
                    failures++;
                fprintf(stderr, "round %d/%d %-8s t%d %-6s %-8s %9.0f tx/s%s%s\n", r + 1, rounds,
                        tpca_mode_name(tc.mode), tc.nthreads, tpca_pattern_name(tc.pattern),
                        side[s]->name, x->tps, x->ok ? "" : "  FAILED: ", x->ok ? "" : x->note);
            }

    getloadavg(load, 3);
    printf("load average at end %.2f\n\n", load[0]);
    printf("tx/s and log bytes per transaction (written: all bytes written to the log;\n"
           "logged: new-value bytes), medians; ratios are auto/manual, median of the\n"
           "per-round ratios\n");
    printf("%-8s %3s %-6s | %9s %9s %6s | %8s %8s %6s | %8s %8s\n", "mode", "thr", "access",
           "manual", "auto", "ratio", "written", "written", "ratio", "logged", "logged");
    printf("%-8s %3s %-6s | %9s %9s %6s | %8s %8s %6s | %8s %8s\n", "", "", "", "tx/s", "tx/s",
           "", "manual", "auto", "", "manual", "auto");
    char result[4096] = "";
    double worst_tps = -1, worst_log = -1;
    const char *worst_tps_cell = "-";
    static char names[MAX_CELLS][48];
    for (int i = 0; i < nc; i++) {
        struct cell *x = &cells[i];
        snprintf(names[i], sizeof names[i], "%s_t%d_%s", tpca_mode_name(x->mode), x->nthreads,
                 tpca_pattern_name(x->pattern));
        double tm = cell_median(x, rounds, 0, 0), ta = cell_median(x, rounds, 1, 0);
        double tr = cell_median(x, rounds, -1, 0);
        double wm = cell_median(x, rounds, 0, 1), wa = cell_median(x, rounds, 1, 1);
        double lr = cell_median(x, rounds, -1, 1);
        double gm = cell_median(x, rounds, 0, 2), ga = cell_median(x, rounds, 1, 2);
        if (tr < 0) {
            printf("%-8s %3d %-6s | no round where both sides passed\n", tpca_mode_name(x->mode),
                   x->nthreads, tpca_pattern_name(x->pattern));
            continue;
        }
        printf("%-8s %3d %-6s | %9.0f %9.0f %6.3f | %8.1f %8.1f %6.3f | %8.1f %8.1f\n",
               tpca_mode_name(x->mode), x->nthreads, tpca_pattern_name(x->pattern), tm, ta, tr,
               wm, wa, lr, gm, ga);
        char key[448];
        snprintf(key, sizeof key, "tps_manual_%s", names[i]);
        kv(result, sizeof result, key, "%.0f", tm);
        snprintf(key, sizeof key, "tps_auto_%s", names[i]);
        kv(result, sizeof result, key, "%.0f", ta);
        snprintf(key, sizeof key, "tps_ratio_%s", names[i]);
        kv(result, sizeof result, key, "%.3f", tr);
        snprintf(key, sizeof key, "logw_manual_%s", names[i]);
        kv(result, sizeof result, key, "%.1f", wm);
        snprintf(key, sizeof key, "logw_auto_%s", names[i]);
        kv(result, sizeof result, key, "%.1f", wa);
        snprintf(key, sizeof key, "logw_ratio_%s", names[i]);
        kv(result, sizeof result, key, "%.3f", lr);
        /* The goals are about no_flush; the headline is the worst cell. */
        if (x->mode == MODE_NO_FLUSH) {
            if (worst_tps < 0 || tr < worst_tps) {
                worst_tps = tr;
                worst_tps_cell = names[i];
            }
            if (lr > worst_log)
                worst_log = lr;
        }
    }
    bool tps_met = worst_tps >= GOAL_TPS_RATIO, log_met = worst_log >= 0 &&
                                                       worst_log <= GOAL_LOG_RATIO;
    printf("\ngoals of issue 8 (no_flush; the worst cell counts):\n");
    printf("  throughput auto/manual %.3f (%s), goal >= %.1f: %s\n", worst_tps, worst_tps_cell,
           GOAL_TPS_RATIO, tps_met ? "met" : "NOT MET");
    printf("  log bytes written auto/manual %.3f, goal <= %.1f: %s\n", worst_log,
           GOAL_LOG_RATIO, log_met ? "met" : "NOT MET");
    if (failures)
        printf("%d run(s) FAILED their check (see stderr)\n", failures);
    kv(result, sizeof result, "goal_tps_ratio", "%.3f", worst_tps);
    strncat(result, tps_met ? " goal_tps_met=yes" : " goal_tps_met=no",
            sizeof result - strlen(result) - 1);
    kv(result, sizeof result, "goal_log_ratio", "%.3f", worst_log);
    strncat(result, log_met ? " goal_log_met=yes" : " goal_log_met=no",
            sizeof result - strlen(result) - 1);
    kv(result, sizeof result, "failures", "%.0f", failures);
    kv(result, sizeof result, "rounds", "%.0f", rounds);
    kv(result, sizeof result, "seconds", "%.1f", cfg.seconds);
    printf("RESULT%s\n", result);
    if (dir == tmpdir)
        rmdir(tmpdir);
    return failures ? 1 : 0;
}
