/*
 * mount_bench - how fast transactions go through an rvmfs mount, next to
 * the disk and to librvm called directly (issue 10).
 *
 *   mount_bench [--seconds S] [--rounds N] [--dir DIR] [--only K,K...]
 *               [-o MOUNTOPTS] [--keep] [RVMFS_BINARY]
 *
 * It makes DIR/rvmfs-mbench.XXXXXX (DIR defaults to /var/tmp: a disk, not
 * tmpfs) with a plain directory and an rvmfs store side by side, mounts
 * the store, and measures every cell for S seconds (after a short warm-up)
 * in each of N rounds.  The order of the cells rotates from round to round
 * and the file systems are synced before each cell, so the disk's drift
 * hits every cell alike; the figures are the medians of the rounds.
 *
 * Output: a table, the goals of issue 10 with their ratios, and one line
 *   RESULT key=value ...
 * with every figure (operations/s; MB/s for the mapped cells) and ratio.
 * Exit status: 0 when every cell ran (missed goals are reported, not
 * failures), 1 on an error, 2 on bad usage.
 *
 * The rvmfs binary: the argument, else $RVMFS_BIN, else mount/rvmfs of the
 * build directory this program was built in.
 */
#include "mb.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <time.h>
#include <sys/xattr.h>
#include <unistd.h>

atomic_bool mb_stop;

/* The order puts the cells a goal compares next to each other (the order
 * rotates by one cell per round, so they stay neighbours). */
static const struct mb_cell cells[] = {
    {"xattr", "mount: xattr begin, pwrite 4K, xattr commit", K_XATTR, 1, MB_IO},
    {"librvm", "librvm: set_range 4K + copy + end(flush)", K_LIBRVM, 1, MB_IO},
    {"ioctl", "mount: ioctl begin, pwrite 4K, ioctl commit", K_IOCTL, 1, MB_IO},
    {"raw", "plain file: pwrite 4K + fdatasync", K_RAW, 1, MB_IO},
    {"auto", "mount: pwrite 4K + fdatasync", K_AUTO, 1, MB_IO},
    {"nf_ioctl", "mount: ioctl begin, pwrite 4K, commit no_flush", K_NF_IOCTL, 1, MB_IO},
    {"nf_pwrite", "mount: pwrite 4K, no flush", K_NF_PWRITE, 1, MB_IO},
    {"group1", "mount: xattr txns, 1 writer, total", K_GROUP, 1, MB_IO},
    {"group8", "mount: xattr txns, 8 writers, total", K_GROUP, 8, MB_IO},
    {"group2", "mount: xattr txns, 2 writers, total", K_GROUP, 2, MB_IO},
    {"group4", "mount: xattr txns, 4 writers, total", K_GROUP, 4, MB_IO},
    {"mapped", "mount: dirty 64K in mmap, msync + commit", K_MAPPED, 1, MB_MAP},
    {"mapped_pwrite", "mount: begin, pwrite 64K, commit", K_MAPPED_PWRITE, 1, MB_MAP},
};
#define NCELLS ((int)(sizeof cells / sizeof cells[0]))

struct goal {
    const char *key, *num, *den;
    double min;
};
static const struct goal goals[] = {
    {"xattr_librvm", "xattr", "librvm", 0.7},
    {"ioctl_librvm", "ioctl", "librvm", 0.8},
    {"auto_raw", "auto", "raw", 0.8},
    {"nf_ioctl_pwrite", "nf_ioctl", "nf_pwrite", 0.3},
    {"group8_group1", "group8", "group1", 4.0},
    {"mapped_pwrite", "mapped", "mapped_pwrite", 0.5},
};
#define NGOALS ((int)(sizeof goals / sizeof goals[0]))

#define MAX_ROUNDS 64

static struct mb_env env;
static bool keep;

static void on_exit_cleanup(void)
{
    mb_env_cleanup(keep);
}

static void on_signal(int sig)
{
    (void)sig;
    if (atomic_exchange(&mb_stop, true)) {
        /* Second ^C: do not wait for the loops; detach the mount. */
        if (env.daemon_pid)
            kill(env.daemon_pid, SIGKILL);
        pid_t p = fork();
        if (p == 0) {
            execlp("fusermount3", "fusermount3", "-u", "-z", env.mnt, (char *)NULL);
            _exit(127);
        }
        _exit(130);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: mount_bench [--seconds S] [--rounds N] [--dir DIR] [--only K,K...]\n"
        "                   [-o MOUNTOPTS] [--keep] [RVMFS_BINARY]\n"
        "  --seconds S   measured time of each cell in each round (2)\n"
        "  --rounds N    rounds; figures are medians (3, at least 1)\n"
        "  --dir DIR     where the store and the plain files go (/var/tmp);\n"
        "                must be a disk, not tmpfs\n"
        "  --only K,...  run only these cells (keys of the RESULT line)\n"
        "  -o OPTS       mount options for the daemon (e.g. flush_interval=0)\n"
        "  --keep        keep the work directory (daemon.log) afterwards\n"
        "  RVMFS_BINARY  the daemon (default: $RVMFS_BIN, else mount/rvmfs of\n"
        "                this program's build directory)\n");
}

static const char *default_daemon(void)
{
    static char path[PATH_MAX];
    const char *envbin = getenv("RVMFS_BIN");
    if (envbin && envbin[0])
        return envbin;
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - 32);
    if (n <= 0)
        return "rvmfs";
    path[n] = 0;
    char *slash = strrchr(path, '/');
    if (!slash)
        return "rvmfs";
    /* BUILD/tests/bench/mount/mount_bench -> BUILD/mount/rvmfs */
    strcpy(slash, "/../../../mount/rvmfs");
    return path;
}

static bool selected(const char *only, const char *key)
{
    if (!only)
        return true;
    size_t kl = strlen(key);
    for (const char *p = only; *p;) {
        const char *comma = strchr(p, ',');
        size_t l = comma ? (size_t)(comma - p) : strlen(p);
        if (l == kl && !strncmp(p, key, l))
            return true;
        p += l + (comma ? 1 : 0);
    }
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static const char *fs_name(long type)
{
    switch ((unsigned long)type) {
    case 0xEF53: return "ext4";
    case 0x58465342: return "xfs";
    case 0x9123683E: return "btrfs";
    case 0x2FC12FC1: return "zfs";
    case 0x794c7630: return "overlayfs";
    case 0x6969: return "nfs";
    default: return "other";
    }
}

static const char *mount_transport(const char *mnt)
{
    char buf[8192];
    ssize_t n = getxattr(mnt, "user.rvm.stat", buf, sizeof(buf) - 1);
    if (n <= 0)
        return "unknown";
    buf[n] = 0;
    return strstr(buf, "transport=io_uring\n") ? "io_uring" : "dev_fuse";
}

static void print_machine(const char *dir, const char *daemon, double secs, int rounds)
{
    char model[256] = "unknown", line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && c) {
            snprintf(model, sizeof model, "%s", c + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    }
    if (f)
        fclose(f);
    struct utsname u;
    uname(&u);
    struct statfs sf;
    statfs(dir, &sf);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    printf("mount_bench: %s\n", date);
    printf("machine: %ld CPUs, %s, Linux %s\n", sysconf(_SC_NPROCESSORS_ONLN),
           model, u.release);
    printf("dir: %s (%s); daemon: %s\n", dir, fs_name((long)sf.f_type), daemon);
    printf("cells: %.1f s each, %d rounds, medians\n\n", secs, rounds);
}

static int index_of(const char *key)
{
    for (int i = 0; i < NCELLS; i++)
        if (!strcmp(cells[i].key, key))
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    double secs = 2.0;
    int rounds = 3;
    const char *dir = "/var/tmp", *only = NULL, *daemon = NULL, *opts = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--seconds") && more)
            secs = atof(argv[++i]);
        else if (!strcmp(a, "--rounds") && more)
            rounds = atoi(argv[++i]);
        else if (!strcmp(a, "--dir") && more)
            dir = argv[++i];
        else if (!strcmp(a, "--only") && more)
            only = argv[++i];
        else if (!strcmp(a, "-o") && more)
            opts = argv[++i];
        else if (!strcmp(a, "--keep"))
            keep = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (a[0] != '-' && !daemon)
            daemon = a;
        else {
            usage(stderr);
            return 2;
        }
    }
    if (secs <= 0 || rounds < 1 || rounds > MAX_ROUNDS) {
        fprintf(stderr, "mount_bench: --seconds must be > 0, --rounds 1..%d\n",
                MAX_ROUNDS);
        return 2;
    }
    if (!daemon)
        daemon = default_daemon();
    if (access(daemon, X_OK) != 0) {
        fprintf(stderr, "mount_bench: %s: %s; give the rvmfs binary as the "
                "argument\n", daemon, strerror(errno));
        return 1;
    }
    if (access("/dev/fuse", R_OK | W_OK) != 0) {
        printf("SKIP: /dev/fuse is not usable here\n");
        return 77;
    }
    int run[NCELLS], nrun = 0;
    for (int i = 0; i < NCELLS; i++)
        if (selected(only, cells[i].key))
            run[nrun++] = i;
    if (nrun == 0) {
        fprintf(stderr, "mount_bench: --only %s matches no cell\n", only);
        return 2;
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    atexit(on_exit_cleanup);
    env.daemon = daemon;
    env.mount_opts = opts;
    print_machine(dir, daemon, secs, rounds);
    fflush(stdout);
    if (mb_env_setup(&env, dir) < 0 || mb_daemon_start(&env) < 0 ||
        mb_rvm_setup(&env) < 0)
        return 1;
    fprintf(stderr, "mount_bench: daemon pid %d, mount %s\n",
            (int)env.daemon_pid, env.mnt);
    /* -o uring falls back to /dev/fuse where the kernel does not offer
     * it: the figures must say which transport they measured. */
    const char *transport = mount_transport(env.mnt);
    printf("transport: %s%s\n\n", transport,
           opts && strstr(opts, "uring") && strcmp(transport, "io_uring")
               ? " (-o uring asked; the kernel did not offer it)" : "");
    if (mb_cells_prepare(&env, cells, NCELLS) < 0)
        return 1;

    static double rate[NCELLS][MAX_ROUNDS];
    static struct mb_steps steps[NCELLS];
    double warm = secs / 8 < 0.25 ? secs / 8 : 0.25;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < nrun; k++) {
            const struct mb_cell *c = &cells[run[(k + r) % nrun]];
            char err[256];
            sync();
            if (mb_cell_run(&env, c, warm, secs, &rate[c - cells][r],
                            &steps[c - cells], err, sizeof err) < 0) {
                fprintf(stderr, "mount_bench: %s: %s\n", c->key, err);
                if (!atomic_load(&mb_stop))
                    mb_dump_daemon_log(&env);
                return 1;
            }
            fprintf(stderr, "round %d %-14s %10.1f/s\n", r + 1, c->key,
                    rate[c - cells][r]);
        }
    }

    double med[NCELLS];
    bool have[NCELLS] = {false};
    printf("%-14s %-48s %10s %10s %10s %6s\n", "cell", "what", "median", "min",
           "max", "unit");
    for (int k = 0; k < nrun; k++) {
        int i = run[k];
        double lo = rate[i][0], hi = rate[i][0];
        for (int r = 1; r < rounds; r++) {
            lo = rate[i][r] < lo ? rate[i][r] : lo;
            hi = rate[i][r] > hi ? rate[i][r] : hi;
        }
        double scale = cells[i].bytes == MB_MAP ? MB_MAP / 1e6 : 1.0;
        med[i] = median(rate[i], rounds) * scale;
        have[i] = true;
        printf("%-14s %-48s %10.1f %10.1f %10.1f %6s\n", cells[i].key,
               cells[i].what, med[i], lo * scale, hi * scale,
               scale == 1.0 ? "ops/s" : "MB/s");
    }

    /* Per thread: with n writers each operation takes n times longer
     * than the total rate says. */
    printf("\nwhere a client's operation spends its time (mean us, all rounds)\n");
    for (int k = 0; k < nrun; k++) {
        int i = run[k];
        const char *const *names = mb_step_names(&cells[i]);
        double n = steps[i].ops ? (double)steps[i].ops : 1, sum = 0;
        printf("%-14s", cells[i].key);
        for (int j = 0; names[j] && j < MB_STEPS; j++) {
            printf("  %s %.1f", names[j], steps[i].secs[j] / n * 1e6);
            sum += steps[i].secs[j];
        }
        printf("  = %.1f\n", sum / n * 1e6);
        if (steps[i].has_log && steps[i].commits)
            printf("%-14s  log: %.2f forces/commit, %.0f bytes written/commit, "
                   "%llu truncations\n", "",
                   (double)steps[i].forces / (double)steps[i].commits,
                   (double)steps[i].log_bytes / (double)steps[i].commits,
                   (unsigned long long)steps[i].truncations);
    }

    char result[2048];
    int len = snprintf(result, sizeof result, "RESULT seconds=%g rounds=%d transport=%s",
                       secs, rounds, transport);
    for (int k = 0; k < nrun; k++) {
        int i = run[k];
        len += snprintf(result + len, sizeof result - (size_t)len, " %s%s=%.1f",
                        cells[i].key, cells[i].bytes == MB_MAP ? "_mbs" : "",
                        med[i]);
    }
    /* A goal's ratio is the median over rounds of the ratio within each
     * round: the two cells ran next to each other, so the disk's drift
     * between rounds cancels out. */
    printf("\n%-16s %10s %10s %8s  %s\n", "goal", "ratio", "of medians",
           "needs", "");
    int met = 0, judged = 0;
    for (int g = 0; g < NGOALS; g++) {
        int a = index_of(goals[g].num), b = index_of(goals[g].den);
        if (!have[a] || !have[b] || med[b] <= 0)
            continue;
        double per[MAX_ROUNDS];
        for (int r = 0; r < rounds; r++)
            per[r] = rate[b][r] > 0 ? rate[a][r] / rate[b][r] : 0;
        double ratio = median(per, rounds);
        bool ok = ratio >= goals[g].min;
        judged++;
        met += ok;
        printf("%-16s %10.3f %10.3f %8.2f  %s\n", goals[g].key, ratio,
               med[a] / med[b], goals[g].min, ok ? "met" : "MISSED");
        len += snprintf(result + len, sizeof result - (size_t)len, " %s=%.3f",
                        goals[g].key, ratio);
    }
    snprintf(result + len, sizeof result - (size_t)len, " goals_met=%d/%d", met,
             judged);
    printf("\n%s\n", result);
    fflush(stdout);

    mb_rvm_stop(&env);
    int rc = mb_daemon_stop(&env);
    if (rc != 0)
        mb_dump_daemon_log(&env);
    return rc == 0 ? 0 : 1;
}
