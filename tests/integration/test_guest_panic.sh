# test_guest_panic: never a silent hang after a guest kernel panic (#15 item 4). The guest (Debian's
# cloud kernel under the emulator) loads pvpanic + pvpanic-mmio, which bind to the ACPI device vmd
# describes (_HID QEMU0001, port 0x505), and crashes its kernel (tests/guest/panic.sh: sysrq c).
# - no panic= on the command line: `vmctl run` logs "guest kernel panicked" and exits 70 in bounded time;
# - panic=1: vmd lets the guest reboot itself; it boots a second time (its init starts again), and
#   the test stops it then;
# - under vmd: the VM ends crashed with reason "guest kernel panicked".
# timeout: 600
# duration: 80
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_guest_assets
mods=$GUEST/modules-cloud
[ -f "$mods/kernel/drivers/misc/pvpanic/pvpanic-mmio.ko" ] || skip "no pvpanic-mmio.ko in $mods (kernel package without it)"
initrd=$TEST_TMP/panic.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/panic.sh --modules-dir "$mods" --modules "pvpanic-mmio" > /dev/null ||
    fail "mkinitramfs"
limit=${EMU_BOOT_TIMEOUT:-240}

# 1. panic without panic=N: the VM stops, vmctl exits 70
log=$TEST_TMP/stop.log
start=$(date +%s)
rc=0
timeout "$limit" "$VMCTL" run --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
    --cmdline "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
[ $rc -ne 124 ] || { tail -n 30 "$log.txt"; fail "vmctl run did not return within ${limit}s after the panic"; }
expect_in "$log.txt" "^PANIC-GUEST: pvpanic-mmio bound to QEMU0001:00" "Linux's pvpanic-mmio bound to vmd's ACPI device"
expect_in "$log.txt" "Kernel panic - not syncing" "the guest kernel panicked"
expect_in "$log.txt" "guest kernel panicked" "vmctl logged the panic"
grep -q "still alive after the crash" "$log.txt" && fail "the guest survived its crash"
[ $rc -eq 70 ] || { tail -n 10 "$log.txt"; fail "vmctl run exited $rc after the panic (expected 70)"; }
ok "without panic=N: vmctl run exited 70 $(( $(date +%s) - start ))s after start"

# 2. panic=1: the guest reboots itself; stop it once it has started a second time
log=$TEST_TMP/reboot.log
"$VMCTL" run --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
    --cmdline "console=ttyS0 quiet panic=1" < /dev/null > "$log" 2>&1 &
pid=$!
for _ in $(seq $((limit * 2))); do
    [ "$(tr -d '\r' < "$log" | grep -c '^VMD-INIT: start')" -ge 2 ] && break
    kill -0 $pid 2> /dev/null || break
    sleep 1
done
kill -TERM $pid 2> /dev/null
rc=0
wait $pid || rc=$?
tr -d '\r' < "$log" > "$log.txt"
[ "$(grep -c '^VMD-INIT: start' "$log.txt")" -ge 2 ] ||
    { tail -n 30 "$log.txt"; fail "with panic=1 the guest did not boot a second time (vmctl exit $rc)"; }
expect_in "$log.txt" "panic=N: it reboots itself" "vmctl logged the panic and left the reboot to the guest"
expect_in "$log.txt" "guest reset: rebooting" "the guest's reset rebuilt the machine"
[ $rc -eq 143 ] || fail "vmctl run exited $rc on SIGTERM (expected 143)"
ok "with panic=1: the guest panicked, reset itself and booted again"

# 3. under vmd: crashed, "guest kernel panicked"
start_vmd
"$VMCTL" create p1 --kernel "$GUEST/vmlinuz" --initrd "$initrd" --accel emu --memory 128 \
    --cmdline "console=ttyS0 quiet" > /dev/null || fail "vmctl create"
"$VMCTL" start p1 > /dev/null || fail "vmctl start p1"
wait_state p1 crashed "$limit" || { tail -n 20 "$STATE/vms/p1/console.log"; fail "p1 is $(vm_state p1), not crashed"; }
[ "$(vm_field p1 reason)" = "guest kernel panicked" ] || fail "p1's reason: '$(vm_field p1 reason)'"
ok "under vmd: p1 crashed (guest kernel panicked)"
