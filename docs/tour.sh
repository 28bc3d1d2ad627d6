#!/bin/bash
# The README's 60-second tour, as one script: README.md shows these very
# commands (the lines passed to `step`), and a test checks that it still
# does.  Needs rvmfs and rvmctl on PATH (docs/quickstart.sh sets it up).
#
#   bash docs/tour.sh STORE MOUNTPOINT
#
# Leaves STORE mounted at MOUNTPOINT.
set -eu
STORE=${1:?usage: tour.sh STORE MOUNTPOINT}
MNT=${2:?usage: tour.sh STORE MOUNTPOINT}
mkdir -p "$MNT"

# Print a command as a shell user would type it, then run it.
step() { printf '\n$ %s\n' "$1"; eval "$1"; }

echo "== mount a store (created on first mount; -f: in the foreground, here as a job) =="
step 'rvmfs "$STORE" "$MNT" -f & daemon=$!; until mountpoint -q "$MNT"; do sleep 0.1; done'
step 'echo "balance=100" > "$MNT/alice"; echo "balance=0" > "$MNT/bob"'

echo; echo "== a transaction from the shell: two files, one atomic commit =="
step 'tid=$(rvmctl begin "$MNT/alice" "$MNT/bob"); echo "transaction $tid"'
step 'echo "balance=60" > "$MNT/alice"; echo "balance=40" > "$MNT/bob"'
step 'rvmctl commit "$MNT/alice"'
step 'cat "$MNT/alice" "$MNT/bob"'

echo; echo "== abort puts every byte back =="
step 'rvmctl begin "$MNT/alice"'
step 'echo "balance=1000000" > "$MNT/alice"'
step 'rvmctl abort "$MNT/alice"'
step 'cat "$MNT/alice"'

echo; echo "== the same from Python, through the user.rvm.txn attribute =="
step 'python3 -c "
import os, sys
p = sys.argv[1]
os.setxattr(p, \"user.rvm.txn\", b\"begin\")
open(p, \"w\").write(\"balance=50\n\")
os.setxattr(p, \"user.rvm.txn\", b\"commit\")
" "$MNT/bob"'
step 'cat "$MNT/bob"'

echo; echo "== a crash: kill the daemon, look at the log, mount again =="
step 'echo "balance=55" > "$MNT/alice"; rvmctl flush "$MNT"'
step 'kill -KILL $daemon; wait $daemon || true; fusermount3 -u "$MNT"'
step 'rvmctl status "$STORE" | grep -E "^(records|transactions|end)="'
echo "(the records the daemon had not yet applied to the files; end=clean: the"
echo " log ends with a whole record, nothing was torn by the crash)"
step 'rvmctl log "$STORE" | tail -n 3'
step 'rvmfs "$STORE" "$MNT"'
echo "(mounting replayed the log: the flushed write is there)"
step 'cat "$MNT/alice"'

echo; echo "== what the daemon has done =="
step 'rvmctl status "$MNT" | grep -E "^(log_size|log_used|log_records|active)="'
