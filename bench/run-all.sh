#!/bin/bash
# run-all (make bench): run every bench/*.sh script except this one, in name order; exit 1 if any failed.
set -u
cd "$(dirname "$0")/.."
rc=0
for b in bench/*.sh; do
    [ "$(basename "$b")" = run-all.sh ] && continue
    echo "== $b"
    bash "$b" || { echo "bench: $b failed"; rc=1; }
done
exit $rc
