#!/bin/bash
# The README's first command, for a fresh Debian 12 machine (as root):
# install what is needed, build into build/, then show rvmfs at work:
#   1. librvm: a counter in recoverable memory survives kill -9;
#   2. rvmfs: docs/tour.sh mounts a store (RVMFS_STORE, default
#      ~/rvmfs-store) at RVMFS_MNT (default ~/rvmfs), runs transactions
#      from the shell and Python, crashes the daemon and recovers, and
#      leaves the store mounted.
# Step 2 needs FUSE (/dev/fuse) and the daemon; without them it says why
# and stops after step 1.
set -eu
cd "$(dirname "$0")/.."
. .ci/deps.sh

rvmfs_install_deps
if [ -f build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build >/dev/null
else
    meson setup build >/dev/null
fi
echo "building into build/ (log: build/ninja.log)..."
if ! ninja -C build >build/ninja.log 2>&1; then
    grep -E -A5 'error|FAILED' build/ninja.log | head -40
    echo "the build failed; the whole log is build/ninja.log"
    exit 1
fi
echo "built: build/mount/rvmfs, build/src/tools/rvmctl, build/src/librvm.so"
export PATH="$PWD/build/mount:$PWD/build/src/tools:$PATH"

echo
echo "==== 1. librvm: a counter that survives kill -9 (docs/examples/rvm_counter.c)"
counter=build/tests/rvm_counter
if [ ! -x "$counter" ]; then
    echo "(not built: the test suite is off; see meson_options.txt)"
else
    dir=$(mktemp -d)
    "$counter" "$dir" loop >"$dir/out" &
    pid=$!
    sleep 1
    kill -KILL "$pid"
    wait "$pid" 2>/dev/null || true
    # The kill may cut the last line: take the last whole one.
    if [ "$(tail -c 1 "$dir/out" | od -An -c | tr -d ' ')" = '\n' ]; then
        last=$(tail -n 1 "$dir/out")
    else
        last=$(tail -n 2 "$dir/out" | head -n 1)
    fi
    echo "last value printed before kill -9: $last"
    echo "value after recovery:              $("$counter" "$dir" show)"
    echo "(the same, or one more: the kill may fall between a commit and its printf)"
    rm -rf "$dir"
fi

echo
echo "==== 2. rvmfs: mount a store, transactions, a crash (docs/tour.sh)"
store=${RVMFS_STORE:-$HOME/rvmfs-store}
mnt=${RVMFS_MNT:-$HOME/rvmfs}
if ! command -v rvmfs >/dev/null || ! command -v rvmctl >/dev/null; then
    echo "the rvmfs daemon or rvmctl is not built yet; stopping after step 1"
    exit 0
fi
if [ ! -c /dev/fuse ]; then
    echo "no /dev/fuse here (a container without FUSE?); stopping after step 1"
    exit 0
fi
if mountpoint -q "$mnt"; then
    echo "$mnt is mounted already: unmount it first (fusermount3 -u $mnt)"
    exit 1
fi
bash docs/tour.sh "$store" "$mnt"
echo
echo "$store is mounted at $mnt.  Unmount with: fusermount3 -u $mnt"
echo "To type rvmctl and rvmfs yourself in this shell:"
echo "  export PATH=\"$PWD/build/mount:$PWD/build/src/tools:\$PATH\""
echo "then, e.g.: rvmctl status $mnt; man -l src/tools/rvmctl.1"
