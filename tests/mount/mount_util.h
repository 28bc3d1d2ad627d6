/*
 * mount_util.h - mount a real rvmfs in a temporary directory for a test.
 *
 * The daemon is $RVMFS_BIN (set by meson), run with -f in the background;
 * its stderr goes to DIR/daemon.log.  Everything is removed by
 * rmount_cleanup(), also after a failure.
 */
#ifndef RVMFS_TEST_MOUNT_UTIL_H
#define RVMFS_TEST_MOUNT_UTIL_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

struct rmount {
    char dir[PATH_MAX - 256]; /* the temporary directory */
    char store[PATH_MAX - 128]; /* DIR/store */
    char mnt[PATH_MAX - 128]; /* DIR/mnt */
    char opts[256];       /* -o options of every mount */
    pid_t pid;            /* the daemon, or 0 */
};

/* Exit 77 (skipped) when FUSE is not usable here, or, with
 * RVMFS_TEST_URING set, when FUSE over io_uring is not (it is turned on
 * when it can be). */
void rmount_require_fuse(void);
/* RVMFS_TEST_URING is set: every mount adds -o uring, and rmount_start
 * fails unless the mount serves requests over io_uring. */
bool rmount_uring(void);
/* Make DIR with store/ and mnt/ (the store is created by the first mount). */
int rmount_init(struct rmount *m, const char *opts);
/* Start the daemon and wait until the mount is up; 0 or -1. */
int rmount_start(struct rmount *m);
/* Start the daemon and return at once (it recovers, then mounts). */
int rmount_spawn(struct rmount *m);
/* fusermount3 -u and wait for the daemon; its exit status, or -1. */
int rmount_stop(struct rmount *m);
/* kill -9 the daemon, reap it, and detach the dead mount. */
void rmount_kill(struct rmount *m);
/* Stop (or kill) whatever runs and remove DIR. */
void rmount_cleanup(struct rmount *m);
/* DIR/mnt/name into buf. */
const char *rmount_path(const struct rmount *m, const char *name, char *buf);
/* Print the daemon's log (for failures). */
void rmount_dump_log(const struct rmount *m);
/* Remove a directory tree. */
int rm_rf(const char *path);

#endif
