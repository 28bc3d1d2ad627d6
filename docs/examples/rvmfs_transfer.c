/*
 * rvmfs_transfer: move money between two files of an rvmfs mount with
 * the ioctls of <rvmfs.h>: one transaction over both files, committed or
 * aborted as a unit.
 *
 *   rvmfs_transfer MOUNTPOINT
 *
 * Build:  cc -o rvmfs_transfer rvmfs_transfer.c   (rvmfs.h is header-only)
 */
#include <rvmfs.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long get(int fd)
{
    char buf[32] = {0};

    if (pread(fd, buf, sizeof buf - 1, 0) < 0)
        return -1;
    return strtol(buf, NULL, 10);
}

/* Replace the file's contents: the new size is part of the transaction. */
static int put(int fd, long v)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", v);

    return ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n ? 0 : -1;
}

static int move(int a, int b, long amount)
{
    uint64_t tid;

    if (rvmfs_begin(a, 0, &tid) < 0 || rvmfs_join(b, tid) < 0) {
        perror("rvmfs_begin/rvmfs_join");
        return -1;
    }
    long va = get(a), vb = get(b);
    if (put(a, va - amount) < 0 || put(b, vb + amount) < 0 || va - amount < 0) {
        rvmfs_abort(a);                 /* both files as they were */
        printf("transaction %" PRIu64 ": refused to move %ld (alice has %ld)\n",
               tid, amount, va);
        return -1;
    }
    if (rvmfs_commit(a, 0) < 0) {       /* durable on return */
        perror("rvmfs_commit");
        return -1;
    }
    printf("transaction %" PRIu64 ": moved %ld\n", tid, amount);
    return 0;
}

int main(int argc, char **argv)
{
    char pa[4096], pb[4096];

    if (argc != 2) {
        fprintf(stderr, "usage: rvmfs_transfer MOUNTPOINT\n");
        return 2;
    }
    snprintf(pa, sizeof pa, "%s/alice", argv[1]);
    snprintf(pb, sizeof pb, "%s/bob", argv[1]);
    int a = open(pa, O_RDWR | O_CREAT, 0644), b = open(pb, O_RDWR | O_CREAT, 0644);
    if (a < 0 || b < 0) {
        perror("open");
        return 1;
    }
    if (put(a, 100) < 0 || put(b, 0) < 0) {
        perror("write");
        return 1;
    }
    move(a, b, 30);
    move(a, b, 50);
    move(a, b, 40);
    printf("alice=%ld bob=%ld\n", get(a), get(b));
    close(a);
    close(b);
    return 0;
}
