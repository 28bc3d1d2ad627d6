#!/bin/sh
# Runs docs/examples/rvm_counter: kill -9 it while it counts, several
# times, and check that the count it shows afterwards is the last value it
# printed (or one more: it may die between the commit and the printf).
# usage: test_example.sh PATH/TO/rvm_counter
set -u
bin=${1:?usage: test_example.sh rvm_counter}
[ -x "$bin" ] || { echo "SKIP: $bin not built"; exit 77; }
dir=$(mktemp -d "${TMPDIR:-/tmp}/rvmcounter.XXXXXX") || exit 1
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*"; exit 1; }

out=$("$bin" "$dir") || fail "first run failed"
[ "$out" = 1 ] || fail "first increment printed '$out', expected 1"
out=$("$bin" "$dir" show) || fail "show failed"
[ "$out" = 1 ] || fail "show printed '$out', expected 1"

for round in 1 2 3 4 5; do
    "$bin" "$dir" loop >"$dir/out" 2>"$dir/err" &
    pid=$!
    # let it count for a moment (at least one value printed)
    i=0
    while [ ! -s "$dir/out" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    sleep 0.$((round * 7 % 10))
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    [ -s "$dir/err" ] && fail "round $round: the counter said: $(cat "$dir/err")"
    last=$(tail -n 1 "$dir/out")
    # the last line may be cut by the kill: use the last complete one
    case $(tail -c 1 "$dir/out" | od -An -c | tr -d ' ') in
        '\n') ;;
        *) last=$(tail -n 2 "$dir/out" | head -n 1) ;;
    esac
    [ -n "$last" ] || fail "round $round: nothing printed"
    now=$("$bin" "$dir" show) || fail "round $round: show after kill failed"
    if [ "$now" -ne "$last" ] && [ "$now" -ne $((last + 1)) ]; then
        fail "round $round: counter is $now after kill -9, last printed $last"
    fi
    echo "round $round: killed at $last, recovered $now"
done
# The same counter bumped by an auto transaction (no set_range).
before=$("$bin" "$dir" show) || fail "show failed"
out=$("$bin" "$dir" auto) || fail "auto increment failed"
[ "$out" -eq $((before + 1)) ] || fail "auto increment printed $out after $before"
now=$("$bin" "$dir" show) || fail "show after auto failed"
[ "$now" -eq "$out" ] || fail "after the auto increment the counter is $now, expected $out"
echo "PASS"
