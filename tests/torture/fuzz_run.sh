#!/bin/sh
# fuzz_run.sh FUZZER CORPUS SECONDS [libFuzzer options...]
# Run the libFuzzer recovery target for SECONDS over a scratch copy of the
# checked-in CORPUS (new inputs go to the scratch directory, not the tree).
set -e
fuzzer=$1; corpus=$2; secs=$3; shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/rvm-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$@" "$work" "$corpus"
