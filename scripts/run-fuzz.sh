#!/bin/bash
# run-fuzz: build and run the emulator decoder fuzzer (tests/fuzz/fuzz_decode.c) for N seconds.
# usage: scripts/run-fuzz.sh [SECONDS]   (default 60). Corpus in .cache/fuzz/decode, crashes in
# .cache/fuzz/crashes (both git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
make -s BUILD=fuzz fuzzers -j2
mkdir -p .cache/fuzz/decode .cache/fuzz/crashes
exec build/fuzz/fuzz_decode -max_total_time="$secs" -max_len=64 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix=.cache/fuzz/crashes/ .cache/fuzz/decode
