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
# expect_lines EXPECTED LOG: every line of EXPECTED appears as a whole line in LOG (a guest's
# computed values against the host's); on a miss, shows the guest's line with the same prefix.
expect_lines() {
    local want
    while IFS= read -r want; do
        grep -qxF -- "$want" "$2" ||
            { tail -n 40 "$2"; fail "expected '$want', guest printed '$(grep -F "${want% *}" "$2" | tail -1)'"; }
        ok "$want"
    done < "$1"
}
# marker FILE NAME: the value after "NAME " on the last line starting with it (guest output has \r\n).
marker() { tr -d '\r' < "$1" | sed -n "s/^$2 //p" | tail -1; }

# The snapshot tests' counting guest (tests/guest/snapshot_counter.sh) prints
# "VMD-GUEST: boot <boot id> count N" twice a second.
# count_at_snapshot LOG: "<boot id> <count>" of the last count LOG shows before "snapshot saved to".
count_at_snapshot() {
    tr -d '\r' < "$1" | sed -n '/snapshot saved to/q;p' | sed -n 's/^VMD-GUEST: boot \(.*\) count \([0-9]*\)$/\1 \2/p' | tail -1
}
# expect_carries_on LOG BOOT LAST MORE WHERE: a restored guest in LOG kept boot BOOT (no fresh
# boot), its first count continues from LAST (within 2) and it counted at least MORE further.
expect_carries_on() {
    local log=$1 boot=$2 last=$3 more=$4 where=$5 counts first final
    grep -q '^VMD-GUEST: counter ready' "$log" && fail "$where: the guest booted afresh instead of carrying on"
    counts=$(sed -n "s/^VMD-GUEST: boot $boot count \([0-9]*\)\$/\1/p" "$log")
    first=$(echo "$counts" | head -1) final=$(echo "$counts" | tail -1)
    [ -n "$first" ] || { tail -30 "$log"; fail "$where: the restored guest printed no count"; }
    [ "$first" -ge "$last" ] && [ "$first" -le $((last + 2)) ] ||
        fail "$where: the restored guest's first count $first does not continue from $last"
    [ "$final" -ge $((first + more)) ] || { tail -30 "$log"; fail "$where: the restored guest stopped counting at $final"; }
    ok "$where: the guest (same boot id) counted on from $first to $final (snapshot at $last)"
}
