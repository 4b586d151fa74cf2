#!/bin/bash
# make test's runner: unit suites under ASan/UBSan, then the integration tests.
set -u
cd "$(dirname "$0")/.."
rc=0
scripts/run-unit-tests.sh build/asan/tests || rc=1
if [ -x scripts/run-integration-tests.sh ]; then scripts/run-integration-tests.sh || rc=1; fi
exit $rc
