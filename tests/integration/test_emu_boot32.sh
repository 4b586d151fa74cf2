# test_emu_boot32: the emulator boots Debian's 32-bit kernel (linux-image-686-pae: the 32-bit boot
# protocol, legacy protected mode, PAE paging with NX, interrupts through the 8-byte-gate IDT) with
# Debian's i386 static busybox as init and shell. The guest reports an i686 kernel, computes
# tests/guest/compute.sh's values, which must equal the host's, and powers off; vmctl exits 0.
# timeout: 600
# duration: 59
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
scripts/fetch-guest-assets.sh i386 || skip "busybox-static:i386 / linux-image-686-pae could not be fetched (offline?)"
command -v python3 > /dev/null || fail "python3 is needed to compute the expected values"
limit=${EMU_BOOT_TIMEOUT:-500}
initrd=$TEST_TMP/boot32.cpio.gz
scripts/mkinitramfs.sh "$initrd" --busybox "$GUEST/busybox-i386" --script tests/guest/compat32.sh \
    --add tests/guest/compute.sh:/compute.sh > /dev/null || fail "mkinitramfs"
{
    echo "GUEST32: elf class 1"
    echo "GUEST32: stack below-4G"
    echo "GUEST32: kernel i686"
    python3 tests/guest/compute_expected.py
} > "$TEST_TMP/expected" || fail "computing the expected values"

log=$TEST_TMP/console.log
start=$(date +%s)
rc=0
timeout "$limit" "$VMCTL" run --accel emu --memory 256 --kernel "$GUEST/vmlinuz-686-pae" --initrd "$initrd" \
    --cmdline "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
echo "guest finished in $(( $(date +%s) - start ))s (exit $rc)"
[ $rc -ne 124 ] || { tail -n 40 "$log.txt"; fail "the guest did not power off within ${limit}s"; }
grep -q "Kernel panic" "$log.txt" && { tail -n 40 "$log.txt"; fail "the 32-bit kernel panicked"; }
expect_lines "$TEST_TMP/expected" "$log.txt"
expect_in "$log.txt" '^VMD-INIT: test exit 0$' "the guest script succeeded under the 32-bit kernel"
[ $rc -eq 0 ] || fail "vmctl exited $rc after the guest powered off (expected 0)"
ok "vmctl exit 0 after guest poweroff"
