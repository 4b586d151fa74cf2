# test_boot_protocol32: `--boot-protocol 32` enters Debian's 64-bit cloud kernel through its 32-bit
# entry (code32_start in flat 32-bit protected mode, paging off, boot_params in ESI) under the
# emulator; the kernel's startup_32 builds its page tables and switches to long mode itself. The
# guest reaches its shell (an x86_64 kernel) and powers off; vmctl exits 0. `--boot-protocol 64`
# for Debian's 32-bit kernel (when fetched) is refused with a message naming the reason, and a bad
# value is a usage error.
# timeout: 400
# duration: 8
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
initrd=$TEST_TMP/uname.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/uname.sh > /dev/null || fail "mkinitramfs"
limit=${EMU_BOOT_TIMEOUT:-300}
log=$TEST_TMP/console.log
rc=0
timeout "$limit" "$VMCTL" run -v --accel emu --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
    --cmdline "console=ttyS0 quiet" --boot-protocol 32 < /dev/null > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
[ $rc -ne 124 ] || { grep -v "debug:" "$log.txt" | tail -n 30; fail "the guest did not power off within ${limit}s"; }
expect_in "$log.txt" "boot: protocol [0-9.]+, 32-bit entry" "the kernel was entered at its 32-bit entry point"
expect_in "$log.txt" "^GUEST: shell up, kernel x86_64$" "the 64-bit kernel switched to long mode itself and ran the shell"
[ $rc -eq 0 ] || fail "vmctl exited $rc after the guest powered off (expected 0)"
ok "vmctl exit 0 after guest poweroff"

rc=0
"$VMCTL" run --accel emu --kernel "$GUEST/vmlinuz" --boot-protocol 16 > /dev/null 2> "$TEST_TMP/bad.err" || rc=$?
[ $rc -eq 2 ] && grep -q -- "--boot-protocol: '16' is not one of auto, 32, 64" "$TEST_TMP/bad.err" ||
    fail "--boot-protocol 16: exit $rc, $(cat "$TEST_TMP/bad.err")"
ok "--boot-protocol 16 is a usage error"
if [ -f "$GUEST/vmlinuz-686-pae" ]; then
    rc=0
    timeout 60 "$VMCTL" run --accel emu --kernel "$GUEST/vmlinuz-686-pae" --boot-protocol 64 < /dev/null > /dev/null \
        2> "$TEST_TMP/no64.err" || rc=$?
    [ $rc -eq 1 ] && grep -q "no 64-bit entry point" "$TEST_TMP/no64.err" ||
        fail "--boot-protocol 64 with a 32-bit kernel: exit $rc, $(cat "$TEST_TMP/no64.err")"
    ok "--boot-protocol 64 refuses a 32-bit kernel: $(grep -o "no 64-bit entry point.*" "$TEST_TMP/no64.err")"
fi
