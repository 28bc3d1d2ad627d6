#!/usr/bin/env python3
"""Move money between two files of an rvmfs mount, atomically, from Python.

usage: transfer.py MOUNTPOINT

Transactions go through the user.rvm.txn extended attribute, which works
from any language that can set xattrs.  Isolation is the application's:
here an fcntl lock on alice's file keeps two copies of this program from
interleaving.
"""
import fcntl
import os
import sys

TXN = "user.rvm.txn"


def begin(path, *others):
    """Begin a transaction on path, join the others; return its id."""
    os.setxattr(path, TXN, b"begin")
    tid = int(os.getxattr(path, TXN).split()[0])   # "<tid> ranges=.. bytes=.."
    for p in others:
        os.setxattr(p, TXN, b"join %d" % tid)
    return tid


def commit(path):
    os.setxattr(path, TXN, b"commit")              # returns once durable


def abort(path):
    os.setxattr(path, TXN, b"abort")               # every member file put back


def read(path):
    with open(path) as f:
        return int(f.read())


def write(path, value):
    with open(path, "w") as f:
        f.write("%d\n" % value)


def move(alice, bob, amount):
    with open(alice, "r+") as lock:   # lockf needs a writable descriptor
        fcntl.lockf(lock, fcntl.LOCK_EX)
        tid = begin(alice, bob)
        a, b = read(alice), read(bob)
        try:
            write(alice, a - amount)
            write(bob, b + amount)
            if a - amount < 0:
                raise ValueError("alice has %d" % a)
        except Exception as e:
            abort(alice)
            print("transaction %d: refused to move %d (%s)" % (tid, amount, e))
            return False
        commit(alice)
        print("transaction %d: moved %d" % (tid, amount))
        return True


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: transfer.py MOUNTPOINT")
    alice = os.path.join(sys.argv[1], "alice")
    bob = os.path.join(sys.argv[1], "bob")
    write(alice, 100)
    write(bob, 0)
    move(alice, bob, 30)
    move(alice, bob, 50)
    move(alice, bob, 40)
    print("alice=%d bob=%d" % (read(alice), read(bob)))


if __name__ == "__main__":
    main()
