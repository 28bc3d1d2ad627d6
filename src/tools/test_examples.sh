#!/bin/bash
# Runs the examples of docs/examples on a fresh mount and checks their
# result, so that the docs cannot drift from the code.
#   test_examples.sh RVMCTL RVMFS EXAMPLE...
# An example is run as `EXAMPLE MOUNTPOINT` (with rvmctl on PATH) and must
# end with the line "alice=20 bob=80".  Exit 77 (skipped) without FUSE.
set -u
rvmctl=${1:?rvmctl} rvmfs=${2:?rvmfs}
shift 2

skip() { echo "SKIP: $*"; exit 77; }
[ -x "$rvmfs" ] || skip "the rvmfs daemon ($rvmfs) is not built"
[ -c /dev/fuse ] || skip "no /dev/fuse on this machine"
command -v fusermount3 >/dev/null || skip "fusermount3 is not installed (Debian: fuse3)"

T=$(mktemp -d "${TMPDIR:-/tmp}/rvmfs-examples.XXXXXX")
mnt="$T/mnt" daemon=
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt"
    [ -n "$daemon" ] && wait "$daemon" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
export PATH="$(dirname "$rvmctl"):$PATH"

passed=0 failed=0
for ex in "$@"; do
    name=$(basename "$ex")
    mkdir -p "$mnt"
    "$rvmfs" "$T/store.$name" "$mnt" -f 2>"$T/daemon.log" &
    daemon=$!
    for _ in $(seq 100); do
        mountpoint -q "$mnt" && break
        sleep 0.1
    done
    case $ex in
    *.py) out=$(python3 "$ex" "$mnt" 2>&1) ;;
    *.sh) out=$(sh "$ex" "$mnt" 2>&1) ;;
    *) out=$("$ex" "$mnt" 2>&1) ;;
    esac
    rc=$?
    if [ "$rc" -eq 0 ] && [ "$(printf '%s\n' "$out" | tail -n 1)" = "alice=20 bob=80" ] &&
        printf '%s\n' "$out" | grep -q 'refused to move 40'; then
        passed=$((passed + 1))
        echo "ok   example_$name"
    else
        failed=$((failed + 1))
        echo "FAIL example_$name: exit $rc"
        printf '%s\n' "$out" | tail -n 10 | sed 's/^/    /'
        tail -n 5 "$T/daemon.log" | sed 's/^/    daemon: /'
    fi
    fusermount3 -u "$mnt"
    wait "$daemon"
    daemon=
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
