#!/bin/bash
# Tests of rvmctl, run by `meson test` (src/tools/meson.build):
#   test_rvmctl.sh store RVMCTL RVMCTL_TESTGEN   the store commands
#   test_rvmctl.sh mount RVMCTL RVMFS            the commands that need a
#                                                mount; exit 77 (skipped)
#                                                when they cannot run here
#   test_rvmctl.sh man RVMCTL MANPAGE            the man page renders
#                                                without warnings
#   test_rvmctl.sh manpage ANY MANPAGE           any man page renders
#                                                without warnings
#   test_rvmctl.sh readme README TOUR            README shows every command
#                                                of docs/tour.sh
#   test_rvmctl.sh tour RVMCTL RVMFS TOUR        docs/tour.sh runs as is
#                                                (exit 77 without FUSE)
# Each check is one behaviour, named for it.  Exit 1 if any failed.
set -u

mode=${1:?mode}
rvmctl=${2:?rvmctl}
third=${3:?testgen or rvmfs}

T=$(mktemp -d "${TMPDIR:-/tmp}/rvmctl-test.XXXXXX")
mnt= daemon_pid=
cleanup() {
    if [ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null; then
        fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
    fi
    [ -n "$daemon_pid" ] && wait "$daemon_pid" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# run CMD...: run it, keep stdout in $T/out, stderr in $T/err, status in $rc
run() { "$@" >"$T/out" 2>"$T/err"; rc=$?; }

# check NAME WANT_RC [--out RE]... [--err RE]... -- CMD...
# Runs CMD; checks its exit status, that its stdout/stderr match every
# given extended regex, and that a failure says so in exactly one line.
check() {
    local name=$1 want=$2 why=
    local -a outs=() errs=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        case $1 in
        --out) outs+=("$2") ;;
        --err) errs+=("$2") ;;
        esac
        shift 2
    done
    shift
    run "$@"
    [ "$rc" -eq "$want" ] || why="exit $rc, expected $want"
    for re in "${outs[@]+"${outs[@]}"}"; do
        grep -Eq -- "$re" "$T/out" || why="${why:+$why; }stdout lacks /$re/"
    done
    for re in "${errs[@]+"${errs[@]}"}"; do
        grep -Eq -- "$re" "$T/err" || why="${why:+$why; }stderr lacks /$re/"
    done
    if [ "$want" -ne 0 ] && [ "$(wc -l <"$T/err")" -ne 1 ]; then
        why="${why:+$why; }stderr is not one line"
    fi
    if [ -z "$why" ]; then
        pass "$name"
    else
        fail "$name" "$why"
        sed 's/^/    stdout: /' "$T/out" | head -20
        sed 's/^/    stderr: /' "$T/err" | head -5
    fi
}

# The u64 at offset 0 of a file, and the byte at offset 4096.
u64_at0() { od -A n -t u8 -N 8 "$1" | tr -d ' '; }
byte_at4096() { od -A n -c -j 4096 -N 1 "$1" | tr -d ' '; }
# A key of `rvmctl status` output.
key() { sed -n "s/^$1=//p" "$T/out"; }
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
flip_byte() {   # FILE OFFSET: invert one byte
    local b
    b=$(od -A n -t u1 -j "$2" -N 1 "$1" | tr -d ' ')
    printf "\\$(printf '%03o' $((255 - b)))" |
        dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

store_tests() {
    local gen=$third s="$T/s" f
    local S D

    # ---- program-wide ----
    check version_prints_name_and_version 0 --out '^rvmctl \(rvmfs\) [0-9]' -- "$rvmctl" --version
    check no_arguments_is_usage_error 2 -- "$rvmctl"
    check unknown_command_is_usage_error 2 --err "no command 'frobnicate'" -- "$rvmctl" frobnicate
    check help_lists_every_command 0 --out '^  init ' --out '^  recover ' --out '^  stat ' -- "$rvmctl" --help
    for c in init status log recover begin join commit abort stat flush; do
        check "help_of_$c" 0 --out "^Usage: rvmctl $c" -- "$rvmctl" "$c" --help
    done
    check help_command_gives_command_help 0 --out '^Usage: rvmctl log' -- "$rvmctl" help log
    check unknown_option_is_usage_error 2 --err "unknown option '--bogus'" -- "$rvmctl" status --bogus "$s"
    check missing_option_value_is_usage_error 2 --err "needs a value" -- "$rvmctl" init "$s" --log-size

    # ---- init ----
    check init_without_store_is_usage_error 2 --err 'give the STORE' -- "$rvmctl" init
    check init_with_two_stores_is_usage_error 2 -- "$rvmctl" init "$s" "$s.2"
    check init_rejects_bad_size 2 --err "bad log size 'lots'" -- "$rvmctl" init --log-size lots "$s"
    check init_rejects_size_below_minimum 2 --err 'minimum 64K' -- "$rvmctl" init --log-size 32K "$s"
    [ ! -e "$s" ] && pass init_usage_errors_create_nothing || fail init_usage_errors_create_nothing "$s exists"
    check init_default_store 0 --out 'created store' --out '64 MiB' -- "$rvmctl" init "$s.default"
    f=$(stat -c %s "$s.default/rvm.log")
    [ "$f" -eq $((64 * 1024 * 1024 + 2 * 256 * 1024)) ] && pass init_default_log_is_64MiB_preallocated \
        || fail init_default_log_is_64MiB_preallocated "log file has $f bytes"
    rm -rf "$s.default"
    check init_with_log_size 0 --out '1 MiB' -- "$rvmctl" init --log-size 1M "$s"
    if [ -d "$s/tree" ] && [ -d "$s/seg" ] && [ "$(cat "$s/rvmfs.conf")" = version=1 ] && [ -f "$s/rvm.log" ]; then
        pass init_creates_tree_seg_conf_and_log
    else
        fail init_creates_tree_seg_conf_and_log "$(ls -la "$s")"
    fi
    check init_refuses_existing_store 1 --err 'already an rvmfs store' -- "$rvmctl" init "$s"
    mkdir -p "$T/full" && touch "$T/full/x"
    check init_refuses_non_empty_dir 1 --err 'not empty' -- "$rvmctl" init "$T/full"
    check init_refuses_a_file 1 --err 'not a directory' -- "$rvmctl" init "$T/full/x"
    check init_needs_the_parent 1 --err 'create its parent' -- "$rvmctl" init "$T/no/such/store"
    mkdir "$T/empty"
    check init_accepts_empty_dir 0 -- "$rvmctl" init --log-size 64K "$T/empty"

    # ---- status of a store ----
    check status_of_new_store 0 --out '^records=0$' --out '^used=0$' --out '^log_size=1048576$' \
        --out '^end=clean$' -- "$rvmctl" status "$s"
    S=$(key status_size) D=$(key log_size)
    check status_without_path_is_usage_error 2 -- "$rvmctl" status
    check status_of_missing_path 1 --err 'cannot open' -- "$rvmctl" status "$T/nothing"
    check status_of_plain_dir 1 --err 'neither an rvmfs store' -- "$rvmctl" status "$T/full"
    check status_of_log_file_itself 0 --out '^records=0$' -- "$rvmctl" status "$s/rvm.log"
    check status_with_log_option 0 --out '^records=0$' -- "$rvmctl" status --log "$s/rvm.log" "$T/full"

    # ---- a log with records (left by a "crashed" librvm program) ----
    if ! "$gen" "$s/rvm.log" "$s/seg/100" 5 16; then
        fail testgen_writes_records "rvmctl-testgen failed"
        return
    fi
    ln "$s/seg/100" "$s/tree/notes"
    check status_counts_records 0 --out '^records=5$' --out '^transactions=5$' --out '^ranges=10$' \
        --out '^segments=1$' --out '^end=clean$' -- "$rvmctl" status "$s"
    check log_lists_every_range 0 --out '^SEQ ' --out '^5 +5 +trans ' --out '^# 5 records' \
        --out '# end: clean' -- "$rvmctl" log "$s"
    [ "$(grep -c ' ok ' "$T/out")" -eq 10 ] && pass log_prints_one_line_per_range \
        || fail log_prints_one_line_per_range "$(grep -c ' ok ' "$T/out") lines"
    grep -q "$s/seg/100\$" "$T/out" && pass log_names_segment_path_from_dictionary \
        || fail log_names_segment_path_from_dictionary "no path in: $(sed -n 2p "$T/out")"
    check log_filters_by_tid 0 --out '^3 +3 ' --out ', 1 listed' -- "$rvmctl" log --tid 3 "$s"
    grep -Eq '^[1245] ' "$T/out" && fail log_tid_filter_hides_others "other records listed" \
        || pass log_tid_filter_hides_others
    check log_rejects_bad_tid 2 --err "bad tid 'x3'" -- "$rvmctl" log --tid x3 "$s"
    check log_filters_by_segment_id 0 --out ', 5 listed' -- "$rvmctl" log --segment 1 "$s"
    check log_filters_by_segment_basename 0 --out ', 5 listed' -- "$rvmctl" log --segment 100 "$s"
    check log_filters_by_segment_dictionary_path 0 --out ', 5 listed' -- "$rvmctl" log --segment "$(realpath "$s/seg/100")" "$s"
    check log_filters_by_tree_name 0 --out ', 5 listed' -- "$rvmctl" log --segment notes "$s"
    check log_filters_by_file_path 0 --out ', 5 listed' -- "$rvmctl" log --segment "$s/tree/notes" "$s"
    check log_rejects_unknown_segment 1 --err "no segment 'nosuch'" -- "$rvmctl" log --segment nosuch "$s"
    check log_bytes_dumps_new_values 0 --out '^    00000000  03 00 00 00 00 00 00 00' \
        --out '\|dddddddddddddddd\|' -- "$rvmctl" log --bytes --tid 3 "$s"
    check log_without_store_is_usage_error 2 -- "$rvmctl" log
    check log_of_plain_dir 1 --err 'not an rvmfs store' -- "$rvmctl" log "$T/full"

    # ---- damaged logs: clear message, exit 1, store untouched ----
    cp -a "$s" "$T/good"
    # Record 2 starts at log position 128 (records of 16+8 bytes are 128 long).
    flip_byte "$s/rvm.log" $((2 * S + 128 + 100))
    sums "$s" >"$T/before"
    check log_reports_corrupt_record 1 --out '^2 +2 +trans +128 .* BAD' --out 'DAMAGED record at position 128' \
        --err 'damaged at log position 128' --err 'recover --force' -- "$rvmctl" log "$s"
    check status_reports_corrupt_log 1 --out '^end=corrupt$' --err 'damaged' -- "$rvmctl" status "$s"
    check recover_refuses_corrupt_log 1 --err 'nothing was changed' --err 'rerun with --force' -- "$rvmctl" recover "$s"
    sums "$s" | cmp -s - "$T/before" && pass corrupt_log_leaves_store_untouched \
        || fail corrupt_log_leaves_store_untouched "files changed"
    check recover_force_applies_records_before_damage 0 --out 'dropping the damaged record' \
        --out 'recovered 1 records' -- "$rvmctl" recover --force "$s"
    [ "$(u64_at0 "$s/seg/100")" = 1 ] && pass recover_force_stops_at_damage \
        || fail recover_force_stops_at_damage "counter is $(u64_at0 "$s/seg/100"), expected 1"

    rm -rf "$s" && cp -a "$T/good" "$s"
    flip_byte "$s/rvm.log" $((2 * S + 4 * 128 + 100))     # the last record
    check log_reports_torn_last_record 0 --out '^5 +5 .* BAD' --out 'torn record at position 512' \
        -- "$rvmctl" log "$s"
    check status_reports_torn_end 0 --out '^end=torn$' --out '^records=4$' -- "$rvmctl" status "$s"
    check recover_drops_torn_last_record 0 --out 'cut short by a crash' --out 'recovered 4 records' \
        -- "$rvmctl" recover "$s"
    [ "$(u64_at0 "$s/seg/100")" = 4 ] && pass recover_applies_records_before_torn_one \
        || fail recover_applies_records_before_torn_one "counter is $(u64_at0 "$s/seg/100")"

    cp "$T/good/rvm.log" "$T/garbage.log"
    dd if=/dev/urandom of="$T/garbage.log" bs=4096 count=128 conv=notrunc status=none
    check status_rejects_damaged_status_blocks 1 --err 'not an RVM log|status blocks are damaged' \
        -- "$rvmctl" status "$T/garbage.log"
    check recover_rejects_non_log 1 --err 'nothing was changed' -- "$rvmctl" recover --log "$T/garbage.log" "$T/good"
    head -c 100 /dev/zero >"$T/tiny.log"
    check log_rejects_tiny_file 1 --err 'not an RVM log' -- "$rvmctl" log "$T/tiny.log"

    # ---- recover ----
    rm -rf "$s" && cp -a "$T/good" "$s"
    check recover_without_store_is_usage_error 2 -- "$rvmctl" recover
    check recover_of_plain_dir 1 --err 'not an rvmfs store' -- "$rvmctl" recover "$T/full"
    exec 9<"$s/rvm.log"
    flock -x 9
    check recover_refuses_log_in_use 1 --err 'in use' -- "$rvmctl" recover "$s"
    exec 9<&-
    check recover_applies_every_record 0 --out '5 records' --out 'recovered 5 records' \
        --out 'the log is empty' -- "$rvmctl" recover "$s"
    if [ "$(u64_at0 "$s/seg/100")" = 5 ] && [ "$(byte_at4096 "$s/seg/100")" = f ]; then
        pass recover_puts_last_committed_values_in_segment
    else
        fail recover_puts_last_committed_values_in_segment \
            "counter $(u64_at0 "$s/seg/100") byte $(byte_at4096 "$s/seg/100")"
    fi
    check status_after_recover_is_empty 0 --out '^records=0$' --out '^end=clean$' -- "$rvmctl" status "$s"
    check recover_of_empty_log 0 --out 'recovered 0 records' -- "$rvmctl" recover "$s"

    # ---- a log that wrapped around (64 KiB log, 3000 transactions) ----
    "$rvmctl" init --log-size 64K "$T/w" >/dev/null
    if "$gen" "$T/w/rvm.log" "$T/w/seg/9" 3000 300; then
        check status_of_wrapped_log 0 --out '^end=clean$' -- "$rvmctl" status "$T/w"
        check log_of_wrapped_log 0 --out '# end: clean' -- "$rvmctl" log "$T/w"
        check recover_of_wrapped_log 0 -- "$rvmctl" recover "$T/w"
        [ "$(u64_at0 "$T/w/seg/9")" = 3000 ] && pass wrapped_log_recovers_last_transaction \
            || fail wrapped_log_recovers_last_transaction "counter $(u64_at0 "$T/w/seg/9")"
    else
        fail testgen_fills_small_log "rvmctl-testgen failed"
    fi

    # ---- on a terminal, recover draws a progress bar (script(1) gives it a pty) ----
    if command -v script >/dev/null; then
        "$rvmctl" init --log-size 64M "$T/tty" >/dev/null
        if "$gen" "$T/tty/rvm.log" "$T/tty/seg/3" 2000 20000; then
            script -qec "'$rvmctl' recover '$T/tty'" /dev/null >"$T/tty.out" 2>&1
            if grep -q 'recovering \[[#.]*\] *[0-9]*%' "$T/tty.out" &&
                grep -q 'recovered 2000 records' "$T/tty.out" &&
                [ "$(u64_at0 "$T/tty/seg/3")" = 2000 ]; then
                pass recover_on_terminal_shows_progress_bar
            else
                fail recover_on_terminal_shows_progress_bar "$(tr '\r' '\n' <"$T/tty.out" | tail -3)"
            fi
            "$rvmctl" recover "$T/tty" >"$T/out" 2>"$T/err"
            grep -q 'recovering' "$T/err" && fail recover_off_terminal_draws_no_bar "$(cat "$T/err")" \
                || pass recover_off_terminal_draws_no_bar
        else
            fail testgen_fills_tty_log "rvmctl-testgen failed"
        fi
    fi

    # ---- the mount commands off a mount: usage and "not rvmfs" ----
    echo data >"$T/plain"
    check begin_without_file_is_usage_error 2 -- "$rvmctl" begin
    check join_without_file_is_usage_error 2 -- "$rvmctl" join 5
    check join_rejects_bad_tid 2 --err "bad transaction id 'abc'" -- "$rvmctl" join abc "$T/plain"
    check commit_without_file_is_usage_error 2 -- "$rvmctl" commit
    check abort_without_file_is_usage_error 2 -- "$rvmctl" abort
    check stat_without_file_is_usage_error 2 -- "$rvmctl" stat
    check flush_without_path_is_usage_error 2 -- "$rvmctl" flush
    check begin_off_rvmfs_fails 1 --err 'not on an rvmfs mount' -- "$rvmctl" begin "$T/plain"
    check join_off_rvmfs_fails 1 --err 'not on an rvmfs mount' -- "$rvmctl" join 5 "$T/plain"
    check commit_off_rvmfs_fails 1 --err 'not on an rvmfs mount' -- "$rvmctl" commit "$T/plain"
    check abort_off_rvmfs_fails 1 --err 'not on an rvmfs mount' -- "$rvmctl" abort "$T/plain"
    check stat_off_rvmfs_fails 1 --err 'not on an rvmfs mount' -- "$rvmctl" stat "$T/plain"
    check flush_off_rvmfs_fails 1 --err 'not on an rvmfs mount' -- "$rvmctl" flush "$T/plain"
    check begin_of_missing_file_fails 1 --err 'cannot open' --err 'create it first' -- "$rvmctl" begin "$T/missing"
    if command -v getfattr >/dev/null; then
        [ -z "$(getfattr --absolute-names -d "$T/plain" 2>/dev/null)" ] \
            && pass begin_off_rvmfs_leaves_no_xattr || fail begin_off_rvmfs_leaves_no_xattr "xattr set"
    fi
}

skip() { echo "SKIP: $*"; exit 77; }

mount_tests() {
    local rvmfs=$third store="$T/store" a b tid i
    mnt="$T/mnt"

    [ -x "$rvmfs" ] || skip "the rvmfs daemon ($rvmfs) is not built: mount/ is not" \
        "configured (it needs libfuse3-dev and liburcu-dev) or not written yet"
    [ -c /dev/fuse ] || skip "no /dev/fuse on this machine"
    command -v fusermount3 >/dev/null || skip "fusermount3 is not installed (Debian: fuse3)"
    mkdir -p "$mnt"
    "$rvmfs" "$store" "$mnt" -f >"$T/daemon.log" 2>&1 &
    daemon_pid=$!
    for i in $(seq 100); do
        "$rvmctl" status "$mnt" >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! "$rvmctl" status "$mnt" >/dev/null 2>&1; then
        fail daemon_mounts_store "no mount after 10 s; daemon log: $(tail -3 "$T/daemon.log")"
        return
    fi
    a="$mnt/a" b="$mnt/b"
    printf hello >"$a" && printf world >"$b" && printf c >"$mnt/c"

    check status_of_mount 0 --out '^mount=' --out '=' -- "$rvmctl" status "$mnt"
    check stat_of_file 0 --out '=' -- "$rvmctl" stat "$a"
    check stat_of_two_files 0 --out "^file=$a\$" --out "^file=$b\$" -- "$rvmctl" stat "$a" "$b"
    check flush_of_mount 0 -- "$rvmctl" flush "$mnt"

    check begin_prints_tid 0 --out '^[0-9]+$' -- "$rvmctl" begin "$a" "$b"
    tid=$(cat "$T/out")
    check begin_of_busy_file_fails 1 --err 'already in a transaction' -- "$rvmctl" begin "$a"
    printf HELLO | dd of="$a" conv=notrunc status=none
    printf WORLD | dd of="$b" conv=notrunc status=none
    check commit_commits_transaction_once 0 --out "^committed $tid\$" -- "$rvmctl" commit "$a" "$b"
    [ "$(grep -c committed "$T/out")" -eq 1 ] && pass commit_of_two_members_commits_once \
        || fail commit_of_two_members_commits_once "$(cat "$T/out")"
    [ "$(cat "$a")$(cat "$b")" = HELLOWORLD ] && pass commit_keeps_new_bytes \
        || fail commit_keeps_new_bytes "read $(cat "$a")$(cat "$b")"
    check commit_of_file_in_no_transaction 1 --err 'in no transaction' -- "$rvmctl" commit "$a"

    check begin_for_abort 0 --out '^[0-9]+$' -- "$rvmctl" begin "$a"
    tid=$(cat "$T/out")
    printf XXXXXXXX | dd of="$a" conv=notrunc status=none
    check abort_aborts_transaction 0 --out "^aborted $tid\$" -- "$rvmctl" abort "$a"
    [ "$(cat "$a")" = HELLO ] && pass abort_restores_bytes_and_size \
        || fail abort_restores_bytes_and_size "read $(cat "$a")"

    check begin_for_join 0 -- "$rvmctl" begin "$a"
    tid=$(cat "$T/out")
    check join_adds_file 0 -- "$rvmctl" join "$tid" "$b"
    check join_of_unknown_tid 1 --err 'no active transaction' -- "$rvmctl" join 999999999 "$mnt/c"
    check commit_no_flush 0 --out "^committed $tid\$" -- "$rvmctl" commit --no-flush "$b"

    check begin_no_restore 0 -- "$rvmctl" begin --no-restore "$a"
    check abort_of_no_restore_refused 1 --err 'commit it|refused' -- "$rvmctl" abort "$a"
    check commit_of_no_restore 0 --out '^committed' -- "$rvmctl" commit "$a"

    check recover_refuses_mounted_store 1 --err 'in use' -- "$rvmctl" recover "$store"

    fusermount3 -u "$mnt" && wait "$daemon_pid"
    daemon_pid=
    check status_of_store_after_unmount 0 --out '^end=clean$' -- "$rvmctl" status "$store"
    check log_of_store_after_unmount 0 -- "$rvmctl" log "$store"
}

# Any man page: groff, mandoc and man render it without a warning.
manpage_tests() {
    local page=$third
    command -v groff >/dev/null || skip "groff is not installed (Debian: groff)"
    check man_page_has_no_groff_warnings 0 -- groff -ww -man -z "$page"
    [ -s "$T/err" ] && fail man_page_is_warning_free "$(head -3 "$T/err")" \
        || pass man_page_is_warning_free
    if command -v mandoc >/dev/null; then
        check man_page_passes_mandoc_lint 0 -- mandoc -T lint -W warning "$page"
    fi
    if command -v man >/dev/null; then
        MANWIDTH=80 run man --warnings -l "$page"
        [ "$rc" -eq 0 ] && [ ! -s "$T/err" ] && pass man_renders_without_warnings \
            || fail man_renders_without_warnings "exit $rc: $(head -3 "$T/err")"
    fi
}

man_tests() {
    local page=$third
    manpage_tests
    # Every command of --help is in the man page.
    for c in init status log recover begin join commit abort stat flush; do
        grep -q "^\.B rvmctl $c\$" "$page" && pass "man_documents_$c" \
            || fail "man_documents_$c" "no synopsis line"
    done
}

readme_tests() {
    local readme=$rvmctl tour=$third n=0 line
    # The commands are the single-quoted arguments of `step`, whole
    # lines of them; README must show each line as it is.
    while IFS= read -r line; do
        n=$((n + 1))
        grep -qxF -- "$line" "$readme" && pass "readme_shows_tour_line_$n" \
            || fail "readme_shows_tour_line_$n" "README.md lacks: $line"
    done < <(python3 - "$tour" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
for cmd in re.findall(r"^step '(.*?)'$", src, re.S | re.M):
    for line in cmd.split("\n"):
        print(line)
PY
)
    [ "$n" -gt 10 ] && pass tour_has_steps || fail tour_has_steps "only $n lines found"
    # And the other way: every command of the README's tour block is one
    # of the script's (the first line stands for the script's arguments),
    # and every librvm call of its C blocks is one that docs/examples makes.
    local out
    out=$(python3 - "$readme" "$tour" "$(dirname "$readme")/docs/examples" <<'PY'
import glob, re, sys
readme, tour, exdir = sys.argv[1:4]
text = open(readme).read()
steps = set()
for cmd in re.findall(r"^step '(.*?)'$", open(tour).read(), re.S | re.M):
    steps.update(cmd.split("\n"))
sect = text.split("## A 60-second tour", 1)[1]
block = re.search(r"```sh\n(.*?)```", sect, re.S).group(1).split("\n")
cmds = [l for l in block if l.strip() and not l.startswith("#")]
for l in cmds[1:]:
    if l not in steps:
        print("README tour line not in docs/tour.sh: " + l)
examples = " ".join(re.sub(r"\s+", " ", open(f).read())
                    for f in glob.glob(exdir + "/*.c"))
for blk in re.findall(r"```c\n(.*?)```", text, re.S):
    for call in re.findall(r"\brvm_\w+\([^;]*?\)(?=;)", blk):
        if re.sub(r"\s+", " ", call) not in examples:
            print("README C call not in docs/examples: " + call)
PY
)
    [ -z "$out" ] && pass readme_tour_and_c_lines_come_from_the_examples \
        || fail readme_tour_and_c_lines_come_from_the_examples "$out"
}

tour_tests() {
    local rvmfs=$third tour=${4:?tour.sh}
    [ -x "$rvmfs" ] || skip "the rvmfs daemon ($rvmfs) is not built"
    [ -c /dev/fuse ] || skip "no /dev/fuse on this machine"
    command -v fusermount3 >/dev/null || skip "fusermount3 is not installed (Debian: fuse3)"
    mnt="$T/mnt"
    PATH="$(dirname "$rvmctl"):$(dirname "$rvmfs"):$PATH" \
        run bash "$tour" "$T/store" "$mnt"
    if [ "$rc" -eq 0 ] && grep -qx 'balance=55' "$T/out" && grep -qx 'end=clean' "$T/out"; then
        pass tour_runs_and_recovers_after_crash
    else
        fail tour_runs_and_recovers_after_crash "exit $rc"
        tail -n 20 "$T/out" | sed 's/^/    stdout: /'
        tail -n 5 "$T/err" | sed 's/^/    stderr: /'
    fi
}

case $mode in
readme) readme_tests ;;
tour) tour_tests "$@" ;;
store) store_tests ;;
mount) mount_tests ;;
man) man_tests ;;
manpage) manpage_tests ;;
*) echo "usage: test_rvmctl.sh store|mount RVMCTL ARG" >&2; exit 2 ;;
esac
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
