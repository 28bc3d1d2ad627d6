#!/bin/bash
# test_cli.sh - the rvmfs command line: usage, --help/--version, store
# creation, log=, refusals (not a store, store in use), clean stops.
# usage: test_cli.sh RVMFS_BINARY
set -u

RVMFS=${1:-${RVMFS_BIN:-}}
if [ ! -w /dev/fuse ] || [ -z "$RVMFS" ]; then
    echo "SKIP: /dev/fuse or the rvmfs binary is missing"; exit 77
fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rvmfs-cli.XXXXXX")
PIDS=()
cleanup() {
    for m in "$DIR"/mnt*; do
        mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" || fusermount3 -u -z "$m"; }
    done
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$DIR"
}
trap cleanup EXIT

FAILS=0
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1: $2"; FAILS=$((FAILS + 1)); }
expect_rc() { # name want-rc command...
    local name=$1 want=$2; shift 2
    "$@" >"$DIR/out" 2>&1
    local rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name"; else fail "$name" "exit $rc, want $want: $(cat "$DIR/out")"; fi
}
unmount_wait() { # fusermount3 -u, then wait until the daemon has exited
    fusermount3 -u "$1"
    for _ in $(seq 500); do pgrep -f "rvmfs $DIR/store" >/dev/null || return 0; sleep 0.01; done
    return 1
}
wait_mount() {
    for _ in $(seq 500); do mountpoint -q "$1" && return 0; sleep 0.01; done
    return 1
}

mkdir "$DIR/mnt" "$DIR/mnt2"

expect_rc "no arguments is a usage error" 2 "$RVMFS"
expect_rc "one argument is a usage error" 2 "$RVMFS" "$DIR/store"
expect_rc "bad logsize is a usage error" 2 "$RVMFS" "$DIR/store" "$DIR/mnt" -o logsize=lots
expect_rc "truncate over 100 is a usage error" 2 "$RVMFS" "$DIR/store" "$DIR/mnt" -o truncate=150
expect_rc "poll_us over a second is a usage error" 2 "$RVMFS" "$DIR/store" "$DIR/mnt" -o poll_us=2000000
grep -q "poll_us=2000000: give at most" "$DIR/out" &&
    pass "poll_us error says what to give" || fail "poll_us error" "no message"
[ -e "$DIR/store" ] && fail "a usage error creates no store" "$DIR/store exists" || pass "a usage error creates no store"
expect_rc "--help" 0 "$RVMFS" --help
grep -q "txn_timeout" "$DIR/out" && pass "--help lists rvmfs options" || fail "--help" "no txn_timeout"
grep -q "poll_us" "$DIR/out" && pass "--help lists poll_us" || fail "--help" "no poll_us"
expect_rc "--version" 0 "$RVMFS" --version

mkdir "$DIR/junk"; touch "$DIR/junk/file"
expect_rc "a non-empty directory is not a store" 1 "$RVMFS" "$DIR/junk" "$DIR/mnt"
grep -q "not an rvmfs store" "$DIR/out" && pass "says why" || fail "message" "$(cat "$DIR/out")"
[ -e "$DIR/junk/rvm.log" ] && fail "junk untouched" "a log was written" || pass "junk untouched"

# test_first_mount_creates_the_store_with_log_elsewhere (daemonized)
expect_rc "first mount creates the store" 0 "$RVMFS" "$DIR/store" "$DIR/mnt" -o "log=$DIR/elsewhere.log,logsize=1M"
wait_mount "$DIR/mnt" || fail "mounted" "not mounted"
[ -f "$DIR/store/rvmfs.conf" ] && [ -d "$DIR/store/tree" ] && [ -d "$DIR/store/seg" ] \
    && pass "store layout" || fail "store layout" "$(ls "$DIR/store")"
[ -f "$DIR/elsewhere.log" ] && pass "log= puts the log elsewhere" || fail "log=" "no log"
echo data > "$DIR/mnt/file"
expect_rc "second daemon on the same store is refused" 1 "$RVMFS" "$DIR/store" "$DIR/mnt2" -o "log=$DIR/elsewhere.log"
grep -q "in use" "$DIR/out" && pass "says it is in use" || fail "in use message" "$(cat "$DIR/out")"
expect_rc "fusermount3 -u" 0 fusermount3 -u "$DIR/mnt"
for _ in $(seq 300); do pgrep -f "rvmfs $DIR/store" >/dev/null || break; sleep 0.01; done
pgrep -f "rvmfs $DIR/store" >/dev/null && fail "daemon gone after unmount" "still running" || pass "daemon gone after unmount"

# test_sigterm_stops_cleanly_and_keeps_data (SIGINT is ignored by
# background jobs of a non-interactive shell, and rvmfs respects that)
# (with poll_us, so that polling readers serve these requests)
"$RVMFS" "$DIR/store" "$DIR/mnt" -f -o "log=$DIR/elsewhere.log,poll_us=50" 2>"$DIR/daemon.log" &
PID=$!; PIDS+=("$PID")
wait_mount "$DIR/mnt" || fail "remount" "not mounted"
[ "$(cat "$DIR/mnt/file")" == "data" ] && pass "data kept across unmount" || fail "data" "$(cat "$DIR/mnt/file")"
echo more >> "$DIR/mnt/file"
kill -TERM "$PID"; wait "$PID"; RC=$?
[ "$RC" -eq 0 ] && pass "SIGTERM exits 0" || fail "SIGTERM" "exit $RC: $(cat "$DIR/daemon.log")"
mountpoint -q "$DIR/mnt" && fail "unmounted after SIGTERM" "still mounted" || pass "unmounted after SIGTERM"
"$RVMFS" "$DIR/store" "$DIR/mnt" -o "log=$DIR/elsewhere.log"
wait_mount "$DIR/mnt"
[ "$(cat "$DIR/mnt/file")" == "$(printf 'data\nmore')" ] && pass "data kept across SIGTERM" || fail "data after SIGTERM" "$(cat "$DIR/mnt/file")"
unmount_wait "$DIR/mnt"

# test_interrupted_shrink_is_finished_at_mount (white box: a crash between
# the committed new size and the punch leaves stale bytes past the size and
# the marker seg/.trim.<ino>; the next mount must zero them)
"$RVMFS" "$DIR/store" "$DIR/mnt" -o "log=$DIR/elsewhere.log"
wait_mount "$DIR/mnt"
printf abc > "$DIR/mnt/shrunk"
INO=$(stat -c %i "$DIR/mnt/shrunk")
unmount_wait "$DIR/mnt"
head -c 8192 /dev/urandom | dd of="$DIR/store/seg/$INO" bs=1 seek=4099 conv=notrunc status=none
touch "$DIR/store/seg/.trim.$INO"
"$RVMFS" "$DIR/store" "$DIR/mnt" -o "log=$DIR/elsewhere.log"
wait_mount "$DIR/mnt"
[ -e "$DIR/store/seg/.trim.$INO" ] && fail "marker consumed" "still there" || pass "marker consumed"
truncate -s 8195 "$DIR/mnt/shrunk"
if cmp -s <(tail -c +4 "$DIR/mnt/shrunk") <(head -c 8192 /dev/zero); then
    pass "bytes past the size are zero after repair"
else
    fail "repair" "stale bytes visible"
fi
[ "$(head -c 3 "$DIR/mnt/shrunk")" == "abc" ] && pass "data before the size kept" || fail "data" "lost"
unmount_wait "$DIR/mnt"

if [ "$FAILS" -ne 0 ]; then echo "$FAILS failed"; exit 1; fi
echo "all passed"
