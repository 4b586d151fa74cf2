#!/bin/bash
# make test's runner: unit suites under ASan/UBSan, the integration tests, then a short run of
# every fuzz target.
set -u
cd "$(dirname "$0")/.."
rc=0
scripts/run-unit-tests.sh build/asan/tests || rc=1
if [ -x scripts/run-integration-tests.sh ]; then scripts/run-integration-tests.sh || rc=1; fi

# ---- fuzz step: every libFuzzer target (tests/fuzz/) briefly, FUZZ_SECONDS (default 10) each.
# Builds build/fuzz (clang) if needed; prints one line per target and "fuzz: N passed, N failed".
scripts/run-fuzz.sh "${FUZZ_SECONDS:-10}" || rc=1
exit $rc
