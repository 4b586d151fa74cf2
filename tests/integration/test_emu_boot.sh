# test_emu_boot: vmd's software emulator boots Debian's cloud kernel with a busybox initramfs; the guest
# computes values (shell arithmetic, a 20000-iteration loop, SHA-256 of a 4.5 MiB file it generates)
# that must equal the host's own computation (python3), and vmctl exits 0 once the guest powers off.
# VMM=qemu runs the same guest under qemu-system-x86_64 (TCG) instead, to check the test itself.
# timeout: 900
# duration: 18
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
command -v python3 > /dev/null || fail "python3 is needed to compute the expected values"
limit=${EMU_BOOT_TIMEOUT:-600}
initrd=$TEST_TMP/compute.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/compute.sh || fail "mkinitramfs"

python3 tests/guest/compute_expected.py > "$TEST_TMP/expected" || fail "computing the expected values"

log=$TEST_TMP/console.log
start=$(date +%s.%N)
rc=0
if [ "${VMM:-vmctl}" = qemu ]; then
    timeout "$limit" qemu-system-x86_64 -accel tcg -M pc -m 256 -nographic -no-reboot -nic none \
        -kernel "$GUEST/vmlinuz" -initrd "$initrd" -append "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 || rc=$?
else
    timeout "$limit" "$VMCTL" run --accel emu --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
        --cmdline "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 || rc=$?
fi
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
tr -d '\r' < "$log" > "$log.txt"
echo "guest finished in ${secs}s (exit $rc); userspace at $(marker "$log" "GUEST: userspace at") (guest clock)"
[ $rc -ne 124 ] || { tail -n 40 "$log.txt"; fail "the guest did not power off within ${limit}s"; }
expect_lines "$TEST_TMP/expected" "$log.txt"
expect_in "$log.txt" '^VMD-INIT: test exit 0$' "the guest test script succeeded"
[ $rc -eq 0 ] || fail "vmctl exited $rc after the guest powered off (expected 0)"
ok "vmctl exit 0 after guest poweroff"
