#!/bin/bash
# run-integration-tests: run every tests/integration/test_*.sh (or the ones named on the command line)
# and print one line per test plus a summary line "integration: N passed, N failed, N skipped".
#
# A test exits 0 to pass, 77 to skip (its last line of output is the reason), anything else fails.
# Each test runs from the repository root with a time limit: INTEGRATION_TIMEOUT seconds (default 600),
# or the test's own "# timeout: N" header line. Full output goes to build/integration/<test>.log; the
# tail of a failing test's log is printed. Tests under tests/integration/pending/ are not run.
#
# Up to INTEGRATION_JOBS tests (default: the number of CPUs) run at once; each result line is printed
# when that test ends. A test with a "# serial: REASON" header line (a fixed resource it cannot share,
# or timing that needs the machine to itself) runs alone: the serial tests first, one after another,
# then the others. Within each group the longest go first, by the "# duration: SECONDS" header (the
# test's typical time in CI; a test without one counts as long), so that the jobs end together.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
logs=build/integration
mkdir -p "$logs"
if [ $# -gt 0 ]; then
    tests=()
    for t in "$@"; do
        [ -f "$t" ] || t=tests/integration/$(basename "$t" .sh).sh
        tests+=("$t")
    done
else
    tests=(tests/integration/test_*.sh)
    [ -e "${tests[0]}" ] || tests=()
fi
jobs=${INTEGRATION_JOBS:-$(nproc 2>/dev/null || echo 1)}
case "$jobs" in '' | *[!0-9]* | 0) echo "run-integration-tests: INTEGRATION_JOBS must be a positive number, not '$jobs'" >&2; exit 2 ;; esac

# The run order, one line per test: "S|P<tab>duration<tab>timeout<tab>test" (S: serial), serial first,
# then each group longest first (a test named twice runs twice, as before).
order=$(for t in "${tests[@]}"; do
    awk -v t="$t" -v deflimit="${INTEGRATION_TIMEOUT:-600}" '
        /^# serial: *[^ ]/ && !g { g = "S" }
        /^# duration: *[0-9]/ && !d { sub(/^# duration: */, ""); d = $0 + 0 }
        /^# timeout: *[0-9]/ && !l { sub(/^# timeout: */, ""); l = $0 + 0 }
        END { printf "%s\t%d\t%d\t%s\n", g ? g : "P", d ? d : 100000, l ? l : deflimit, t }' "$t"
done | sort -t $'\t' -k1,1r -k2,2nr -s)

pass=0 fail=0 skip=0 failed=()
declare -A running=() # pid -> test path, for the jobs under way
out=$(mktemp -d "${TMPDIR:-/tmp}/vmd-itest-runner.XXXXXX")

# run_one TEST LIMIT: in the background, the test under its time limit; its exit code and seconds go
# to $out/<pid>.
run_one() {
    local t=$1 limit=$2 name
    name=$(basename "$t" .sh)
    (
        start=$(date +%s.%N)
        timeout -k 10 "$limit" bash "$t" > "$logs/$name.log" 2>&1 < /dev/null &
        tpid=$!
        echo "$tpid" > "$out/$BASHPID.pgid"
        wait $tpid
        rc=$?
        # timeout ran the test in a process group of its own (pgid = its pid): whatever the test
        # left running there (a VM a failing test did not stop) ends now, not under the next tests
        kill -KILL -- -"$tpid" 2>/dev/null
        echo "$rc $limit $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')" > "$out/$BASHPID"
    ) &
    running[$!]=$t
}

# report PID: the result line of the test that job PID ran.
report() {
    local t=${running[$1]} name rc limit secs log why
    unset "running[$1]"
    name=$(basename "$t" .sh) log=$logs/$(basename "$t" .sh).log
    read -r rc limit secs < "$out/$1" 2>/dev/null || { rc=1 limit=? secs=?; }
    case $rc in
        0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
        77) skip=$((skip + 1)); echo "SKIP $name: $(grep -v '^[[:space:]]*$' "$log" | tail -1)" ;;
        *)
            fail=$((fail + 1)); failed+=("$name")
            [ "$rc" -eq 124 ] && why="timed out after ${limit}s" || why="exit $rc"
            echo "FAIL $name ($why, ${secs}s); last lines of $log:"
            tail -n 25 "$log" | sed 's/^/    /'
            ;;
    esac
}

# wait_one: wait for any job to end and report it.
wait_one() {
    local pid
    wait -n -p pid "${!running[@]}"
    [ -n "${pid:-}" ] && [ -n "${running[$pid]+set}" ] && report "$pid"
}

# On INT/TERM: end every running test's process group (timeout's and the test's), then stop.
stop_all() {
    local p g
    for p in "${!running[@]}"; do
        g=$(cat "$out/$p.pgid" 2>/dev/null) && [ -n "$g" ] && kill -TERM -- -"$g" 2>/dev/null
    done
    wait
    rm -rf "$out"
    exit 130
}
trap stop_all INT TERM

while IFS=$'\t' read -r group _ limit t; do
    [ -n "$t" ] || continue
    if [ "$group" = S ]; then
        while [ ${#running[@]} -gt 0 ]; do wait_one; done
        run_one "$t" "$limit"
        wait_one
    else
        while [ ${#running[@]} -ge "$jobs" ]; do wait_one; done
        run_one "$t" "$limit"
    fi
done <<< "$order"
while [ ${#running[@]} -gt 0 ]; do wait_one; done
rm -rf "$out"

[ $fail -gt 0 ] && echo "failed integration tests: ${failed[*]}"
echo "integration: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
