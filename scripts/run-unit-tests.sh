#!/bin/bash
# Run every cmocka unit-test binary in DIR. A suite passes when it exits 0 with at least one
# test run, is skipped when every one of its tests skipped (e.g. no /dev/kvm), and fails
# otherwise. Prints each skipped test with its one-line reason, then the summary line
# "unit suites: N passed, M skipped, F failed". A skip never hides a failure: a suite with a
# failing test fails whatever else it skipped.
set -u
dir=${1:-build/asan/tests}
pass=0 fail=0 skip=0 failed=() skipped_suites=() skipped_tests=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
out=$(mktemp -d "${TMPDIR:-/tmp}/vmd-unit.XXXXXX")
trap 'rm -rf "$out"' EXIT
# UNIT_JOBS suites (default: the number of CPUs) run at once; each suite's output is printed whole
# when it ends.
jobs=${UNIT_JOBS:-$(nproc 2>/dev/null || echo 1)}
case "$jobs" in '' | *[!0-9]* | 0) echo "run-unit-tests: UNIT_JOBS must be a positive number, not '$jobs'" >&2; exit 2 ;; esac
declare -A running=() # pid -> suite
finish() { # finish PID: print the suite's output and count it
    local suite=${running[$1]} rc log=$out/${running[$1]}.log
    unset "running[$1]"
    rc=$(cat "$out/$suite.rc" 2>/dev/null || echo 1)
    cat "$log"
    # Each skipped test and its reason: the line before cmocka's "[  SKIPPED ] name", written
    # by the test as "skipped: why" (print_message) or by cmocka as "[  SKIP    ] why".
    while IFS=$'\t' read -r name why; do
        skipped_tests+=("$suite/$name: $why")
    done < <(awk '
        /^\[  SKIPPED \] [0-9]+ test\(s\)/ { listing = 1; next }
        /^\[  SKIPPED \] / && !listing {
            why = prev; sub(/^(skipped: |skip: |\[  SKIP    \] )/, "", why)
            if (why ~ /^\[ RUN/ || why == "") why = "(no reason given)"
            print $4 "\t" why
        }
        NF { prev = $0 }' "$log")
    ran=$(sed -n 's/^\[==========\] \([0-9]*\) test(s) run\..*/\1/p' "$log" | tail -1)
    passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\..*/\1/p' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        fail=$((fail + 1)); failed+=("$suite")
    elif [ -n "$ran" ] && [ "$ran" -gt 0 ] && [ "${passed:-0}" -eq 0 ]; then
        skip=$((skip + 1)); skipped_suites+=("$suite")
    else
        pass=$((pass + 1))
    fi
}
wait_one() {
    local pid
    wait -n -p pid "${!running[@]}"
    [ -n "${pid:-}" ] && [ -n "${running[$pid]+set}" ] && finish "$pid"
}
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    suite=$(basename "$t")
    while [ ${#running[@]} -ge "$jobs" ]; do wait_one; done
    ( "$t" > "$out/$suite.log" 2>&1; echo $? > "$out/$suite.rc" ) &
    running[$!]=$suite
done
while [ ${#running[@]} -gt 0 ]; do wait_one; done
if [ ${#skipped_tests[@]} -gt 0 ]; then
    echo "skipped unit tests (${#skipped_tests[@]}):"
    printf '  %s\n' "${skipped_tests[@]}"
fi
[ ${#skipped_suites[@]} -gt 0 ] && echo "skipped unit suites: ${skipped_suites[*]}"
[ ${#failed[@]} -gt 0 ] && echo "failed unit suites: ${failed[*]}"
echo "unit suites: $pass passed, $skip skipped, $fail failed"
[ "$fail" -eq 0 ]
