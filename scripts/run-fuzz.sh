#!/bin/bash
# run-fuzz: build the libFuzzer targets (tests/fuzz/fuzz_*.c) and run each for SECONDS.
# usage: scripts/run-fuzz.sh [SECONDS] [TARGET...]   (default 60 s each, every target;
#        TARGET is e.g. "jsonrpc" or "fuzz_jsonrpc")
# Each target keeps a corpus in .cache/fuzz/<target>, seeded from tests/fuzz/seeds/<target>/
# (and, for targets that build valid seeds at runtime — snapshot, bzimage, multiboot, virtqueue, qcow2 — from
# FUZZ_SEED_DIR); crash inputs go to
# .cache/fuzz/crashes/, full logs to .cache/fuzz/logs/. Prints one line per target and exits
# non-zero if any target crashed (or could not be built/run). FUZZ_JOBS targets run at once (default:
# the number of CPUs).
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
case "$secs" in '' | *[!0-9]*) echo "run-fuzz: SECONDS must be a number, not '$secs'" >&2; exit 2 ;; esac

if ! make -s BUILD=fuzz fuzzers -j"$(nproc 2>/dev/null || echo 2)"; then
    echo "run-fuzz: building the fuzz targets failed" >&2
    exit 1
fi

targets=()
if [ $# -gt 0 ]; then
    for t in "$@"; do targets+=("${t#fuzz_}"); done
else
    for f in tests/fuzz/fuzz_*.c; do t=$(basename "$f" .c); targets+=("${t#fuzz_}"); done
fi

mkdir -p .cache/fuzz/crashes .cache/fuzz/logs
# fuzz_one TARGET: run it; prints its one result line and exits 0 (ok) or 1.
fuzz_one() {
    local t=$1 bin corpus log extra=() start rc took execs art why
    bin=build/fuzz/fuzz_$t
    corpus=.cache/fuzz/$t
    log=.cache/fuzz/logs/$t.log
    if [ ! -x "$bin" ]; then
        echo "fuzz_$t: FAIL (no such target: $bin)"
        return 1
    fi
    mkdir -p "$corpus"
    [ -d "tests/fuzz/seeds/$t" ] && cp -n tests/fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null
    [ "$t" = decode ] && extra+=(-max_len=64)
    [ "$t" = qcow2 ] && extra+=(-max_len=16384) # room for images with a few tables beyond the seeds
    start=$(date +%s)
    FUZZ_SEED_DIR=$corpus "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${extra[@]}" -artifact_prefix=.cache/fuzz/crashes/"$t"- "$corpus" >"$log" 2>&1
    rc=$?
    took=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        echo "fuzz_$t: ok, ${execs:-?} executions in ${took}s, corpus $(ls "$corpus" | wc -l) inputs"
        return 0
    fi
    art=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //')
    why=$(grep -m1 -E "^==[0-9]+==ERROR|runtime error|^SUMMARY|deadly signal|timeout" "$log" | cut -c1-160)
    echo "fuzz_$t: CRASH after ${execs:-?} executions in ${took}s: ${why:-exit $rc} (input: ${art:-none}, log: $log)"
    return 1
}

# FUZZ_JOBS targets (default: the number of CPUs) run at once, each on one core for SECONDS;
# each target's line is printed when it ends.
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
case "$jobs" in '' | *[!0-9]* | 0) echo "run-fuzz: FUZZ_JOBS must be a positive number, not '$jobs'" >&2; exit 2 ;; esac
passed=0 failed=0 running=()
reap() { # wait for one target to end and count it
    local pid rc
    wait -n -p pid "${running[@]}"
    rc=$?
    local left=() p
    for p in "${running[@]}"; do [ "$p" = "$pid" ] || left+=("$p"); done
    running=("${left[@]}")
    if [ $rc -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
}
for t in "${targets[@]}"; do
    while [ ${#running[@]} -ge "$jobs" ]; do reap; done
    fuzz_one "$t" &
    running+=($!)
done
while [ ${#running[@]} -gt 0 ]; do reap; done
echo "fuzz: $passed passed, $failed failed"
[ $failed -eq 0 ]
