#!/usr/bin/python3
"""test_hostile_log.py - rvmfs refuses a damaged or foreign log at start-up
(issue 4, the daemon).

The store was left by a killed daemon with a committed transaction only in
its log.  The log is then emptied, cut short, zero-filled, random, a file
of another format, missing, a directory, a FIFO, a character device, or
someone else's file given with log=; or rvmfs.conf is of another version.
Each time the daemon must exit non-zero without mounting, say what is
wrong in a line, and leave every file of the store (and the other file)
as it was; with the real log put back, the store mounts with the
committed bytes.

Standard library only.  usage: test_hostile_log.py RVMFS_BINARY
Exit 77 (skipped) where /dev/fuse is not usable.
"""
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unittest

from hostile_util import (LOGSIZE, TXN, Daemon, fsnap, mounted, read_file,
                          require_fuse, snap_diff)

TMP = None


class StartupLog(unittest.TestCase):
    """A damaged or foreign log when the daemon starts: it refuses, says
    so in one line, exits non-zero and changes nothing."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(TMP)
        cls.d.run()
        # committed data that only the log holds: the daemon is killed
        with open(cls.d.path("a"), "wb") as f:
            f.write(b"a" * 20000)
        os.setxattr(cls.d.path("a"), TXN, b"begin")
        with open(cls.d.path("a"), "r+b") as f:
            f.write(b"committed")
        os.setxattr(cls.d.path("a"), TXN, b"commit")
        cls.d.kill()
        cls.log = os.path.join(cls.d.store, "rvm.log")
        with open(cls.log, "rb") as f:
            cls.good = f.read()

    @classmethod
    def tearDownClass(cls):
        cls.d.cleanup()

    def tearDown(self):
        # put the real log back; the store must mount with the data intact
        if os.path.isdir(self.log) and not os.path.islink(self.log):
            os.rmdir(self.log)
        elif os.path.lexists(self.log) and not os.path.isfile(self.log):
            os.unlink(self.log)
        with open(self.log, "wb") as f:
            f.write(self.good)
        self.d.run()
        with open(self.d.path("a"), "rb") as f:
            self.assertEqual(f.read(12), b"committeda" + b"aa")
        self.d.kill()  # keeps the log as it is, for the next case
        with open(self.log, "wb") as f:
            f.write(self.good)

    def refused(self, opts=LOGSIZE, watch=(), about="log"):
        before = fsnap(self.d.store)
        others = [(p, read_file(p)) for p in watch]
        rc, msg = self.d.run(opts, wait_exit=True)
        self.assertNotEqual(rc, "mounted", "the daemon mounted it: " + msg)
        self.assertNotEqual(rc, 0, msg)
        self.assertFalse(mounted(self.d.mnt))
        # one line that says what is wrong (the generic "cannot open
        # store" may follow it), nothing else: no sanitizer report either
        lines = [ln for ln in msg.splitlines() if ln.strip()]
        self.assertIn(len(lines), (1, 2), msg)
        for ln in lines:
            self.assertTrue(ln.startswith("rvmfs: "), msg)
        self.assertIn(about, lines[0], msg)
        self.assertEqual(snap_diff(before, fsnap(self.d.store)), [])
        for p, data in others:
            self.assertEqual(read_file(p), data, p)
        return lines[0]

    def replace_log(self, data):
        with open(self.log, "wb") as f:
            f.write(data)

    def test_empty_log_is_refused(self):
        self.replace_log(b"")
        self.refused()

    def test_truncated_logs_are_refused(self):
        for size in (1, 4096, 262144, 262144 * 2 + 100, len(self.good) // 2,
                     len(self.good) - 1):
            with self.subTest(size=size):
                self.replace_log(self.good[:size])
                self.refused()

    def test_zero_filled_log_is_refused(self):
        self.replace_log(bytes(len(self.good)))
        self.refused()

    def test_random_log_is_refused(self):
        self.replace_log(random.Random(7).randbytes(len(self.good)))
        self.refused()

    def test_log_of_another_format_is_refused(self):
        seg = os.path.join(self.d.store, "seg")
        segfile = os.path.join(seg, sorted(os.listdir(seg))[0])
        with open(segfile, "rb") as f:
            segdata = f.read()
        with open("/bin/sh", "rb") as f:
            elf = f.read()
        for name, data in (("segment", segdata.ljust(len(self.good), b"\0")),
                           ("elf", elf), ("text", b"version=1\n" * 50000),
                           ("sqlite", b"SQLite format 3\0" + bytes(len(self.good)))):
            with self.subTest(kind=name):
                self.replace_log(data)
                self.refused()

    def test_missing_log_is_refused_not_recreated(self):
        os.unlink(self.log)
        self.refused()
        self.assertFalse(os.path.exists(self.log))

    def test_log_that_is_a_directory_is_refused(self):
        os.unlink(self.log)
        os.mkdir(self.log)
        self.refused()

    def test_log_that_is_a_fifo_or_a_character_device_is_refused(self):
        # opening a FIFO would block the daemon for ever
        os.unlink(self.log)
        os.mkfifo(self.log)
        self.refused()
        os.unlink(self.log)
        os.symlink("/dev/zero", self.log)
        self.refused()
        os.unlink(self.log)

    def test_store_of_another_version_is_refused(self):
        conf = os.path.join(self.d.store, "rvmfs.conf")
        good = read_file(conf)
        try:
            for text in (b"version=10\n", b"version=2\n", b"# version=1x\n",
                         b"", b"\0" * 64):
                with self.subTest(conf=text):
                    with open(conf, "wb") as f:
                        f.write(text)
                    self.refused(about="version")
        finally:
            with open(conf, "wb") as f:
                f.write(good)

    def test_someone_elses_file_given_as_log_is_refused_and_untouched(self):
        other = os.path.join(self.d.dir, "someone-elses.db")
        with open(other, "wb") as f:
            f.write(random.Random(8).randbytes(3 << 20))
        try:
            self.refused(LOGSIZE + ",log=" + other, watch=[other])
        finally:
            os.unlink(other)

    def dirty_store(self):
        """Another store, left by a killed daemon with a committed
        transaction only in its log."""
        e = Daemon(self.d.dir)
        e.run()
        with open(e.path("b"), "wb") as f:
            f.write(b"b" * 5000)
        os.setxattr(e.path("b"), TXN, b"begin")
        with open(e.path("b"), "r+b") as f:
            f.write(b"other's")
        os.setxattr(e.path("b"), TXN, b"commit")
        e.kill()
        return e

    def test_copy_of_a_store_with_records_in_its_log_is_refused(self):
        # the log names its segments by absolute path: recovering the copy
        # would write into the original's segments and lose the copy's
        copy = os.path.join(self.d.dir, "copy")
        subprocess.run(["cp", "-a", self.d.store, copy], check=True)
        moved = Daemon(self.d.dir)
        try:
            os.rmdir(moved.mnt)
            shutil.rmtree(moved.store, ignore_errors=True)
            os.rename(copy, moved.store)
            os.mkdir(moved.mnt)
            before = (fsnap(self.d.store), fsnap(moved.store))
            rc, msg = moved.run(wait_exit=True)
            self.assertNotIn(rc, (0, "mounted"), msg)
            self.assertIn("copied or moved", msg)
            self.assertEqual(snap_diff(before[0], fsnap(self.d.store)), [])
            self.assertEqual(snap_diff(before[1], fsnap(moved.store)), [])
        finally:
            moved.cleanup()

    def test_another_stores_log_given_with_log_option_is_refused(self):
        e = self.dirty_store()
        try:
            other_log = os.path.join(e.store, "rvm.log")
            theirs = fsnap(e.store)
            self.refused(LOGSIZE + ",log=" + other_log, about="another store's")
            self.assertEqual(snap_diff(theirs, fsnap(e.store)), [])
            e.run()  # and it is still whole where it belongs
            with open(e.path("b"), "rb") as f:
                self.assertEqual(f.read(8), b"other'sb")
            self.assertEqual(e.stop(), 0)
        finally:
            e.cleanup()

    def test_someone_elses_file_given_as_log_of_a_new_store_is_untouched(self):
        other = os.path.join(self.d.dir, "notes.txt")
        with open(other, "wb") as f:
            f.write(b"my notes\n" * 1000)
        fresh = Daemon(self.d.dir)
        try:
            rc, msg = fresh.run(LOGSIZE + ",log=" + other, wait_exit=True)
            self.assertNotIn(rc, (0, "mounted"), msg)
            self.assertIn("log", msg)
            with open(other, "rb") as f:
                self.assertEqual(f.read(), b"my notes\n" * 1000)
        finally:
            fresh.cleanup()
            os.unlink(other)


class CopiedStore(unittest.TestCase):
    """A store copied after a clean unmount (cp -a: the inode numbers,
    which name the segments, change) mounts where it is now."""

    def test_clean_copy_mounts_with_its_files_and_leaves_the_original(self):
        a = Daemon(TMP)
        b = Daemon(TMP)
        try:
            a.run()
            os.mkdir(a.path("d"))
            files = {"f": b"f" * 7000, "d/g": b"g" * 100, "e": b""}
            for name, data in files.items():
                with open(a.path(name), "wb") as f:
                    f.write(data)
            os.link(a.path("f"), a.path("d/f2"))
            self.assertEqual(a.stop(), 0)
            shutil.rmtree(b.store, ignore_errors=True)
            subprocess.run(["cp", "-a", a.store, b.store], check=True)
            original = fsnap(a.store)
            for _ in range(2):  # the second mount finds the names right
                b.run()
                for name, data in files.items():
                    self.assertEqual(read_file(b.path(name)), data, name)
                self.assertEqual(read_file(b.path("d/f2")), files["f"])
                with open(b.path("f"), "r+b") as f:
                    f.write(b"copy")
                files["f"] = b"copy" + files["f"][4:]
                self.assertEqual(read_file(b.path("d/f2")), files["f"])
                self.assertEqual(b.stop(), 0)
            self.assertEqual(snap_diff(original, fsnap(a.store)), [])
        finally:
            a.cleanup()
            b.cleanup()

    def test_rekeying_cut_short_is_finished_at_the_next_mount(self):
        # a crash between the two rename passes leaves .rekey.<ino> names
        a = Daemon(TMP)
        try:
            a.run()
            with open(a.path("f"), "wb") as f:
                f.write(b"parked")
            self.assertEqual(a.stop(), 0)
            seg = os.path.join(a.store, "seg")
            for name in os.listdir(seg):
                if name.isdigit():
                    os.rename(os.path.join(seg, name),
                              os.path.join(seg, ".rekey." + name))
            a.run()
            self.assertEqual(read_file(a.path("f")), b"parked")
            self.assertEqual(a.stop(), 0)
            self.assertFalse([n for n in os.listdir(seg) if n.startswith(".")])
        finally:
            a.cleanup()


def main():
    global TMP
    require_fuse()
    TMP = tempfile.mkdtemp(prefix="rvmfs-hostile-log.")
    try:
        prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False,
                             verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(0 if prog.result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
