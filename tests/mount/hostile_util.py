"""hostile_util.py - helpers of the hostile-input tests of rvmfs
(test_hostile.py, test_hostile_log.py): a daemon in a temporary directory,
and a snapshot of a directory tree that says whether anything changed.

Standard library only.
"""
import errno
import hashlib
import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

RVMFS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RVMFS_BIN", "")
TXN = "user.rvm.txn"
# A small log keeps hashing the store cheap; no automatic truncation, so
# that the store changes only when a request changes it.
LOGSIZE = "logsize=1M,truncate=0"


# RVMFS_TEST_URING: every mount adds -o uring and must serve requests
# over io_uring (a mount that fell back to /dev/fuse would not test it).
URING = os.environ.get("RVMFS_TEST_URING", "0") not in ("", "0")
URING_PARAM = "/sys/module/fuse/parameters/enable_uring"


def require_fuse():
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) or not RVMFS:
        print("SKIP: /dev/fuse is not usable here (or no rvmfs binary)")
        sys.exit(77)
    if not URING:
        return
    try:
        with open(URING_PARAM) as f:
            on = f.read().strip() == "Y"
    except OSError:
        print("SKIP: this kernel has no FUSE over io_uring (%s)" % URING_PARAM)
        sys.exit(77)
    if not on:
        try:
            with open(URING_PARAM, "w") as f:
                f.write("Y\n")
        except OSError:
            print("SKIP: FUSE over io_uring is off and cannot be turned on")
            sys.exit(77)
        print("note: turned on %s for the -o uring mounts" % URING_PARAM)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def xattr_err(fn, *args, **kw):
    """errno of fn(*args, **kw), 0 if it succeeds (any call, not only
    xattr ones)."""
    try:
        fn(*args, **kw)
        return 0
    except OSError as e:
        return e.errno


def file_digest(fd, size):
    """Digest of a file's bytes.  Segments are sparse files of hundreds of
    MiB: only the 64 KiB blocks that hold data extents are read, and blocks
    of zeros are left out, so the digest of (offset, block) pairs says what
    the file holds whatever its layout on disk."""
    h = hashlib.blake2b(struct.pack("<Q", size).ljust(64, b"\0"))
    blk, pos = 1 << 16, 0
    while pos < size:
        try:
            pos = os.lseek(fd, pos, os.SEEK_DATA) // blk * blk
        except OSError as e:
            if e.errno == errno.ENXIO:  # only a hole is left
                break
            raise
        end = os.lseek(fd, pos, os.SEEK_HOLE)
        while pos < end:
            chunk = os.pread(fd, blk, pos)
            if not chunk:
                break
            if chunk.count(0) != len(chunk):
                h.update(struct.pack("<Q", pos))
                h.update(chunk)
            pos += blk
    return h.hexdigest()


def fsnap(root):
    """Everything a request could have changed in a directory tree: the
    type, mode, size, content digest and xattrs of every entry.  Walks by
    directory descriptors, so trees deeper than PATH_MAX are fine."""
    out = {}
    for top, dirs, files, dfd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + files:
            rel = os.path.relpath(os.path.join(top, name), root)
            st = os.lstat(name, dir_fd=dfd)
            kind, digest, xa = stat.S_IFMT(st.st_mode), "", ()
            if stat.S_ISLNK(st.st_mode):
                digest = os.readlink(name, dir_fd=dfd)
            elif stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
                try:
                    if stat.S_ISREG(st.st_mode):
                        digest = file_digest(fd, st.st_size)
                    xa = tuple(sorted((n, os.getxattr(fd, n))
                                      for n in os.listxattr(fd)))
                finally:
                    os.close(fd)
            out[rel] = (kind, st.st_mode & 0o7777, st.st_size, digest, xa)
    return out


def snap_diff(a, b):
    keys = sorted(set(a) | set(b))
    return [k + (": gone" if k not in b else ": new" if k not in a
                 else ": changed") for k in keys if a.get(k) != b.get(k)]


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


class Daemon:
    """One store and mountpoint in a temporary directory; rvmfs runs with
    -f and its stderr goes to DIR/daemon.log."""

    def __init__(self, parent):
        self.dir = tempfile.mkdtemp(prefix="rvmfs-hostile.", dir=parent)
        self.store = os.path.join(self.dir, "store")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        self.proc = None

    def run(self, opts=LOGSIZE, wait_exit=False):
        """Start rvmfs.  Returns None once mounted; with wait_exit, the
        daemon is expected to refuse: returns (exit status, its stderr)."""
        errpath = os.path.join(self.dir, "daemon.log")
        if URING:
            opts = opts + ",uring" if opts else "uring"
        with open(errpath, "wb") as log:
            self.proc = subprocess.Popen(
                [RVMFS, self.store, self.mnt, "-f", "-o", opts],
                stdout=log, stderr=log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if mounted(self.mnt) and not wait_exit:
                if URING:
                    self.check_transport()
                return None
            time.sleep(0.01)
        if self.proc.poll() is None:
            if wait_exit and mounted(self.mnt):
                self.stop()
                return ("mounted", self.log())
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("rvmfs neither mounted nor exited")
        rc = self.proc.returncode
        self.proc = None
        if wait_exit:
            return rc, self.log()
        raise RuntimeError("rvmfs exited %d: %s" % (rc, self.log()))

    def check_transport(self):
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if b"transport=io_uring\n" in os.getxattr(self.mnt, "user.rvm.stat"):
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise RuntimeError("%s is not served over io_uring" % self.mnt)

    def log(self):
        with open(os.path.join(self.dir, "daemon.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if not self.proc:
            return None
        for _ in range(200):
            if subprocess.run(["fusermount3", "-u", self.mnt],
                              stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.02)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                       stderr=subprocess.DEVNULL)
        self.proc = None
        return rc

    def kill(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                       stderr=subprocess.DEVNULL)

    def cleanup(self):
        if self.proc:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.mnt, name)

