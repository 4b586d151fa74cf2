# test_kvm_nested: vmd's KVM backend boots a stock Linux guest. Where the host has no usable hardware
# virtualization, scripts/nested-rig.sh provides /dev/kvm inside a QEMU TCG guest with nested SVM
# (DESIGN.md section 5); vmctl run --accel kvm boots Debian's cloud kernel there, the inner guest prints
# a value it computed and powers off, and vmctl must exit 0. The inner guest has 2 vCPUs and must see
# both online. A second inner guest runs `reboot -f` under vmctl run --no-reboot, which must exit 0.
# timeout: 900
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 17
. "$(dirname "$0")/lib.sh"
need_vmctl
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
need_guest_assets
log=$TEST_TMP/rig.log
start=$(date +%s.%N)
rc=0
scripts/mkinitramfs.sh "$TEST_TMP/reboot.cpio.gz" --script tests/guest/inner-reboot.sh || fail "mkinitramfs"
scripts/nested-rig.sh --timeout "${RIG_TIMEOUT:-300}" --hang-retries 1 --vmctl-args "--cpus 2" \
    --add "$TEST_TMP/reboot.cpio.gz:/rig/reboot.cpio.gz" --add tests/guest/rig-after-reboot.sh:/rig/after.sh \
    > "$log" 2>&1 || rc=$?
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
tr -d '\r' < "$log" > "$log.txt"
echo "rig finished in ${secs}s (exit $rc); inner userspace at $(marker "$log" "INNER: userspace at");" \
     "vmctl ran $(marker "$log" "RIG: vmctl seconds")s in the outer guest"
expect_in "$log.txt" '^VMD-INIT: insmod kvm_amd ok$' "the outer guest loaded kvm-amd"
expect_in "$log.txt" '^RIG: /dev/kvm ok' "the outer guest has /dev/kvm"
expect_in "$log.txt" '^INNER: RESULT 42$' "the inner guest computed 6*7 under vmctl --accel kvm"
expect_in "$log.txt" '^INNER: cpus 2 online 0-1$' "the inner guest runs on 2 vCPUs"
expect_in "$log.txt" '^RIG: vmctl exit 0$' "vmctl exited 0 after the inner guest powered off"
expect_in "$log.txt" '^INNER: rebooting$' "the second inner guest ran reboot -f"
grep -q '^INNER: still running after reboot -f$' "$log.txt" && fail "reboot -f did not reset the inner guest"
expect_in "$log.txt" '^RIG: reboot vmctl exit 0$' "vmctl --no-reboot exited 0 when the guest reset"
[ $rc -eq 0 ] || fail "the rig's QEMU exited $rc"
