#!/usr/bin/python3
"""test_hostile.py - rvmfs against hostile requests (issue 4, the daemon).

Every case makes requests that must fail, checks the errno, and checks
that nothing changed: the store's files (names, modes, sizes, contents,
xattrs: the log, the segments, the tree) and what the mount shows (file
contents, transaction state, the number of active transactions).

  - ioctls: unknown numbers, known numbers with another size or direction
    (the size is part of the number, so they are unknown too), bad flag
    bits, JOIN of unknown or ended tids, BEGIN/JOIN on a busy file,
    COMMIT/ABORT without a transaction, requests on directories, races;
  - user.rvm.* xattrs: empty, long, binary, NUL-embedded, unterminated
    and unknown words, reserved names, other namespaces;
  - sizes past 1 TiB, readdir at garbage offsets;
  - paths: `..`, names of 255 (fine) and 256 bytes (ENAMETOOLONG), symlinks
    that point out of the mount, RENAME_WHITEOUT, a tree deeper than
    PATH_MAX.
The log at start-up is test_hostile_log.py's.

Standard library only.  usage: test_hostile.py RVMFS_BINARY
Exit 77 (skipped) where /dev/fuse is not usable.
"""
import ctypes
import errno
import fcntl
import hashlib
import os
import random
import shutil
import stat
import struct
import sys
import tempfile
import threading
import time
import unittest

from hostile_util import (TXN, Daemon, fsnap, read_file, require_fuse,
                          snap_diff, xattr_err)

# include/rvmfs.h, spelled out: the size is part of the request number.
def IOC(direction, typ, nr, size):
    return (direction << 30) | (size << 16) | (ord(typ) << 8) | nr


IOC_NONE, IOC_W, IOC_R = 0, 1, 2
IOC_RW = IOC_W | IOC_R
STATUS_SIZE = 16 * 8
BEGIN = IOC(IOC_RW, "R", 1, 16)
JOIN = IOC(IOC_W, "R", 2, 8)
COMMIT = IOC(IOC_W, "R", 3, 8)
ABORT = IOC(IOC_NONE, "R", 4, 0)
FLUSH = IOC(IOC_NONE, "R", 5, 0)
STATUS = IOC(IOC_R, "R", 6, STATUS_SIZE)
KNOWN = {BEGIN, JOIN, COMMIT, ABORT, FLUSH, STATUS}


def ioctl_err(fd, cmd, arg=None):
    """errno of the ioctl (0 on success) and the bytes it gave back."""
    try:
        if arg is None:
            return 0, fcntl.ioctl(fd, cmd, 0)
        buf = bytearray(arg)
        fcntl.ioctl(fd, cmd, buf, True)
        return 0, bytes(buf)
    except OSError as e:
        return e.errno, None


def begin(fd, flags=0):
    err, out = ioctl_err(fd, BEGIN, struct.pack("<QQ", flags, 0))
    return err, (struct.unpack("<QQ", out)[1] if out else 0)


def status(fd):
    err, out = ioctl_err(fd, STATUS, bytes(STATUS_SIZE))
    assert err == 0, os.strerror(err)
    return struct.unpack("<16Q", out)


TMP = None
D = None  # the mount shared by the request tests
FILES = ("f1", "f2", "f3")


def view():
    """What the mount shows of the test files, and the store's active
    transactions (an in-memory change the store files would not show)."""
    out = {}
    for name in FILES:
        with open(D.path(name), "rb") as f:
            data = f.read()
        out[name] = (hashlib.blake2b(data).hexdigest(), len(data),
                     os.getxattr(D.path(name), TXN))
    stat_text = os.getxattr(D.mnt, "user.rvm.stat").decode()
    out["active"] = [ln for ln in stat_text.splitlines()
                     if ln.startswith("active=")]
    return out


class Unchanged:
    """with Unchanged(test): ... asserts that the block changed neither
    the store nor what the mount shows."""

    def __init__(self, test):
        self.test = test

    def __enter__(self):
        # earlier cases may have left no_flush commits and orphan segments
        # behind: flush, and wait until the daemon's timer (a tick is
        # 200 ms) has collected the orphans and the store holds still, so
        # that only the block can change it
        os.setxattr(D.mnt, "user.rvm.flush", b"1")
        snap = fsnap(D.store)
        for _ in range(40):
            time.sleep(0.25)
            prev, snap = snap, fsnap(D.store)
            if snap == prev:
                break
        self.before = (snap, view())

    def __exit__(self, *exc):
        if exc[0]:
            return False
        after = (fsnap(D.store), view())
        self.test.assertEqual(snap_diff(self.before[0], after[0]), [])
        self.test.assertEqual(self.before[1], after[1])
        return False


class Requests(unittest.TestCase):
    """Hostile ioctls, xattrs and paths on a live mount."""

    @classmethod
    def setUpClass(cls):
        for i, name in enumerate(FILES):
            with open(D.path(name), "wb") as f:
                f.write(bytes([65 + i]) * (5000 + 1000 * i))
                os.fsync(f.fileno())
        os.mkdir(D.path("dir"))
        os.sync()

    def setUp(self):
        self.fds = {n: os.open(D.path(n), os.O_RDWR) for n in FILES}
        self.dfd = os.open(D.path("dir"), os.O_RDONLY | os.O_DIRECTORY)

    def tearDown(self):
        for fd in self.fds.values():
            for _ in range(2):  # a failed test may leave one open
                ioctl_err(fd, ABORT)
            os.close(fd)
        os.close(self.dfd)

    def test_idle_store_does_not_change(self):
        # the baseline of every other case: no background writes
        with Unchanged(self):
            time.sleep(1.5)

    # --- ioctl -------------------------------------------------------------

    def test_unknown_ioctl_numbers_are_enotty(self):
        fd = self.fds["f1"]
        cmds = [
            IOC(IOC_NONE, "R", 0, 0), IOC(IOC_NONE, "R", 7, 0),
            IOC(IOC_NONE, "R", 255, 0),
            IOC(IOC_RW, "R", 1, 8), IOC(IOC_RW, "R", 1, 24),  # BEGIN, sizes
            IOC(IOC_W, "R", 1, 16), IOC(IOC_NONE, "R", 1, 0),  # BEGIN, dirs
            IOC(IOC_W, "R", 2, 4), IOC(IOC_RW, "R", 2, 8),     # JOIN
            IOC(IOC_W, "R", 3, 4), IOC(IOC_W, "R", 3, 16),     # COMMIT
            IOC(IOC_NONE, "R", 3, 0),
            IOC(IOC_W, "R", 4, 8), IOC(IOC_W, "R", 5, 8),      # ABORT, FLUSH
            IOC(IOC_R, "R", 6, STATUS_SIZE - 8),               # STATUS
            IOC(IOC_R, "R", 6, STATUS_SIZE + 8),
            IOC(IOC_RW, "R", 6, STATUS_SIZE),
            IOC(IOC_NONE, "Z", 1, 0), IOC(IOC_RW, "r", 1, 16),
            IOC(IOC_RW, "R", 1 | 0x80, 16),
        ]
        rng = random.Random(4)
        while len(cmds) < 300:  # and random ones of our type
            c = IOC(rng.randrange(4), "R", rng.randrange(256),
                    rng.choice([0, 1, 4, 8, 15, 16, 17, 128, 4096,
                                rng.randrange(1 << 14)]))
            if c not in KNOWN:
                cmds.append(c)
        with Unchanged(self):
            for c in cmds:
                size = (c >> 16) & 0x3FFF
                arg = None if (c >> 30) == 0 else bytes([0xFF]) * max(size, 8)
                err, _ = ioctl_err(fd, c, arg)
                self.assertEqual(err, errno.ENOTTY, "cmd 0x%08x" % c)
            for c in cmds[:20]:
                self.assertEqual(ioctl_err(self.dfd, c, None if (c >> 30) == 0
                                           else bytes(1 << 14))[0],
                                 errno.ENOTTY, "dir cmd 0x%08x" % c)

    def test_begin_with_unknown_flag_bits_is_einval(self):
        with Unchanged(self):
            for flags in (2, 4, 0x80, 1 << 31, 1 << 32, 1 << 63,
                          (1 << 64) - 1, 3):
                self.assertEqual(begin(self.fds["f1"], flags)[0],
                                 errno.EINVAL, hex(flags))
            self.assertEqual(status(self.fds["f1"])[0], 0)

    def test_commit_with_unknown_flag_bits_is_einval_and_commits_nothing(self):
        fd = self.fds["f1"]
        with Unchanged(self):
            err, tid = begin(fd)
            self.assertEqual(err, 0)
            os.pwrite(fd, b"x" * 3000, 100)
            for flags in (2, 3, 1 << 32, 1 << 63, (1 << 64) - 1):
                self.assertEqual(
                    ioctl_err(fd, COMMIT, struct.pack("<Q", flags))[0],
                    errno.EINVAL, hex(flags))
                self.assertEqual(status(fd)[0], tid)  # still active
            self.assertEqual(ioctl_err(fd, ABORT)[0], 0)

    def test_commit_and_abort_without_transaction_are_enoent(self):
        with Unchanged(self):
            for fd in (self.fds["f1"], self.dfd):
                self.assertEqual(ioctl_err(fd, COMMIT, bytes(8))[0], errno.ENOENT)
                self.assertEqual(ioctl_err(fd, COMMIT, struct.pack("<Q", 1))[0],
                                 errno.ENOENT)
                self.assertEqual(ioctl_err(fd, ABORT)[0], errno.ENOENT)

    def test_join_of_unknown_or_ended_tid_is_enoent(self):
        f1, f2 = self.fds["f1"], self.fds["f2"]
        err, tid = begin(f1)
        self.assertEqual(err, 0)
        self.assertEqual(ioctl_err(f1, ABORT)[0], 0)
        with Unchanged(self):
            for t in (0, 1, tid, tid + 1, tid - 1, 1 << 63, (1 << 64) - 1,
                      random.Random(5).getrandbits(64)):
                self.assertEqual(
                    ioctl_err(f2, JOIN, struct.pack("<Q", t))[0],
                    errno.ENOENT, hex(t))
                if t:
                    self.assertEqual(xattr_err(os.setxattr, D.path("f2"), TXN,
                                               b"join %d" % t), errno.ENOENT)
            self.assertEqual(xattr_err(os.setxattr, D.path("f2"), TXN,
                                       b"join 0"), errno.ENOENT)

    def test_begin_or_join_on_busy_file_is_ebusy(self):
        f1, f2, f3 = (self.fds[n] for n in FILES)
        with Unchanged(self):
            err, t1 = begin(f1)
            self.assertEqual(err, 0)
            self.assertEqual(ioctl_err(f2, JOIN, struct.pack("<Q", t1))[0], 0)
            err, t3 = begin(f3)
            self.assertEqual(err, 0)
            os.pwrite(f1, b"1" * 100, 0)
            os.pwrite(f2, b"2" * 100, 0)
            for fd in (f1, f2, f3):
                self.assertEqual(begin(fd)[0], errno.EBUSY)
                self.assertEqual(begin(fd, 1)[0], errno.EBUSY)
            self.assertEqual(xattr_err(os.setxattr, D.path("f1"), TXN,
                                       b"begin"), errno.EBUSY)
            self.assertEqual(xattr_err(os.setxattr, D.path("f2"), TXN,
                                       b"begin no_restore"), errno.EBUSY)
            # a member of one transaction cannot join another
            self.assertEqual(ioctl_err(f2, JOIN, struct.pack("<Q", t3))[0],
                             errno.EBUSY)
            self.assertEqual(ioctl_err(f3, JOIN, struct.pack("<Q", t1))[0],
                             errno.EBUSY)
            # joining the transaction a file is in already is fine
            self.assertEqual(ioctl_err(f2, JOIN, struct.pack("<Q", t1))[0], 0)
            self.assertEqual(status(f2)[0], t1)
            self.assertEqual(status(f3)[0], t3)
            self.assertEqual(ioctl_err(f2, ABORT)[0], 0)  # any member ends it
            self.assertEqual(ioctl_err(f1, ABORT)[0], errno.ENOENT)
            self.assertEqual(ioctl_err(f3, ABORT)[0], 0)

    def race(self, n, fn):
        """Run fn(i) in n threads released at once; their results."""
        gate = threading.Barrier(n)
        out = [None] * n

        def run(i):
            gate.wait()
            out[i] = fn(i)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def test_racing_begins_on_one_file_give_one_transaction(self):
        fds = [os.open(D.path("f1"), os.O_RDWR) for _ in range(8)]
        try:
            with Unchanged(self):
                for _ in range(20):
                    res = self.race(8, lambda i: begin(fds[i])[0])
                    self.assertEqual(sorted(res), [0] + [errno.EBUSY] * 7)
                    res = self.race(8, lambda i: ioctl_err(fds[i], ABORT)[0])
                    self.assertEqual(sorted(res), [0] + [errno.ENOENT] * 7)
        finally:
            for fd in fds:
                os.close(fd)

    def test_racing_commits_of_one_transaction_end_it_once(self):
        f1, f2 = self.fds["f1"], self.fds["f2"]
        for _ in range(20):
            err, tid = begin(f1)
            self.assertEqual(err, 0)
            self.assertEqual(ioctl_err(f2, JOIN, struct.pack("<Q", tid))[0], 0)
            # commits and aborts through both members, joins of the third
            # file: one end wins; a join either made it in before or fails
            res = self.race(6, lambda i: (
                ioctl_err((f1, f2)[i % 2], COMMIT, struct.pack("<Q", 1))[0]
                if i < 2 else ioctl_err((f1, f2)[i % 2], ABORT)[0]
                if i < 4 else ioctl_err(self.fds["f3"], JOIN,
                                        struct.pack("<Q", tid))[0]))
            self.assertEqual(sorted(res[:4]), [0] + [errno.ENOENT] * 3, res)
            for r in res[4:]:
                self.assertIn(r, (0, errno.ENOENT), res)
            for fd in (f1, f2, self.fds["f3"]):
                self.assertEqual(status(fd)[0], 0)

    def test_abort_of_no_restore_transaction_is_einval(self):
        fd = self.fds["f3"]
        err, tid = begin(fd, 1)
        self.assertEqual(err, 0)
        os.pwrite(fd, b"n" * 10, 0)
        self.assertEqual(ioctl_err(fd, ABORT)[0], errno.EINVAL)
        self.assertEqual(status(fd)[0], tid)
        self.assertEqual(ioctl_err(fd, COMMIT, bytes(8))[0], 0)
        with open(D.path("f3"), "rb") as f:
            self.assertEqual(f.read(10), b"n" * 10)
        os.pwrite(fd, b"C" * 10, 0)  # put it back for the other cases
        os.fsync(fd)

    def test_transaction_requests_on_a_directory_fail(self):
        with Unchanged(self):
            self.assertEqual(begin(self.dfd)[0], errno.EINVAL)
            self.assertEqual(ioctl_err(self.dfd, JOIN, bytes(8))[0], errno.EINVAL)
            self.assertEqual(status(self.dfd)[0], 0)
            for cmd in (b"begin", b"commit", b"abort", b"join 5"):
                self.assertEqual(xattr_err(os.setxattr, D.path("dir"), TXN,
                                           cmd), errno.EINVAL)

    # --- xattrs ------------------------------------------------------------

    def test_bad_txn_xattr_values_are_einval(self):
        p = D.path("f1")
        bad = [b"", b"\n", b"\0", b" ", b"begin" + b" " * 100,
               b"commit" + b"\n" * 3, b"b" * 65536, bytes(range(256)),
               b"begin\0garbage", b"begin\0\0", b"begin\0", b"begin\n\0",
               b"commit ", b"abort\t", b"\0begin", b"commit\0no_flush",
               b"abort\xff", b"\xffabort", b"begi", b"begin no_restor",
               b"commit no_flus", b"commit no_flushx", b"join", b"join ",
               b"join x", b"join -1", b"join 1x", b"join  1", b"join\t1",
               b"join 0x10", b"join 99999999999999999999", b"BEGIN",
               b"Commit", b" begin", b"begin  no_restore", b"begin\tno_restore",
               b"begin no_flush", b"commit no_restore", b"abort now",
               b"rollback", b"end", b"begin\r\n", b"\n\nbegin"]
        with Unchanged(self):
            for v in bad:
                self.assertEqual(xattr_err(os.setxattr, p, TXN, v),
                                 errno.EINVAL, repr(v[:40]))
            self.assertEqual(os.getxattr(p, TXN), b"none")

    def test_txn_xattr_accepts_one_trailing_newline(self):
        p = D.path("f1")
        with Unchanged(self):
            os.setxattr(p, TXN, b"begin\n")
            self.assertNotEqual(os.getxattr(p, TXN), b"none")
            os.setxattr(p, TXN, b"abort\n")
            self.assertEqual(os.getxattr(p, TXN), b"none")

    def test_reserved_and_foreign_xattr_names_fail(self):
        p = D.path("f2")
        with Unchanged(self):
            for name in ("user.rvm.stat", "user.rvm.", "user.rvm.txn2",
                         "user.rvm.TXN", "user.rvm.x" * 20):
                self.assertEqual(xattr_err(os.setxattr, p, name, b"1"),
                                 errno.EINVAL, name)
            for name in ("user.rvm.", "user.rvm.flush", "user.rvm.bogus"):
                self.assertEqual(xattr_err(os.getxattr, p, name),
                                 errno.ENODATA, name)
            for name in ("user.rvm.txn", "user.rvm.stat", "user.rvm.flush"):
                self.assertEqual(xattr_err(os.removexattr, p, name),
                                 errno.EINVAL, name)
            for name in ("trusted.rvm", "security.rvm", "system.rvm"):
                self.assertIn(xattr_err(os.setxattr, p, name, b"1"),
                              (errno.ENOTSUP, errno.EOPNOTSUPP), name)
            # names past XATTR_NAME_MAX and values past XATTR_SIZE_MAX: the
            # kernel stops them; they must not reach the segment either
            self.assertEqual(xattr_err(os.setxattr, p, "user." + "n" * 251,
                                       b"1"), errno.ERANGE)
            self.assertEqual(xattr_err(os.setxattr, p, "user.big",
                                       b"v" * 65537), errno.E2BIG)

    def test_short_buffers_for_rvm_xattrs_are_erange(self):
        libc = ctypes.CDLL(None, use_errno=True)
        buf = ctypes.create_string_buffer(4)
        with Unchanged(self):
            for path, name in ((D.path("f1"), TXN),
                               (D.path("f1"), "user.rvm.stat"),
                               (D.mnt, "user.rvm.stat")):
                r = libc.getxattr(path.encode(), name.encode(), buf, 3)
                self.assertEqual((r, ctypes.get_errno()), (-1, errno.ERANGE),
                                 name)

    def test_long_binary_user_xattrs_round_trip(self):
        # other user.* attributes are stored as given, whatever they hold
        p = D.path("f2")
        for name, value in (("user.bin", bytes(range(256)) * 4),
                            ("user." + "n" * 250, b"\0"),
                            ("user.empty", b""),
                            ("user.long", os.urandom(2000))):
            os.setxattr(p, name, value)
            self.assertEqual(os.getxattr(p, name), value)
            os.removexattr(p, name)
            self.assertEqual(xattr_err(os.getxattr, p, name), errno.ENODATA)

    # --- sizes and offsets ---------------------------------------------------

    def test_sizes_and_offsets_past_the_limit_are_efbig(self):
        # outside a transaction a file grows up to 1 TiB (include/rvmfs.h)
        fd, tib = self.fds["f2"], 1 << 40
        with Unchanged(self):
            for size in (tib + 1, 1 << 50, (1 << 63) - 1):
                self.assertEqual(xattr_err(os.ftruncate, fd, size),
                                 errno.EFBIG, size)
            for off in (tib, 1 << 50, 1 << 62):
                self.assertEqual(xattr_err(os.pwrite, fd, b"x", off),
                                 errno.EFBIG, off)
            self.assertEqual(xattr_err(os.ftruncate, fd, -1), errno.EINVAL)
            self.assertEqual(xattr_err(os.pwrite, fd, b"x", -1), errno.EINVAL)

    def test_readdir_at_garbage_offsets_does_no_harm(self):
        libc = ctypes.CDLL(None, use_errno=True)
        getdents64 = 217  # x86_64
        buf = ctypes.create_string_buffer(4096)
        rng = random.Random(9)
        with Unchanged(self):
            for off in [1, 2, 3, 12345, 1 << 62, (1 << 63) - 1] + \
                    [rng.getrandbits(63) for _ in range(50)]:
                os.lseek(self.dfd, off, os.SEEK_SET)
                n = libc.syscall(getdents64, self.dfd, buf, len(buf))
                self.assertGreaterEqual(n, 0, off)
            os.lseek(self.dfd, 0, os.SEEK_SET)
            self.assertEqual(sorted(os.listdir(D.mnt)),
                             sorted(os.listdir(os.path.join(D.store, "tree"))))

    # --- paths -------------------------------------------------------------

    def test_rename_whiteout_is_einval(self):
        # it would leave a character device in the store, which mknod
        # refuses (RENAME_WHITEOUT = 4)
        libc = ctypes.CDLL(None, use_errno=True)
        with Unchanged(self):
            r = libc.renameat2(-100, D.path("f3").encode(), -100,
                               D.path("g3").encode(), 4)
            self.assertEqual((r, ctypes.get_errno()), (-1, errno.EINVAL))
            self.assertEqual(xattr_err(os.mknod, D.path("dev"),
                                       stat.S_IFCHR | 0o600, os.makedev(1, 3)),
                             errno.EPERM)

    def test_dotdot_stays_inside_the_mount(self):
        os.mkdir(D.path("dd"))
        try:
            with open(D.path("dd/../dd/../dotdot"), "wb") as f:
                f.write(b"here")
            self.assertTrue(os.path.exists(os.path.join(D.store, "tree/dotdot")))
            os.unlink(D.path("dd/../dotdot"))
            with Unchanged(self):
                self.assertEqual(xattr_err(os.mkdir, D.path("dd/..")), errno.EEXIST)
                self.assertEqual(xattr_err(os.rmdir, D.path("dd/..")),
                                 errno.ENOTEMPTY)
                self.assertEqual(xattr_err(os.rename, D.path("dd"),
                                           D.path("dd/sub")), errno.EINVAL)
                self.assertEqual(xattr_err(os.rename, D.path("dd/.."),
                                           D.path("x")), errno.EBUSY)
                self.assertEqual(xattr_err(os.open, D.path(".."),
                                           os.O_RDONLY), 0)  # the parent
        finally:
            os.rmdir(D.path("dd"))

    def test_symlink_out_of_the_mount_is_not_followed_by_the_daemon(self):
        victim = os.path.join(D.dir, "victim")
        with open(victim, "wb") as f:
            f.write(b"someone else's")
        os.setxattr(victim, "user.mine", b"1")
        os.symlink(victim, D.path("esc"))
        os.symlink("../../../../../../../../etc/passwd", D.path("esc2"))
        try:
            vsum = (read_file(victim), os.listxattr(victim))
            with Unchanged(self):
                for link in ("esc", "esc2"):
                    p = D.path(link)
                    self.assertEqual(xattr_err(os.setxattr, p, "user.evil",
                                               b"1", 0, follow_symlinks=False),
                                     errno.EPERM)
                    # the kernel allows user.* only on files and directories
                    self.assertEqual(xattr_err(os.removexattr, p, "user.mine",
                                               follow_symlinks=False),
                                     errno.EPERM)
                    self.assertEqual(
                        xattr_err(os.getxattr, p, "user.mine",
                                  follow_symlinks=False), errno.ENODATA)
                    self.assertEqual(xattr_err(os.setxattr, p, TXN, b"begin",
                                               0, follow_symlinks=False),
                                     errno.EPERM)
                    # reads reach the daemon: they must see the link's
                    # (empty) attributes, not the target's
                    self.assertNotIn("user.mine",
                                     os.listxattr(p, follow_symlinks=False))
            self.assertEqual((read_file(victim), os.listxattr(victim)), vsum)
        finally:
            os.unlink(D.path("esc"))
            os.unlink(D.path("esc2"))

    def test_name_of_255_bytes_works_and_256_is_enametoolong(self):
        ok, long_ = "n" * 255, "m" * 256
        with open(D.path(ok), "wb") as f:
            f.write(b"255")
        try:
            os.rename(D.path(ok), D.path("d" * 255))
            os.rename(D.path("d" * 255), D.path(ok))
            with open(D.path(ok), "rb") as f:
                self.assertEqual(f.read(), b"255")
            with Unchanged(self):
                calls = [
                    lambda: os.open(D.path(long_), os.O_RDWR | os.O_CREAT, 0o644),
                    lambda: os.stat(D.path(long_)),
                    lambda: os.mkdir(D.path(long_)),
                    lambda: os.symlink("f1", D.path(long_)),
                    lambda: os.link(D.path("f1"), D.path(long_)),
                    lambda: os.rename(D.path(ok), D.path(long_)),
                    lambda: os.rename(D.path("dir"), D.path(long_)),
                    lambda: os.mknod(D.path(long_), stat.S_IFIFO | 0o644),
                    lambda: os.unlink(D.path(long_)),
                    lambda: os.open(D.path("x" * 1100), os.O_RDWR | os.O_CREAT),
                ]
                for i, call in enumerate(calls):
                    self.assertEqual(xattr_err(call), errno.ENAMETOOLONG, i)
                self.assertEqual(xattr_err(os.symlink, "t" * 4096, D.path("s")),
                                 errno.ENAMETOOLONG)
        finally:
            os.unlink(D.path(ok))

    def test_tree_deeper_than_path_max_works_and_survives_remount(self):
        depth, comp = 120, "d" * 60  # 120 * 61 bytes: about 7300 > PATH_MAX
        fds = [os.open(D.mnt, os.O_RDONLY | os.O_DIRECTORY)]
        try:
            for _ in range(depth):
                os.mkdir(comp, dir_fd=fds[-1])
                fds.append(os.open(comp, os.O_RDONLY | os.O_DIRECTORY,
                                   dir_fd=fds[-1]))
            fd = os.open("leaf", os.O_RDWR | os.O_CREAT, 0o644, dir_fd=fds[-1])
            try:
                os.write(fd, b"deep" * 1000)
                os.setxattr(fd, TXN, b"begin")
                os.pwrite(fd, b"DEEP", 0)
                os.setxattr(fd, TXN, b"commit")
            finally:
                os.close(fd)
            self.assertEqual(xattr_err(os.symlink, "x" * 10, "l" * 256,
                                       dir_fd=fds[-1]), errno.ENAMETOOLONG)
        finally:
            for fd in fds:
                os.close(fd)
        self.tearDown()  # no descriptor may keep the mount busy
        self.assertEqual(D.stop(), 0)
        D.run()
        self.setUp()
        fd = os.open(D.mnt, os.O_RDONLY | os.O_DIRECTORY)
        chain = [fd]
        try:
            for _ in range(depth):
                chain.append(os.open(comp, os.O_RDONLY | os.O_DIRECTORY,
                                     dir_fd=chain[-1]))
            leaf = os.open("leaf", os.O_RDONLY, dir_fd=chain[-1])
            self.assertEqual(os.read(leaf, 8), b"DEEPdeep")
            os.close(leaf)
            os.unlink("leaf", dir_fd=chain[-1])
            for i in range(depth, 0, -1):
                os.close(chain.pop())
                os.rmdir(comp, dir_fd=chain[-1])
        finally:
            for fd in chain:
                os.close(fd)


def main():
    global TMP, D
    require_fuse()
    TMP = tempfile.mkdtemp(prefix="rvmfs-hostile.")
    D = Daemon(TMP)
    try:
        D.run()
        prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False,
                             verbosity=2)
        ok = prog.result.wasSuccessful()
        if D.proc and D.stop() != 0:
            print("rvmfs did not stop cleanly:\n" + D.log())
            ok = False
    finally:
        D.cleanup()
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
