# test_debug_exit: isa-debug-exit (--device isa-debug-exit, port 0xf4). A Debian guest under the
# emulator writes 0x10 to the port (tests/guest/debug_exit.sh, with tests/guest/outb.c): `vmctl run` exits
# with (0x10<<1)|1 = 33 and the guest runs no further. Without the device the write goes nowhere and
# the guest powers off (vmctl exits 0). Under vmd, a VM defined with "devices": ["isa-debug-exit"]
# stops, and vm.info and vm.list report exit_status 33 (also after a vmd restart: status.json keeps it).
# timeout: 400
# duration: 45
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_guest_assets
initrd=$TEST_TMP/debug_exit.cpio.gz
cc -static -O2 -o "$TEST_TMP/outb" tests/guest/outb.c || fail "building tests/guest/outb.c (cc -static)"
scripts/mkinitramfs.sh "$initrd" --script tests/guest/debug_exit.sh --add "$TEST_TMP/outb:/outb" > /dev/null ||
    fail "mkinitramfs"
limit=${EMU_BOOT_TIMEOUT:-240}
run_guest() { # run_guest LOG [vmctl run options]: the exit status of vmctl run
    local log=$1 rc=0
    shift
    timeout "$limit" "$VMCTL" run --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
        --cmdline "console=ttyS0 quiet" "$@" < /dev/null > "$log" 2>&1 || rc=$?
    tr -d '\r' < "$log" > "$log.txt"
    [ $rc -ne 124 ] || { tail -n 30 "$log.txt"; fail "vmctl run did not return within ${limit}s"; }
    return $rc
}

rc=0
run_guest "$TEST_TMP/on.log" --device isa-debug-exit || rc=$?
expect_in "$TEST_TMP/on.log.txt" "^DEBUG-EXIT: writing 0x10 to port 0xf4" "the guest wrote to the port"
grep -q "still running after the write" "$TEST_TMP/on.log.txt" && fail "the guest ran on after its isa-debug-exit write"
[ $rc -eq 33 ] || { tail -n 20 "$TEST_TMP/on.log.txt"; fail "vmctl run exited $rc, expected 33 ((0x10<<1)|1)"; }
ok "vmctl run --device isa-debug-exit exited 33 after the guest wrote 0x10 to port 0xf4"

rc=0
run_guest "$TEST_TMP/off.log" || rc=$?
expect_in "$TEST_TMP/off.log.txt" "^DEBUG-EXIT: still running after the write" "without the device the write changes nothing"
[ $rc -eq 0 ] || fail "vmctl run without the device exited $rc after the guest's poweroff (expected 0)"
ok "without --device isa-debug-exit the port is absent and the guest powers off (exit 0)"

start_vmd
"$VMCTL" create dx --kernel "$GUEST/vmlinuz" --initrd "$initrd" --accel emu --memory 128 \
    --cmdline "console=ttyS0 quiet" --device isa-debug-exit > /dev/null || fail "vmctl create --device isa-debug-exit"
[ "$("$VMCTL" --json info dx | python3 -c 'import json,sys; print(json.load(sys.stdin)["definition"]["devices"])')" = "['isa-debug-exit']" ] ||
    fail "the definition does not list isa-debug-exit"
"$VMCTL" start dx > /dev/null || fail "vmctl start dx"
wait_state dx stopped "$limit" || { tail -n 20 "$STATE/vms/dx/console.log"; fail "dx did not stop (state $(vm_state dx))"; }
[ "$(vm_field dx exit_status)" = 33 ] || fail "vm.info exit_status is '$(vm_field dx exit_status)', expected 33"
vm_field dx reason | grep -q "exited with status 33" || fail "vm.info reason: $(vm_field dx reason)"
"$VMCTL" info dx | grep -q "^exit status: 33" || fail "vmctl info does not show the exit status"
[ "$("$VMCTL" --json list | python3 -c 'import json,sys; print([v["exit_status"] for v in json.load(sys.stdin) if v["name"] == "dx"][0])')" = 33 ] ||
    fail "vm.list does not report dx's exit_status 33"
ok "under vmd: dx stopped, vm.info and vm.list exit_status 33 ($(vm_field dx reason))"
stop_vmd_hard
start_vmd
[ "$(vm_field dx exit_status)" = 33 ] || fail "after a vmd restart vm.info exit_status is '$(vm_field dx exit_status)'"
ok "vm.info keeps exit_status 33 across a vmd restart"
