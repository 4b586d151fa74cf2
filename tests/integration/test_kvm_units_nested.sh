# test_kvm_units_nested: the unit suites that need /dev/kvm (test_kvm: the kvm backend on small
# guests, in-kernel irqchip snapshots; test_kvm_irqchip: KVM's interrupt controllers converted
# to and from the backend-neutral state, emu snapshots loaded into KVM) run for real on hosts
# without KVM: inside the nested rig (DESIGN.md section 5), as they are, built with ASan/UBSan.
# Every test of both suites must pass there; a host with its own /dev/kvm runs them directly
# (scripts/run-unit-tests.sh), so this test skips.
# timeout: 900
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 13
. "$(dirname "$0")/lib.sh"
[ -c /dev/kvm ] && skip "this host has /dev/kvm: the unit run covers test_kvm and test_kvm_irqchip"
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
need_guest_assets
units=(test_kvm test_kvm_irqchip)
specs=()
for u in "${units[@]}"; do
    [ -x "build/asan/tests/$u" ] || fail "build/asan/tests/$u is not built (make BUILD=asan tests)"
    specs+=("build/asan/tests/$u:/rig/t/$u")
done
adds=()
while IFS= read -r a; do adds+=(--add "$a"); done < <(scripts/rig/elf-with-libs.sh "${specs[@]}")
log=$TEST_TMP/rig.log
start=$(date +%s)
rc=0
scripts/nested-rig.sh --outer-script tests/guest/rig-outer-units.sh --timeout "${RIG_TIMEOUT:-600}" --hang-retries 1 \
    "${adds[@]}" > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
echo "rig finished in $(( $(date +%s) - start ))s (exit $rc)"
grep -E '^\[ +(RUN|OK|FAILED|PASSED|SKIPPED|ERROR) ' "$log.txt" | grep -v 'RUN' | sed 's/^/    /'
expect_in "$log.txt" '^RIG: /dev/kvm ok' "the outer guest has /dev/kvm"
grep -q '^\[  SKIPPED \]' "$log.txt" && fail "a KVM unit test skipped inside the rig"
for u in "${units[@]}"; do
    expect_in "$log.txt" "^RIG: unit $u exit 0$" "$u passed under the rig's KVM"
done
[ $rc -eq 0 ] || fail "the rig's QEMU exited $rc"
