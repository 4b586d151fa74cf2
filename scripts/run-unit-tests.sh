#!/bin/bash
# Run every cmocka unit-test binary in DIR; print one summary line "unit: N passed, N failed".
set -u
dir=${1:-build/asan/tests}
pass=0 fail=0 failed=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for t in "$dir"/test_*; do
    [ -x "$t" ] || continue
    if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$(basename "$t")"); fi
done
[ ${#failed[@]} -gt 0 ] && echo "failed unit suites: ${failed[*]}"
echo "unit suites: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
