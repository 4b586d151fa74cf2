#!/bin/bash
# run-integration-tests: run every tests/integration/test_*.sh (or the ones named on the command line)
# and print one line per test plus a summary line "integration: N passed, N failed, N skipped".
#
# A test exits 0 to pass, 77 to skip (its last line of output is the reason), anything else fails.
# Each test runs from the repository root with a time limit: INTEGRATION_TIMEOUT seconds (default 600),
# or the test's own "# timeout: N" header line. Full output goes to build/integration/<test>.log; the
# tail of a failing test's log is printed. Tests under tests/integration/pending/ are not run.
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
pass=0 fail=0 skip=0 failed=()
for t in "${tests[@]}"; do
    name=$(basename "$t" .sh)
    log=$logs/$name.log
    limit=$(sed -n 's/^# timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -1)
    limit=${limit:-${INTEGRATION_TIMEOUT:-600}}
    start=$(date +%s.%N)
    timeout -k 10 "$limit" bash "$t" > "$log" 2>&1 < /dev/null
    rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
        0) pass=$((pass + 1)); echo "PASS $name (${secs}s)" ;;
        77) skip=$((skip + 1)); echo "SKIP $name: $(grep -v '^[[:space:]]*$' "$log" | tail -1)" ;;
        *)
            fail=$((fail + 1)); failed+=("$name")
            [ $rc -eq 124 ] && why="timed out after ${limit}s" || why="exit $rc"
            echo "FAIL $name ($why, ${secs}s); last lines of $log:"
            tail -n 25 "$log" | sed 's/^/    /'
            ;;
    esac
done
[ $fail -gt 0 ] && echo "failed integration tests: ${failed[*]}"
echo "integration: $pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
