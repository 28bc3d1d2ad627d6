#!/bin/sh
# Move money between two accounts, two files of an rvmfs mount, from the
# shell: both files change together or not at all, even across a crash.
#   usage: transfer.sh MOUNTPOINT        (rvmctl on PATH)
set -eu
m=${1:?usage: transfer.sh MOUNTPOINT}

echo 100 >"$m/alice"    # outside a transaction each write is its own
echo 0 >"$m/bob"

# move AMOUNT: from alice to bob, refused (and rolled back) if it would
# leave alice below zero.
move() {
    tid=$(rvmctl begin "$m/alice" "$m/bob")      # one transaction, two files
    a=$(cat "$m/alice") b=$(cat "$m/bob")
    echo $((a - $1)) >"$m/alice"
    echo $((b + $1)) >"$m/bob"
    if [ $((a - $1)) -lt 0 ]; then
        rvmctl abort "$m/alice" >/dev/null           # puts both files back
        echo "transaction $tid: refused to move $1 (alice has $a)"
        return 1
    fi
    rvmctl commit "$m/alice" >/dev/null              # durable on return
    echo "transaction $tid: moved $1"
}

move 30
move 50
move 40 || true
echo "alice=$(cat "$m/alice") bob=$(cat "$m/bob")"
