/*
 * scale.c - the scale benchmark of issue 7 (docs/performance.md, "Scale").
 *
 *   scale_bench [--dir DIR] [--seconds S] [--seg-gib G] [--log-mib M]
 *               [--seq-mib M] [--rounds N] [--only big,mount,recover,seq]
 *               [--big-opts O] [--seq-opts O] [--keep] RVMFS_BINARY
 *
 * big      a SEG_GIB sparse file made by ftruncate through the mount;
 *          S seconds of random 4 KiB transactions (begin, pwrite, commit
 *          no_flush; fsync at the end); the daemon's VmRSS sampled every
 *          100 ms; then unmount, mount again and check every page written
 *          (and a sample of pages never written, which must read zero).
 * mount    drop the page cache, start the daemon on the store with the big
 *          file, open it and read a written page: the time from exec to
 *          the bytes, per round.
 * recover  a full log of M MiB recovered by librvm, in MB/s of log against
 *          a plain read of the same file, both from a cold page cache.
 * seq      SEQ_MIB written through the mount in 1 MiB write()s (each its
 *          own transaction), fsync at the end, against the same bytes
 *          written the same way to a plain file on the same filesystem
 *          (dd bs=1M conv=fsync of the same data), run just before and
 *          just after each rvmfs round: the ratio is to their mean.
 *
 * Needs root (dropping the page cache, FUSE).  Everything goes to a new
 * directory under DIR (default /var/tmp), removed at exit.
 */
#include "scale.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rvmfs.h>

#define PAGE 4096u

struct opts {
    const char *dir, *daemon, *big_opts, *seq_opts;
    double seconds;
    uint64_t seg_gib, log_mib, seq_mib;
    int rounds;
    bool keep;
    bool run_big, run_mount, run_recover, run_seq;
};

static struct sc_env env;
static struct opts opt = {
    .dir = "/var/tmp", .seconds = 60, .seg_gib = 64, .log_mib = 1024,
    .seq_mib = 2048, .rounds = 3,
};

/* ---- the big file ---- */

static uint32_t *ver;        /* version written to each page, 0: never */
static uint64_t npages;
static uint64_t probe_page;  /* a written page, for the mount cell */

static void page_fill(uint64_t *w, uint64_t p, uint32_t v)
{
    uint64_t x = p * 0x9e3779b97f4a7c15ull ^ ((uint64_t)v << 32 | v);
    for (unsigned i = 0; i < PAGE / 8; i++)
        w[i] = x + i;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static char big_path[PATH_MAX + 8];

static int big_update(int fd, uint64_t p, uint32_t v)
{
    uint64_t w[PAGE / 8];
    struct rvmfs_begin_arg b = {0, 0};
    struct rvmfs_commit_arg c = {RVMFS_NO_FLUSH};
    page_fill(w, p, v);
    if (ioctl(fd, RVMFS_IOC_BEGIN, &b) < 0)
        return -1;
    if (pwrite(fd, w, PAGE, (off_t)(p * PAGE)) != PAGE) {
        ioctl(fd, RVMFS_IOC_ABORT);
        return -1;
    }
    return ioctl(fd, RVMFS_IOC_COMMIT, &c);
}

/* Check every written page and `zeros` pages never written. */
static int big_verify(uint64_t *bad, uint64_t *checked, struct sc_mem *m)
{
    int fd = open(big_path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size != npages * PAGE) {
        fprintf(stderr, "scale: %s: missing or wrong size\n", big_path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    uint64_t w[PAGE / 8], want[PAGE / 8];
    uint64_t rng = 0x1234567, zeros = 4096;
    *bad = *checked = 0;
    sc_mem_start(env.daemon_pid, m);
    for (uint64_t p = 0; p < npages; p++) {
        if (!ver[p])
            continue;
        page_fill(want, p, ver[p]);
        if (pread(fd, w, PAGE, (off_t)(p * PAGE)) != PAGE || memcmp(w, want, PAGE)) {
            if (*bad < 5)
                fprintf(stderr, "scale: page %llu differs after remount\n",
                        (unsigned long long)p);
            (*bad)++;
        }
        (*checked)++;
    }
    memset(want, 0, sizeof want);
    for (uint64_t i = 0; i < zeros; i++) {
        uint64_t p = xorshift(&rng) % npages;
        if (ver[p])
            continue;
        if (pread(fd, w, PAGE, (off_t)(p * PAGE)) != PAGE || memcmp(w, want, PAGE))
            (*bad)++;
        (*checked)++;
    }
    sc_mem_stop();
    close(fd);
    return 0;
}

static int cell_big(char *res, size_t reslen)
{
    npages = (opt.seg_gib << 30) / PAGE;
    ver = calloc(npages, sizeof *ver);
    if (!ver) {
        fprintf(stderr, "scale: no memory for %llu page versions\n",
                (unsigned long long)npages);
        return -1;
    }
    if (sc_daemon_start(&env, opt.big_opts, NULL) < 0)
        return -1;
    snprintf(big_path, sizeof big_path, "%s/big", env.mnt);
    int fd = open(big_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    double t0 = sc_now();
    if (fd < 0 || ftruncate(fd, (off_t)(npages * PAGE)) < 0) {
        fprintf(stderr, "scale: cannot make %s of %llu GiB: %s\n", big_path,
                (unsigned long long)opt.seg_gib, strerror(errno));
        sc_dump_daemon_log(&env);
        return -1;
    }
    double t_create = sc_now() - t0;

    struct sc_mem mem;
    sc_mem_start(env.daemon_pid, &mem);
    uint64_t rng = 88172645463325252ull, n = 0;
    t0 = sc_now();
    double next_report = t0 + 10, now;
    while ((now = sc_now()) - t0 < opt.seconds) {
        uint64_t p = xorshift(&rng) % npages;
        if (big_update(fd, p, (uint32_t)(n + 1)) < 0) {
            fprintf(stderr, "scale: transaction %llu on page %llu: %s\n",
                    (unsigned long long)n, (unsigned long long)p, strerror(errno));
            sc_mem_stop();
            close(fd);
            return -1;
        }
        ver[p] = (uint32_t)++n;
        probe_page = p;
        if (now >= next_report) {
            next_report += 10;
            fprintf(stderr, "  big: %.0f s, %llu transactions, daemon VmRSS max %.0f MiB\n",
                    now - t0, (unsigned long long)n, (double)mem.rss_max_kb / 1024);
        }
    }
    double t_run = sc_now() - t0;
    t0 = sc_now();
    if (fsync(fd) < 0) {
        fprintf(stderr, "scale: fsync %s: %s\n", big_path, strerror(errno));
        return -1;
    }
    double t_fsync = sc_now() - t0;
    close(fd);
    sc_mem_stop();

    t0 = sc_now();
    if (sc_daemon_stop(&env) < 0)
        return -1;
    double t_umount = sc_now() - t0;
    double t_mount;
    if (sc_daemon_start(&env, opt.big_opts, &t_mount) < 0)
        return -1;
    uint64_t bad, checked, distinct = 0;
    for (uint64_t p = 0; p < npages; p++)
        distinct += ver[p] != 0;
    struct sc_mem vmem;
    t0 = sc_now();
    if (big_verify(&bad, &checked, &vmem) < 0)
        return -1;
    double t_verify = sc_now() - t0;
    if (sc_daemon_stop(&env) < 0)
        return -1;

    printf("big: %llu GiB sparse file made by ftruncate in %.1f ms\n",
           (unsigned long long)opt.seg_gib, t_create * 1e3);
    printf("big: %llu transactions of 4 KiB in %.1f s = %.0f tx/s, %llu distinct pages (%.0f MiB)\n",
           (unsigned long long)n, t_run, (double)n / t_run,
           (unsigned long long)distinct, (double)distinct * PAGE / 1048576);
    printf("big: daemon VmRSS max %.1f MiB (RssAnon max %.1f MiB), VmHWM %.1f MiB, %llu samples; goal < 1024 MiB: %s\n",
           (double)mem.rss_max_kb / 1024, (double)mem.anon_max_kb / 1024,
           (double)mem.hwm_kb / 1024, (unsigned long long)mem.samples,
           mem.hwm_kb < 1024 * 1024 ? "met" : "MISSED");
    printf("big: fsync %.2f s, unmount %.2f s, mount %.1f ms\n",
           t_fsync, t_umount, t_mount * 1e3);
    printf("big: after remount %llu pages checked in %.1f s, %llu wrong: %s; daemon VmRSS max while checking %.1f MiB (RssAnon %.1f MiB)\n",
           (unsigned long long)checked, t_verify, (unsigned long long)bad,
           bad ? "FAILED" : "ok", (double)vmem.rss_max_kb / 1024,
           (double)vmem.anon_max_kb / 1024);
    snprintf(res, reslen, " big_tx_s=%.0f big_rss_max_mib=%.1f big_hwm_mib=%.1f big_verified=%s",
             (double)n / t_run, (double)mem.rss_max_kb / 1024,
             (double)mem.hwm_kb / 1024, bad ? "no" : "yes");
    return bad ? -1 : 0;
}

/* ---- mount and first read ---- */

static int cell_mount(char *res, size_t reslen)
{
    uint64_t w[PAGE / 8], want[PAGE / 8];
    snprintf(big_path, sizeof big_path, "%s/big", env.mnt);
    if (!ver) { /* big did not run: make the file, one page written */
        npages = (opt.seg_gib << 30) / PAGE;
        probe_page = npages / 3;
        if (sc_daemon_start(&env, opt.big_opts, NULL) < 0)
            return -1;
        int fd = open(big_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        page_fill(want, probe_page, 1);
        if (fd < 0 || ftruncate(fd, (off_t)(npages * PAGE)) < 0 ||
            pwrite(fd, want, PAGE, (off_t)(probe_page * PAGE)) != PAGE || fsync(fd) < 0) {
            fprintf(stderr, "scale: cannot make %s: %s\n", big_path, strerror(errno));
            return -1;
        }
        close(fd);
        if (sc_daemon_stop(&env) < 0)
            return -1;
    } else {
        page_fill(want, probe_page, ver[probe_page]);
    }
    double worst = 0, sum = 0;
    for (int r = 0; r < opt.rounds; r++) {
        sc_drop_caches();
        double t0 = sc_now(), t_mount;
        if (sc_daemon_start(&env, opt.big_opts, &t_mount) < 0)
            return -1;
        double t1 = sc_now();
        int fd = open(big_path, O_RDONLY);
        struct stat st;
        ssize_t got = fd < 0 ? -1 : pread(fd, w, PAGE, (off_t)(probe_page * PAGE));
        double t_total = sc_now() - t0, t_read = sc_now() - t1;
        bool ok = got == PAGE && memcmp(w, want, PAGE) == 0 &&
                  fstat(fd, &st) == 0 && (uint64_t)st.st_size == npages * PAGE;
        if (fd >= 0)
            close(fd);
        printf("mount: round %d: mounted in %.1f ms, open + first read %.1f ms, total %.1f ms, data %s\n",
               r + 1, t_mount * 1e3, t_read * 1e3, t_total * 1e3, ok ? "ok" : "WRONG");
        if (sc_daemon_stop(&env) < 0 || !ok)
            return -1;
        if (t_total > worst)
            worst = t_total;
        sum += t_total;
    }
    printf("mount: %llu GiB segment, cold cache: mean %.1f ms, worst %.1f ms; goal < 1000 ms: %s\n",
           (unsigned long long)opt.seg_gib, sum / opt.rounds * 1e3, worst * 1e3,
           worst < 1 ? "met" : "MISSED");
    snprintf(res, reslen, " mount_first_read_ms=%.1f", worst * 1e3);
    return 0;
}

/* ---- recovery ---- */

static int cell_recover(char *res, size_t reslen)
{
    static const char *shapes[] = {"seq", "rand"};
    size_t used = 0;
    for (int i = 0; i < 2; i++) {
        struct sc_rec_result r;
        if (sc_rec_run(&env, shapes[i], opt.log_mib, &r) < 0)
            return -1;
        printf("recover %s: log %.0f MiB, %.0f MiB used by %llu transactions (filled in %.1f s)\n",
               r.shape, (double)r.log_size / 1048576, (double)r.log_used / 1048576,
               (unsigned long long)r.records, r.fill_s);
        printf("recover %s: recovery %.2f s (librvm's count %.2f s) = %.0f MB/s; "
               "plain read of the log %.0f / %.0f MB/s (before / after); ratio %.2f, goal >= 0.5: %s; segment %s\n",
               r.shape, r.recover_s, r.recover_lib_s, r.mbs, r.read_mbs_before,
               r.read_mbs_after, r.ratio, r.ratio >= 0.5 ? "met" : "MISSED",
               r.verified ? "verified" : "WRONG");
        printf("recover %s: segments synced and log freed %.2f s after that: "
               "%.0f MB/s, ratio %.2f counting it\n",
               r.shape, r.durable_s, r.mbs_durable, r.ratio_durable);
        used += (size_t)snprintf(res + used, reslen - used,
                                 " recover_%s_mbs=%.0f recover_%s_ratio=%.2f"
                                 " recover_%s_durable_ratio=%.2f",
                                 r.shape, r.mbs, r.shape, r.ratio, r.shape, r.ratio_durable);
        if (!r.verified)
            return -1;
    }
    return 0;
}

/* ---- sequential writes ---- */

/* The pattern both sides write: not zeros, which a thin-provisioned or
 * compressing virtual disk may store for free. */
static void seq_fill(uint64_t *buf, size_t bs)
{
    for (size_t i = 0; i < bs / 8; i++)
        buf[i] = 0x0101010101010101ull * (i % 251 + 1);
}

/* The daemon's CPU time so far (user + system), in seconds. */
static double daemon_cpu(void)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)env.daemon_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* after the command name */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                     &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Until the daemon used no CPU for 0.3 s (its truncation after the run,
 * up to 60 s): the next plain run must not share the disk with it. */
static void daemon_wait_idle(void)
{
    double last = daemon_cpu(), t0 = sc_now();
    while (sc_now() - t0 < 60) {
        usleep(300000);
        double c = daemon_cpu();
        if (c == last)
            return;
        last = c;
    }
}

static double seq_cpu0; /* the daemon's CPU when the last run began */

/* SEQ_MIB 1 MiB write()s of non-zero bytes to a new file at path, then
 * fsync; the file is removed after.  With m, the daemon's memory is
 * sampled and *cpu gets its CPU time over the run.  MB/s, or -1. */
static double seq_write(const char *path, struct sc_mem *m, double *cpu)
{
    size_t bs = 1u << 20;
    uint64_t *buf = malloc(bs);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!buf || fd < 0) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    seq_fill(buf, bs);
    double c0 = 0;
    if (m) {
        sc_mem_start(env.daemon_pid, m);
        c0 = seq_cpu0 = daemon_cpu();
    }
    double t0 = sc_now();
    int err = 0;
    for (uint64_t k = 0; k < opt.seq_mib && !err; k++) {
        buf[0] = k + 1;
        err = write(fd, buf, bs) != (ssize_t)bs;
    }
    err |= fsync(fd) < 0;
    double t = sc_now() - t0;
    if (m) {
        *cpu = daemon_cpu() - c0;
        sc_mem_stop();
    }
    close(fd);
    free(buf);
    unlink(path);
    sync();
    return err ? -1 : (double)(opt.seq_mib << 20) / t / 1e6;
}

/* SEQ_MIB 1 MiB write()s of the same bytes rvmfs gets, fsync at the end,
 * to a plain file on the same filesystem: dd bs=1M conv=fsync, without
 * dd's /dev/zero.  MB/s, or -1. */
static double run_plain(void)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/dd", env.plain);
    return seq_write(path, NULL, NULL);
}

static double run_rvmfs(struct sc_mem *m, double *cpu)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/seq", env.mnt);
    return seq_write(path, m, cpu);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cell_seq(char *res, size_t reslen)
{
    if (sc_daemon_start(&env, opt.seq_opts, NULL) < 0)
        return -1;
    double ratios[64];
    int n = opt.rounds < 64 ? opt.rounds : 64;
    /* The disk's rate drifts by 3-4x within minutes (its host's cache):
     * each rvmfs run is framed by a plain run just before and just after,
     * and compared with their mean. */
    double before = run_plain();
    for (int r = 0; r < n; r++) {
        struct sc_mem m;
        double cpu = 0;
        double fs = run_rvmfs(&m, &cpu);
        daemon_wait_idle();
        double cpu_all = daemon_cpu() - seq_cpu0; /* with the truncation after fsync */
        double after = run_plain();
        if (before <= 0 || after <= 0 || fs <= 0) {
            fprintf(stderr, "scale: sequential write round %d failed\n", r + 1);
            sc_dump_daemon_log(&env);
            return -1;
        }
        double plain = (before + after) / 2;
        ratios[r] = fs / plain;
        printf("seq: round %d: %llu MiB, rvmfs %.0f MB/s, plain %.0f MB/s (%.0f before, %.0f after), ratio %.2f; daemon CPU %.2f s per GiB to the fsync, %.2f until idle; VmRSS max %.0f MiB\n",
               r + 1, (unsigned long long)opt.seq_mib, fs, plain, before, after, ratios[r],
               cpu * 1024 / (double)opt.seq_mib, cpu_all * 1024 / (double)opt.seq_mib,
               (double)m.rss_max_kb / 1024);
        before = after;
    }
    if (sc_daemon_stop(&env) < 0)
        return -1;
    qsort(ratios, (size_t)n, sizeof *ratios, cmp_double);
    double med = ratios[n / 2];
    printf("seq: median ratio rvmfs / plain %.2f over %d rounds; goal >= 0.4: %s\n",
           med, n, med >= 0.4 ? "met" : "MISSED");
    snprintf(res, reslen, " seq_ratio=%.2f", med);
    return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: scale_bench [--dir DIR] [--seconds S] [--seg-gib G] [--log-mib M]\n"
               "         [--seq-mib M] [--rounds N] [--only big,mount,recover,seq]\n"
               "         [--big-opts OPTS] [--seq-opts OPTS] [--keep] RVMFS_BINARY\n");
}

static void on_signal(int sig)
{
    (void)sig;
    exit(1); /* atexit unmounts and cleans up */
}

static void at_exit(void)
{
    sc_env_cleanup(opt.keep);
}

static int parse(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dir", 1, 0, 'd'}, {"seconds", 1, 0, 's'}, {"seg-gib", 1, 0, 'g'},
        {"log-mib", 1, 0, 'l'}, {"seq-mib", 1, 0, 'q'}, {"rounds", 1, 0, 'r'},
        {"only", 1, 0, 'o'}, {"big-opts", 1, 0, 'B'}, {"seq-opts", 1, 0, 'S'},
        {"keep", 0, 0, 'k'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *only = "big,mount,recover,seq";
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'd': opt.dir = optarg; break;
        case 's': opt.seconds = atof(optarg); break;
        case 'g': opt.seg_gib = strtoull(optarg, NULL, 10); break;
        case 'l': opt.log_mib = strtoull(optarg, NULL, 10); break;
        case 'q': opt.seq_mib = strtoull(optarg, NULL, 10); break;
        case 'r': opt.rounds = atoi(optarg); break;
        case 'o': only = optarg; break;
        case 'B': opt.big_opts = optarg; break;
        case 'S': opt.seq_opts = optarg; break;
        case 'k': opt.keep = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind != argc - 1 || opt.seg_gib == 0 || opt.log_mib < 1 ||
        opt.seq_mib == 0 || opt.rounds < 1 || opt.seconds <= 0) {
        usage(stderr);
        return -1;
    }
    opt.daemon = argv[optind];
    opt.run_big = strstr(only, "big") != NULL;
    opt.run_mount = strstr(only, "mount") != NULL;
    opt.run_recover = strstr(only, "recover") != NULL;
    opt.run_seq = strstr(only, "seq") != NULL;
    return 0;
}

int main(int argc, char **argv)
{
    if (parse(argc, argv) < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (geteuid() != 0) {
        fprintf(stderr, "scale: needs root (drop_caches); skipped\n");
        return 77;
    }
    if (sc_env_setup(&env, opt.dir, opt.daemon) < 0)
        return 1;
    atexit(at_exit);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    char res[4][256] = {"", "", "", ""};
    int rc = 0;
    if (opt.run_big && cell_big(res[0], sizeof res[0]) < 0)
        rc = 1;
    if (rc == 0 && opt.run_mount && cell_mount(res[1], sizeof res[1]) < 0)
        rc = 1;
    if (rc == 0 && opt.run_recover && cell_recover(res[2], sizeof res[2]) < 0)
        rc = 1;
    if (rc == 0 && opt.run_seq && cell_seq(res[3], sizeof res[3]) < 0)
        rc = 1;
    printf("RESULT scale%s%s%s%s%s\n", res[0], res[1], res[2], res[3],
           rc ? " failed=1" : "");
    return rc;
}
