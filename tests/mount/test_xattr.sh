#!/bin/bash
# test_xattr.sh - transactions from a shell through user.rvm.* xattrs
# (setfattr/getfattr), on a real rvmfs mount.
# usage: test_xattr.sh RVMFS_BINARY
set -u

RVMFS=${1:-${RVMFS_BIN:-}}
if [ ! -w /dev/fuse ] || [ -z "$RVMFS" ]; then
    echo "SKIP: /dev/fuse or the rvmfs binary is missing"; exit 77
fi
if ! command -v setfattr >/dev/null || ! command -v getfattr >/dev/null; then
    echo "SKIP: setfattr/getfattr (package attr) not installed"; exit 77
fi

DIR=$(mktemp -d "${TMPDIR:-/tmp}/rvmfs-sh.XXXXXX")
MNT=$DIR/mnt
PID=
mkdir "$MNT"

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || { kill -9 "$PID"; fusermount3 -u -z "$MNT"; }
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT

start() {
    "$RVMFS" "$DIR/store" "$MNT" -f 2>>"$DIR/daemon.log" &
    PID=$!
    for _ in $(seq 500); do
        mountpoint -q "$MNT" && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.01
    done
    echo "rvmfs did not mount"; cat "$DIR/daemon.log"; exit 1
}

crash() {
    kill -9 "$PID"; wait "$PID" 2>/dev/null
    fusermount3 -u -z "$MNT"
    start
}

FAILS=0
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1: $2"; FAILS=$((FAILS + 1)); }
expect_eq() { # name got want
    if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "got '$2', want '$3'"; fi
}
expect_err() { # name errno-text command...
    local name=$1 want=$2; shift 2
    local out
    if out=$("$@" 2>&1); then fail "$name" "succeeded"; return; fi
    case $out in
        *"$want"*) pass "$name" ;;
        *) fail "$name" "error '$out', want '$want'" ;;
    esac
}
txn() { setfattr -n user.rvm.txn -v "$1" "$2"; }
state() { getfattr --absolute-names --only-values -n user.rvm.txn "$1" 2>/dev/null; }

start
F=$MNT/file
printf 'original' > "$F"

# test_commit_from_shell_keeps_bytes
txn begin "$F"
case $(state "$F") in
    [0-9]*" ranges=0 bytes=0") pass "state after begin names the tid" ;;
    *) fail "state after begin" "$(state "$F")" ;;
esac
printf 'COMMITTED and longer' > "$F"
printf '!' >> "$F"
txn commit "$F"
expect_eq "committed bytes visible" "$(cat "$F")" "COMMITTED and longer!"
expect_eq "state after commit" "$(state "$F")" "none"

# test_abort_from_shell_restores_bytes_and_size
txn begin "$F"
printf 'xx' > "$F"
expect_eq "write visible inside transaction" "$(cat "$F")" "xx"
txn abort "$F"
expect_eq "aborted bytes gone" "$(cat "$F")" "COMMITTED and longer!"
expect_eq "aborted size gone" "$(stat -c %s "$F")" "21"

# test_join_two_files_from_shell
G=$MNT/other
printf 'gggg' > "$G"
txn begin "$F"
TID=$(state "$F" | cut -d' ' -f1)
txn "join $TID" "$G"
expect_eq "joined file shows the tid" "$(state "$G" | cut -d' ' -f1)" "$TID"
printf 'F2' > "$F"
printf 'G2' > "$G"
txn abort "$G"
expect_eq "abort through joined file restores first" "$(cat "$F")" "COMMITTED and longer!"
expect_eq "abort through joined file restores second" "$(cat "$G")" "gggg"

# test_commit_no_flush_then_flush_survives_crash
txn begin "$F"
printf 'durable' > "$F"
txn "commit no_flush" "$F"
setfattr -n user.rvm.flush -v 1 "$F"
crash
expect_eq "no_flush commit made durable by user.rvm.flush" "$(cat "$F")" "durable"

# test_uncommitted_shell_transaction_vanishes_in_crash
txn begin "$F"
printf 'lost' > "$F"
crash
expect_eq "uncommitted bytes gone after crash" "$(cat "$F")" "durable"
expect_eq "no transaction after crash" "$(state "$F")" "none"

# test_bad_input_from_shell
expect_err "bad txn value is EINVAL" "Invalid argument" txn bogus "$F"
expect_err "commit without transaction is ENOENT" "No such file" txn commit "$F"
expect_err "join unknown tid is ENOENT" "No such file" txn "join 99" "$F"
expect_err "join garbage is EINVAL" "Invalid argument" txn "join x1" "$F"
txn begin "$F"
expect_err "second begin is EBUSY" "busy" txn begin "$F"
txn abort "$F"
expect_err "unknown user.rvm name is EINVAL" "Invalid argument" setfattr -n user.rvm.nope -v 1 "$F"
expect_err "stat is read-only" "Invalid argument" setfattr -n user.rvm.stat -v 1 "$F"
expect_err "txn on a directory is EINVAL" "Invalid argument" txn begin "$MNT"

# test_stat_xattrs
case $(getfattr --absolute-names --only-values -n user.rvm.stat "$F") in
    *"size=7"*) pass "file stat shows the size" ;;
    *) fail "file stat" "$(getfattr --absolute-names --only-values -n user.rvm.stat "$F")" ;;
esac
case $(getfattr --absolute-names --only-values -n user.rvm.stat "$MNT") in
    *log_size=*committed=*aborted=*) pass "root stat describes the store" ;;
    *) fail "root stat" "$(getfattr --absolute-names --only-values -n user.rvm.stat "$MNT")" ;;
esac

# test_other_user_xattrs_are_stored
setfattr -n user.color -v blue "$F"
expect_eq "user xattr stored" "$(getfattr --absolute-names --only-values -n user.color "$F")" "blue"
crash
expect_eq "user xattr kept" "$(getfattr --absolute-names --only-values -n user.color "$F")" "blue"
expect_err "missing xattr is ENODATA" "No such attribute" getfattr --absolute-names -n user.none "$F"

# test_clean_unmount_exits_zero
fusermount3 -u "$MNT"
wait "$PID"; RC=$?
PID=
expect_eq "daemon exit status after unmount" "$RC" "0"

if [ "$FAILS" -ne 0 ]; then
    echo "$FAILS failed"; cat "$DIR/daemon.log"; exit 1
fi
echo "all passed"
