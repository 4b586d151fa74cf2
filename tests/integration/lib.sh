# lib.sh: helpers sourced by the integration tests (tests/integration/test_*.sh).
# A test exits 0 (pass), 77 (skip; the last line printed is the reason) or anything else (fail).
set -u
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
cd "$ROOT"
VMCTL=${VMCTL:-$ROOT/build/bin/vmctl}
GUEST=$ROOT/.cache/guest
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmd-itest.XXXXXX")
trap 'rm -rf "$TEST_TMP"' EXIT

skip() { echo "$*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

need_vmctl() { [ -x "$VMCTL" ] || fail "$VMCTL is not built (run make)"; }
need_guest_assets() { scripts/fetch-guest-assets.sh || fail "scripts/fetch-guest-assets.sh failed"; }

# expect_in FILE PATTERN WHAT: FILE has a line matching the extended regex PATTERN.
expect_in() {
    grep -Eq -- "$2" "$1" || { echo "--- $1:"; tail -n 40 "$1"; fail "$3: no line matching '$2'"; }
    ok "$3"
}
# marker FILE NAME: the value after "NAME " on the last line starting with it (guest output has \r\n).
marker() { tr -d '\r' < "$1" | sed -n "s/^$2 //p" | tail -1; }
