# test_snapshot_kvm_to_emu: a snapshot taken under KVM restores under the emulator and the guest
# carries on (docs/snapshots.md, "Cross-backend"). Inside the nested KVM rig (scripts/nested-rig.sh),
# `vmctl run --accel kvm --snapshot-on-signal` runs tests/guest/snapshot_counter.sh (boot id and a
# count twice a second; `sleep` needs timer interrupts: under KVM the guest uses the local APIC's
# TSC-deadline timer, x2APIC and kvmclock); SIGUSR2 saves the snapshot, which leaves the rig through
# its second serial port. On the host, `vmctl run --accel emu --restore` starts from it: the guest
# must print the same boot id (no fresh boot), continue the count from where the snapshot was
# taken, and keep counting on the emulator's APIC platform (KVM's irqchip and kvmclock taken over).
# Then the same through vmd: the snapshot is put in a stopped emu VM's snapshot store and
# `vmctl restore` starts the VM from it (vm.restore), which carries on the same boot too.
# timeout: 1400
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 205
# (The rig gzips the snapshot and sends it through a TCG-emulated serial port: about 2 minutes on an
# idle 2-core host, over 4 on a loaded one and 7 or more at a load average of 10. So an attempt
# counts as hung only after 240 s without output (--idle-timeout; the outer boot alone was silent
# for 80 s at that load), and its overall limit is generous.)
. "$(dirname "$0")/lib.sh"
need_vmctl
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
need_guest_assets
MEM=96
INITRD=$TEST_TMP/counter.cpio.gz
scripts/mkinitramfs.sh "$INITRD" --script tests/guest/snapshot_counter.sh > /dev/null 2>&1 || fail "mkinitramfs"
RIG_LOG=$TEST_TMP/rig.log
COM2=$TEST_TMP/com2.txt
rc=0
scripts/nested-rig.sh --timeout "${RIG_TIMEOUT:-900}" --idle-timeout 240 --hang-retries 1 --inner-script tests/guest/snapshot_counter.sh \
    --inner-memory $MEM --inner-cmdline "console=ttyS0 quiet" --vmctl-timeout 60 \
    --outer-script tests/guest/rig-outer-snapshot.sh --serial2 "$COM2" > "$RIG_LOG" 2>&1 || rc=$?
tr -d '\r' < "$RIG_LOG" > "$RIG_LOG.txt"
expect_in "$RIG_LOG.txt" '^RIG: /dev/kvm ok' "the outer guest has /dev/kvm"
expect_in "$RIG_LOG.txt" 'snapshot saved to /tmp/kvm.snap' "vmctl run --accel kvm saved a snapshot on SIGUSR2"
grep -q '^RIG: snapshot exported' "$RIG_LOG.txt" || { tail -30 "$RIG_LOG.txt"; fail "the rig did not export the snapshot"; }
SNAP=$TEST_TMP/kvm.snap
size=$(tr -d '\r' < "$COM2" | sed -n 's/^VMD-SNAPSHOT-BEGIN \([0-9]*\)$/\1/p' | tail -1)
tr -d '\r' < "$COM2" | sed -n '/^VMD-SNAPSHOT-BEGIN/,/^VMD-SNAPSHOT-END/p' | sed '1d;$d' | base64 -d | gunzip > "$SNAP" ||
    fail "the snapshot from the rig does not decode"
[ -n "$size" ] && [ "$(stat -c %s "$SNAP")" = "$size" ] || fail "the snapshot from the rig is $(stat -c %s "$SNAP") bytes, not $size"
ok "a $size-byte snapshot taken under kvm came out of the rig"
before=$(count_at_snapshot "$RIG_LOG.txt")
boot=${before% *} last=${before#* }
[ -n "$boot" ] && [ -n "$last" ] || fail "no count before the snapshot in the rig log"
ok "under kvm the guest (boot $boot) had counted to $last at the snapshot"

EMU_LOG=$TEST_TMP/emu.log
"$VMCTL" run --accel emu --memory $MEM --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --cmdline "console=ttyS0 quiet" \
    --restore "$SNAP" < /dev/null > "$EMU_LOG" 2>&1 &
vmctl_pid=$!
trap '[ -n "$vmctl_pid" ] && kill "$vmctl_pid" 2> /dev/null; wait 2> /dev/null; rm -rf "$TEST_TMP"' EXIT
for _ in $(seq 30); do
    [ "$(tr -d '\r' < "$EMU_LOG" | grep -c "^VMD-GUEST: boot $boot count")" -ge 8 ] && break
    kill -0 "$vmctl_pid" 2> /dev/null || break
    sleep 1
done
tr -d '\r' < "$EMU_LOG" > "$EMU_LOG.txt"
expect_in "$EMU_LOG.txt" "restored $SNAP" "vmctl run --accel emu restored the kvm snapshot"
expect_carries_on "$EMU_LOG.txt" "$boot" "$last" 6 "under emu"
kill -0 "$vmctl_pid" 2> /dev/null || fail "vmctl run --accel emu exited while the guest should run on"
kill "$vmctl_pid"; wait "$vmctl_pid" 2> /dev/null; vmctl_pid=""

# --- through vmd: vm.restore of a stopped emu VM from the kvm snapshot ---
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
start_vmd
"$VMCTL" create k1 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory $MEM \
    --cmdline "console=ttyS0 quiet" > /dev/null || fail "vmctl create"
mkdir -p "$STATE/vms/k1/snapshots/fromkvm"
cp "$SNAP" "$STATE/vms/k1/snapshots/fromkvm/vm.snap"
cat > "$STATE/vms/k1/snapshots/fromkvm/meta.json" <<META
{"created": $(date +%s), "backend": "kvm", "memory_mib": $MEM, "vcpus": 1, "vm_state": "running",
 "ram_bytes": $((MEM << 20)), "file_bytes": $size, "save_seconds": 0, "disks": []}
META
"$VMCTL" snapshots k1 | grep -q fromkvm || fail "vmctl snapshots does not list the kvm snapshot"
"$VMCTL" restore k1 fromkvm > "$TEST_TMP/restore.out" 2>&1 || { cat "$TEST_TMP/restore.out"; fail "vmctl restore k1 fromkvm"; }
CLOG=$STATE/vms/k1/console.log
for _ in $(seq 30); do
    [ "$(tr -d '\r' < "$CLOG" 2> /dev/null | grep -c "^VMD-GUEST: boot $boot count")" -ge 8 ] && break
    sleep 1
done
tr -d '\r' < "$CLOG" > "$CLOG.txt"
expect_carries_on "$CLOG.txt" "$boot" "$last" 6 "through vmd (vm.restore of a stopped emu VM)"
"$VMCTL" info k1 | grep -q running || fail "k1 is not running after vm.restore"
"$VMCTL" stop --force k1 > /dev/null || fail "stop"
