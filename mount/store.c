/*
 * store.c - the store directory (docs/design.md, "The store"):
 *
 *   STORE/rvm.log      the log (or elsewhere with log=)
 *   STORE/tree/        the namespace; a regular file is a hard link to
 *   STORE/seg/<ino>    its segment, named by the backing inode number
 *   STORE/rvmfs.conf   version=1
 *
 * A segment whose last tree/ name is gone (an orphan) is removed only
 * when the log holds no record of it: at mount, right after recovery, and
 * at run time after a truncation.  Otherwise a later file that got the
 * same inode number (and so the same seg/<ino> path) could receive an old
 * file's bytes at recovery.
 */
#include "daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct orphan {
    struct orphan *next;
    ino_t bino;
};

static pthread_mutex_t orphan_mu = PTHREAD_MUTEX_INITIALIZER;
static struct orphan *orphans;
static atomic_uint tmp_seq;
/* Segments created so far, and how many of their seg/ entries are known
 * durable (see store_seg_durable). */
static atomic_uint_fast64_t created_gen, synced_gen;

static int conf_check(int dfd)
{
    char buf[256];
    int fd = openat(dfd, "rvmfs.conf", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return -EIO;
    buf[n] = 0;
    /* a line that is exactly version=1 ("version=10" is another store) */
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        if (!strcmp(line, "version=1"))
            return 0;
    return -EPROTO;
}

static bool dir_empty(int dfd)
{
    int fd = dup(dfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return false;
    }
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            empty = false;
    closedir(d);
    return empty;
}

static int store_create(int dfd, uint64_t log_size, const char *log_path)
{
    if (mkdirat(dfd, "tree", 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mkdirat(dfd, "seg", 0700) < 0 && errno != EEXIST)
        return -errno;
    if (access(log_path, F_OK) != 0) {
        rvm_options_t opts;
        rvm_init_options(&opts);
        opts.log_dev = (char *)log_path;
        rvm_offset_t len = RVM_MK_OFFSET(log_size >> 32 >> 32, log_size);
        rvm_return_t rc = rvm_create_log(&opts, &len, 0600);
        if (rc != RVM_SUCCESS) {
            say("cannot create log %s: %s %s\n", log_path,
                    rvm_return(rc), rvm_errmsg());
            return -EIO;
        }
    }
    /* Written last: a store with rvmfs.conf is complete. */
    int fd = openat(dfd, "rvmfs.conf.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0644);
    if (fd < 0)
        return -errno;
    static const char conf[] = "version=1\n";
    if (write(fd, conf, sizeof(conf) - 1) != (ssize_t)sizeof(conf) - 1 ||
        fsync(fd) < 0) {
        close(fd);
        return -EIO;
    }
    close(fd);
    if (renameat(dfd, "rvmfs.conf.tmp", dfd, "rvmfs.conf") < 0)
        return -errno;
    fsync(dfd);
    return 0;
}

/* CRC32C (docs/log-format.md), bit by bit: it runs once per mount over at
 * most two status blocks. */
static uint32_t crc32c(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= *p++;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

#define LOG_STATUS_SIZE 262144u /* S: slot 1 is at this offset */
#define LOG_STATUS_MAGIC 0x53564D52u

/*
 * The segment dictionary of the status block in force (the valid slot of
 * larger gen, as recovery picks it) names the segments that records in
 * the log will be applied to, by absolute path.
 * Every one must be in this store's seg/ (the same directory, compared by
 * device and inode, so bind mounts and symlinks to the store are fine).
 * Otherwise the log is another store's, or this store was copied or moved
 * while records were pending: recovery would write into the other store's
 * files (or skip the records, losing them).  Returns 0, or -EXDEV with the
 * first foreign path in bad.  A log librvm cannot read is librvm's to
 * report.  Reads the fields in host order: little-endian hosts only, as
 * librvm itself.
 */
static int log_segments_here(const char *log_path, const struct stat *segdir,
                             char *bad, size_t badlen)
{
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char *slot[2] = {malloc(LOG_STATUS_SIZE), malloc(LOG_STATUS_SIZE)};
    uint64_t gen[2] = {0, 0};
    int in_force = -1;
    for (int i = 0; i < 2 && slot[0] && slot[1]; i++) {
        unsigned char *blk = slot[i];
        off_t at = (off_t)i * LOG_STATUS_SIZE;
        uint32_t magic, version, used, crc, zero = 0;
        uint64_t ssize;
        if (pread(fd, blk, 80, at) != 80)
            continue;
        memcpy(&magic, blk, 4);
        memcpy(&version, blk + 4, 4);
        memcpy(&gen[i], blk + 8, 8);
        memcpy(&ssize, blk + 16, 8);
        memcpy(&used, blk + 68, 4);
        memcpy(&crc, blk + 72, 4);
        if (magic != LOG_STATUS_MAGIC || version != 1 ||
            ssize != LOG_STATUS_SIZE || used < 80 || used > LOG_STATUS_SIZE ||
            pread(fd, blk, used, at) != (ssize_t)used)
            continue;
        memcpy(blk + 72, &zero, 4);
        if (crc32c(blk, used) != crc)
            continue;
        if (in_force < 0 || gen[i] > gen[in_force])
            in_force = i; /* recovery reads the valid slot of larger gen */
    }
    close(fd);
    int rc = 0;
    if (in_force >= 0) {
        const unsigned char *blk = slot[in_force];
        uint32_t nsegs, used;
        memcpy(&nsegs, blk + 64, 4);
        memcpy(&used, blk + 68, 4);
        size_t off = 80;
        for (uint32_t i = 0; i < nsegs && rc == 0; i++) {
            uint32_t plen;
            if (off + 16 > used)
                break;
            memcpy(&plen, blk + off + 8, 4);
            if (plen == 0 || plen >= PATH_MAX || plen > used - off - 16)
                break;
            char path[PATH_MAX];
            memcpy(path, blk + off + 16, plen);
            path[plen] = 0;
            char *slash = strrchr(path, '/');
            struct stat ds;
            if (slash)
                *slash = 0;
            if (!slash || stat(slash == path ? "/" : path, &ds) < 0 ||
                ds.st_dev != segdir->st_dev || ds.st_ino != segdir->st_ino) {
                if (slash)
                    *slash = '/';
                snprintf(bad, badlen, "%s", path);
                rc = -EXDEV;
            }
            off += 16 + (((size_t)plen + 7) & ~(size_t)7);
        }
    }
    free(slot[0]);
    free(slot[1]);
    return rc;
}

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "a directory" : S_ISFIFO(m) ? "a FIFO" :
           S_ISCHR(m) ? "a character device" : S_ISSOCK(m) ? "a socket" :
           "not a file";
}

int store_open(const char *store, bool create, uint64_t log_size,
               const char *log_path)
{
    /* Before anything else: opening a FIFO would block for ever (the lock
     * in main.c and librvm both open the log), and a directory or a
     * character device is no log.  A missing log is librvm's to report. */
    struct stat ls;
    if (stat(log_path, &ls) == 0 && !S_ISREG(ls.st_mode) && !S_ISBLK(ls.st_mode)) {
        say("the log %s is %s, not a regular file or a block device; give "
            "the store's log or a new file with -o log=PATH\n", log_path,
            file_kind(ls.st_mode));
        return -EINVAL;
    }
    if (mkdir(store, 0755) < 0 && errno != EEXIST)
        return -errno;
    int dfd = open(store, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = conf_check(dfd);
    if (rc == -ENOENT && create) {
        if (!dir_empty(dfd) && faccessat(dfd, "tree", F_OK, 0) != 0) {
            close(dfd);
            return -ENOTEMPTY; /* someone's directory: never write into it */
        }
        rc = store_create(dfd, log_size, log_path);
    }
    if (rc < 0) {
        close(dfd);
        return rc;
    }
    fs.store_fd = dfd;
    fs.tree_fd = openat(dfd, "tree", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    fs.seg_fd = openat(dfd, "seg", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs.tree_fd < 0 || fs.seg_fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fs.seg_fd, &st) < 0)
        return -errno;
    char bad[PATH_MAX];
    if (log_segments_here(log_path, &st, bad, sizeof(bad)) < 0) {
        say("the log %s has records for %s, which is not in %s/seg: the log "
            "is another store's, or the store was copied or moved before its "
            "log was empty (mount it where it was first, then copy it)\n",
            log_path, bad, store);
        return -EXDEV;
    }
    if (fstat(fs.tree_fd, &st) < 0)
        return -errno;
    fs.root_bino = st.st_ino;
    return 0;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Give back the disk blocks past a segment's logical size (a file that
 * was big once and shrank): they hold zeros, and no log record names them
 * while the log is empty. */
static void seg_trim(const char *name, const struct stat *st)
{
    uint64_t allocated = (uint64_t)st->st_blocks * 512;
    if (allocated <= SEG_HDR + (1u << 20))
        return; /* small: not worth a look */
    int fd = openat(fs.seg_fd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return;
    struct seg_hdr h;
    if (pread(fd, &h, sizeof(h), 0) == sizeof(h) && h.magic == SEG_MAGIC) {
        uint64_t keep = SEG_HDR + ((h.size + 4095) & ~(uint64_t)4095);
        if (allocated > keep + (1u << 20) && (uint64_t)st->st_size > keep)
            fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)keep, st->st_size - (off_t)keep);
    }
    close(fd);
}

/*
 * A segment is named by its inode number, which a copy of the store (cp -a,
 * rsync -H, a backup put back) does not keep: then tree/ names no longer
 * find their segments.  With the log empty no record names a segment, so
 * the names can be made right again: first every wrong name becomes
 * .rekey.<ino> (so that no rename clobbers a name still in use), then
 * those become <ino>.  A crash in between leaves .rekey. names, which the
 * next mount finishes.
 */
static void seg_rekey(void)
{
    for (int pass = 0; pass < 2; pass++) {
        int fd = dup(fs.seg_fd);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            if (fd >= 0)
                close(fd);
            return;
        }
        rewinddir(d); /* the dup shares its offset with fs.seg_fd */
        struct dirent *e;
        unsigned renamed = 0;
        while ((e = readdir(d))) {
            struct stat st;
            char to[64];
            bool wrong = pass == 0 && all_digits(e->d_name);
            bool parked = pass == 1 && !strncmp(e->d_name, ".rekey.", 7) &&
                          all_digits(e->d_name + 7);
            if ((!wrong && !parked) ||
                fstatat(fs.seg_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISREG(st.st_mode))
                continue;
            if (wrong && strtoull(e->d_name, NULL, 10) == (uint64_t)st.st_ino)
                continue;
            snprintf(to, sizeof(to), pass == 0 ? ".rekey.%llu" : "%llu",
                     (unsigned long long)st.st_ino);
            if (renameat2(fs.seg_fd, e->d_name, fs.seg_fd, to, RENAME_NOREPLACE) == 0)
                renamed++;
            else
                say("cannot rename seg/%s to seg/%s: %s\n", e->d_name, to,
                    strerror(errno));
        }
        closedir(d);
        /* after this fsync the renames of this pass are durable */
        if (renamed)
            fsync(fs.seg_fd);
    }
}

/* Call only while the log holds no records (after recovery). */
void store_sweep_orphans(void)
{
    seg_rekey();
    int fd = dup(fs.seg_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(d); /* the dup shares its offset with fs.seg_fd */
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (!strncmp(e->d_name, ".trim.", 6)) {
            seg_trim_repair(e->d_name);
            continue;
        }
        if (!strncmp(e->d_name, ".tmp.", 5)) {
            unlinkat(fs.seg_fd, e->d_name, 0);
            continue;
        }
        if (!all_digits(e->d_name))
            continue;
        if (fstatat(fs.seg_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (st.st_nlink == 1)
            unlinkat(fs.seg_fd, e->d_name, 0);
        else
            seg_trim(e->d_name, &st);
    }
    closedir(d);
}

/* A new, empty segment with its header; its tree/ name comes next (a crash
 * in between leaves an orphan that the next mount removes). */
int store_new_segment(mode_t mode, uid_t uid, gid_t gid, struct stat *st,
                      uint64_t *gen)
{
    char tmp[64], name[32];
    snprintf(tmp, sizeof(tmp), ".tmp.%d.%u", (int)getpid(),
             atomic_fetch_add(&tmp_seq, 1));
    int fd = openat(fs.seg_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                    mode & 07777);
    if (fd < 0)
        return -errno;
    struct seg_hdr h = {SEG_MAGIC, 0, SEG_VERSION};
    int rc = 0;
    if (pwrite(fd, &h, sizeof(h), 0) != sizeof(h) ||
        ftruncate(fd, SEG_HDR) < 0)
        rc = -EIO;
    if (rc == 0 && fchown(fd, uid, gid) < 0 && errno != EPERM)
        rc = -errno;
    if (rc == 0 && fchmod(fd, mode & 07777) < 0)
        rc = -errno;
    if (rc == 0 && fstat(fd, st) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0) {
        snprintf(name, sizeof(name), "%llu", (unsigned long long)st->st_ino);
        if (renameat(fs.seg_fd, tmp, fs.seg_fd, name) < 0)
            rc = -errno;
    }
    if (rc < 0)
        unlinkat(fs.seg_fd, tmp, 0);
    else
        *gen = atomic_fetch_add(&created_gen, 1) + 1;
    return rc;
}

/*
 * Before the first log record names a new segment, its seg/<ino> entry
 * must be durable: recovery after a power loss would otherwise apply the
 * record to a fresh file of that name, not to the file the tree/ name
 * links.  One fsync of seg/ covers every segment created before it, so
 * concurrent first writes share it.
 */
int store_seg_durable(uint64_t gen)
{
    if (gen == 0 || atomic_load(&synced_gen) >= gen)
        return 0;
    uint64_t upto = atomic_load(&created_gen);
    if (fsync(fs.seg_fd) < 0)
        return -errno;
    /* after this fsync, the entries of segments 1..upto are durable */
    uint64_t cur = atomic_load(&synced_gen);
    while (cur < upto && !atomic_compare_exchange_weak(&synced_gen, &cur, upto))
        ;
    return 0;
}

void store_orphan_later(ino_t bino)
{
    struct orphan *o = malloc(sizeof(*o));
    if (!o)
        return; /* removed at the next mount */
    o->bino = bino;
    pthread_mutex_lock(&orphan_mu);
    o->next = orphans;
    orphans = o;
    pthread_mutex_unlock(&orphan_mu);
}

/* Remove the orphans queued so far.  Their nodes are gone, so no new
 * record can name them; after rvm_truncate() no old one does either. */
void store_orphans_collect(void)
{
    pthread_mutex_lock(&orphan_mu);
    struct orphan *list = orphans;
    orphans = NULL;
    pthread_mutex_unlock(&orphan_mu);
    if (!list)
        return;
    rvm_return_t rc = rvm_truncate();
    while (list) {
        struct orphan *o = list;
        list = o->next;
        char name[32];
        struct stat st;
        snprintf(name, sizeof(name), "%llu", (unsigned long long)o->bino);
        if (rc != RVM_SUCCESS) {
            store_orphan_later(o->bino); /* try again later */
        } else if (fstatat(fs.seg_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                   st.st_nlink == 1 && !node_find(ino_of(o->bino))) {
            unlinkat(fs.seg_fd, name, 0);
        }
        free(o);
    }
}
