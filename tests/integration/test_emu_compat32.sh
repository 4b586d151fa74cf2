# test_emu_compat32: the emulator runs 32-bit code in compatibility mode under a 64-bit kernel. Debian's
# 64-bit cloud kernel boots with Debian's i386 static busybox (busybox-static:i386) as init and shell:
# the guest shows that its shell is a 32-bit ELF with its stack below 4 GiB, computes
# tests/guest/compute.sh's values (shell arithmetic, a loop, awk, SHA-256 of 4.5 MiB), which must equal
# the host's, and powers off; vmctl exits 0. Its system calls go through the 32-bit vDSO (SYSCALL on the
# emulated AMD CPU) and int 0x80, and return through SYSRET and IRET to compatibility mode.
# timeout: 600
# duration: 17
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
scripts/fetch-guest-assets.sh i386 || skip "busybox-static:i386 could not be fetched (offline?)"
command -v python3 > /dev/null || fail "python3 is needed to compute the expected values"
limit=${EMU_BOOT_TIMEOUT:-400}
initrd=$TEST_TMP/compat32.cpio.gz
scripts/mkinitramfs.sh "$initrd" --busybox "$GUEST/busybox-i386" --script tests/guest/compat32.sh \
    --add tests/guest/compute.sh:/compute.sh > /dev/null || fail "mkinitramfs"
{
    echo "GUEST32: elf class 1"
    echo "GUEST32: stack below-4G"
    echo "GUEST32: kernel x86_64"
    python3 tests/guest/compute_expected.py
} > "$TEST_TMP/expected" || fail "computing the expected values"

log=$TEST_TMP/console.log
rc=0
timeout "$limit" "$VMCTL" run --accel emu --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
    --cmdline "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
[ $rc -ne 124 ] || { tail -n 40 "$log.txt"; fail "the guest did not power off within ${limit}s"; }
grep -q "Attempted to kill init" "$log.txt" && { tail -n 40 "$log.txt"; fail "the 32-bit init died"; }
expect_lines "$TEST_TMP/expected" "$log.txt"
expect_in "$log.txt" '^VMD-INIT: test exit 0$' "the 32-bit guest script succeeded"
[ $rc -eq 0 ] || fail "vmctl exited $rc after the guest powered off (expected 0)"
ok "vmctl exit 0 after guest poweroff"
