#!/usr/bin/python3
"""test_xattr.py - rvmfs transactions from Python through os.setxattr.

Standard library only.  usage: test_xattr.py RVMFS_BINARY
Exit 77 (skipped) where /dev/fuse is not usable.
"""
import errno
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

RVMFS = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("RVMFS_BIN", "")
TXN = "user.rvm.txn"


class Mount:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="rvmfs-py.")
        self.store = os.path.join(self.dir, "store")
        self.mnt = os.path.join(self.dir, "mnt")
        os.mkdir(self.mnt)
        self.proc = None

    def start(self):
        with open(os.path.join(self.dir, "daemon.log"), "ab") as log:
            self.proc = subprocess.Popen([RVMFS, self.store, self.mnt, "-f"],
                                         stdout=log, stderr=log)
        for _ in range(500):
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise RuntimeError("rvmfs did not mount: " + self.log())

    def log(self):
        with open(os.path.join(self.dir, "daemon.log")) as f:
            return f.read()

    def crash(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            subprocess.run(["fusermount3", "-u", self.mnt], check=False)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                subprocess.run(["fusermount3", "-u", "-z", self.mnt], check=False)
        return None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.mnt, name)


M = None


def txn(path, cmd):
    os.setxattr(path, TXN, cmd.encode())


def state(path):
    return os.getxattr(path, TXN).decode()


def write_file(path, data, durable=False):
    with open(path, "wb") as f:
        f.write(data)
        if durable:  # a write of its own is committed no_flush
            f.flush()
            os.fsync(f.fileno())


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


class TestPythonTransactions(unittest.TestCase):
    def test_commit_keeps_written_bytes(self):
        p = M.path("commit")
        write_file(p, b"a" * 100)
        txn(p, "begin")
        self.assertRegex(state(p), r"^\d+ ranges=0 bytes=0$")
        with open(p, "r+b") as f:
            f.write(b"b" * 50)
        txn(p, "commit")
        self.assertEqual(state(p), "none")
        self.assertEqual(read_file(p), b"b" * 50 + b"a" * 50)

    def test_abort_restores_bytes_and_size(self):
        p = M.path("abort")
        write_file(p, b"a" * 100)
        txn(p, "begin")
        with open(p, "r+b") as f:
            f.seek(80)
            f.write(b"z" * 100)
        self.assertEqual(os.stat(p).st_size, 180)
        txn(p, "abort")
        self.assertEqual(os.stat(p).st_size, 100)
        self.assertEqual(read_file(p), b"a" * 100)

    def test_abort_shows_old_bytes_in_existing_shared_mapping(self):
        p = M.path("mapped")
        write_file(p, b"a" * 8192)
        with open(p, "r+b") as f:
            m = mmap.mmap(f.fileno(), 8192, mmap.MAP_SHARED)
            txn(p, "begin")
            os.pwrite(f.fileno(), b"w" * 10, 0)
            m[4096:4106] = b"m" * 10
            self.assertEqual(m[0:10], b"w" * 10)
            txn(p, "abort")
            self.assertEqual(m[:], b"a" * 8192)
            m.close()
        self.assertEqual(read_file(p), b"a" * 8192)

    def test_mapping_changes_committed_after_flush_are_kept(self):
        p = M.path("mapcommit")
        write_file(p, b"a" * 4096)
        with open(p, "r+b") as f:
            m = mmap.mmap(f.fileno(), 4096, mmap.MAP_SHARED)
            txn(p, "begin")
            m[0:5] = b"hello"
            m.flush()  # msync(MS_SYNC): the dirty page joins the transaction
            txn(p, "commit")
            m.close()
        M.crash()
        self.assertEqual(read_file(p), b"hello" + b"a" * 4091)

    def test_joined_files_commit_atomically_across_crash(self):
        p, q = M.path("j1"), M.path("j2")
        write_file(p, b"1" * 10, durable=True)
        write_file(q, b"2" * 10, durable=True)
        txn(p, "begin")
        tid = state(p).split()[0]
        txn(q, "join " + tid)
        write_file(p, b"P")
        write_file(q, b"Q")
        M.crash()  # before the commit: both unchanged
        self.assertEqual(read_file(p), b"1" * 10)
        self.assertEqual(read_file(q), b"2" * 10)
        txn(p, "begin")
        txn(q, "join " + state(p).split()[0])
        write_file(p, b"P")
        write_file(q, b"Q")
        txn(q, "commit")
        M.crash()
        self.assertEqual(read_file(p), b"P")
        self.assertEqual(read_file(q), b"Q")

    def test_flush_xattr_makes_no_flush_commit_durable(self):
        p = M.path("noflush")
        write_file(p, b"old")
        txn(p, "begin")
        write_file(p, b"new!")
        txn(p, "commit no_flush")
        os.setxattr(p, "user.rvm.flush", b"1")
        M.crash()
        self.assertEqual(read_file(p), b"new!")

    def test_bad_input_gets_errno(self):
        p = M.path("bad")
        write_file(p, b"x")
        cases = [("begin twice", "bogus", errno.EINVAL),
                 ("commit", "commit", errno.ENOENT),
                 ("abort", "abort", errno.ENOENT),
                 ("join 77", "join 77", errno.ENOENT),
                 ("join -1", "join -1", errno.EINVAL)]
        for label, cmd, want in cases:
            with self.subTest(label):
                with self.assertRaises(OSError) as cm:
                    txn(p, cmd)
                self.assertEqual(cm.exception.errno, want)
        txn(p, "begin")
        with self.assertRaises(OSError) as cm:
            txn(p, "begin")
        self.assertEqual(cm.exception.errno, errno.EBUSY)
        txn(p, "abort")
        with self.assertRaises(OSError) as cm:
            os.setxattr(p, "user.rvm.other", b"1")
        self.assertEqual(cm.exception.errno, errno.EINVAL)
        with self.assertRaises(OSError) as cm:
            os.getxattr(p, "user.rvm.other")
        self.assertEqual(cm.exception.errno, errno.ENODATA)

    def test_stat_and_listxattr(self):
        p = M.path("stat")
        write_file(p, b"12345")
        self.assertIn("size=5", os.getxattr(p, "user.rvm.stat").decode())
        self.assertIn(TXN, os.listxattr(p))
        self.assertIn("log_size=", os.getxattr(M.mnt, "user.rvm.stat").decode())


def main():
    global M
    if not os.access("/dev/fuse", os.R_OK | os.W_OK) or not RVMFS:
        print("SKIP: /dev/fuse or the rvmfs binary is missing")
        return 77
    M = Mount()
    try:
        M.start()
        prog = unittest.main(argv=[sys.argv[0], "-v"], exit=False)
        ok = prog.result.wasSuccessful()
        rc = M.stop()
        if rc != 0:
            print("daemon exit status %r\n%s" % (rc, M.log()))
            ok = False
        return 0 if ok else 1
    finally:
        M.cleanup()


if __name__ == "__main__":
    sys.exit(main())
