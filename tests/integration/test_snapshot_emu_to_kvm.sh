# test_snapshot_emu_to_kvm: a snapshot taken under the emulator restores under KVM and the guest
# carries on (docs/snapshots.md, "Cross-backend"). On the host, `vmctl run --accel emu --irqchip pic
# --snapshot-on-signal` runs tests/guest/snapshot_counter.sh (it prints its boot id and a count
# twice a second, `sleep` needing timer interrupts); SIGUSR2 saves the snapshot. Inside the nested
# KVM rig (scripts/nested-rig.sh: real KVM in a QEMU TCG guest), `vmctl run --accel kvm --restore`
# starts from it: the guest must print the same boot id (no fresh boot), continue the count from
# where the snapshot was taken, and keep counting (the emulated PIC/PIT translated into KVM's).
# With IRQCHIP=apic (test_snapshot_emu_apic_to_kvm.sh) the guest runs on the emulator's APIC
# platform instead, and its local APIC and IOAPIC are what KVM's in-kernel irqchip takes over.
# timeout: 600
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 49
. "$(dirname "$0")/lib.sh"
need_vmctl
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
need_guest_assets
MEM=96
INITRD=$TEST_TMP/counter.cpio.gz
scripts/mkinitramfs.sh "$INITRD" --script tests/guest/snapshot_counter.sh > /dev/null 2>&1 || fail "mkinitramfs"
SNAP=$TEST_TMP/emu.snap
EMU_LOG=$TEST_TMP/emu.log
IRQCHIP=${IRQCHIP:-pic}
# the snapshot goes to $TEST_TMP, which only root may write: unconfined (vmctl run as root would
# otherwise run the VM as the vmd user, and refuse a snapshot path that user cannot write)
nosb=()
[ "$(id -u)" = 0 ] && nosb=(--no-sandbox)
"$VMCTL" run "${nosb[@]}" --accel emu --irqchip $IRQCHIP --memory $MEM --kernel "$GUEST/vmlinuz" --initrd "$INITRD" \
    --cmdline "console=ttyS0 quiet" --snapshot-on-signal "$SNAP" < /dev/null > "$EMU_LOG" 2>&1 &
vmctl_pid=$!
cleanup_vm() { [ -n "$vmctl_pid" ] && kill "$vmctl_pid" 2> /dev/null; wait 2> /dev/null; }
trap 'cleanup_vm; rm -rf "$TEST_TMP"' EXIT
for _ in $(seq "${GUEST_BOOT_TIMEOUT:-300}"); do
    tr -d '\r' < "$EMU_LOG" | grep -q 'VMD-GUEST: boot .* count 6$' && break
    kill -0 "$vmctl_pid" 2> /dev/null || break
    sleep 1
done
tr -d '\r' < "$EMU_LOG" | grep -q 'count 6$' || { tail -20 "$EMU_LOG"; fail "the guest did not start counting under emu"; }
kill -USR2 "$vmctl_pid"
for _ in $(seq 60); do grep -q "snapshot saved to" "$EMU_LOG" && break; sleep 1; done
expect_in "$EMU_LOG" "snapshot saved to $SNAP" "vmctl run --accel emu --irqchip $IRQCHIP saved a snapshot on SIGUSR2"
# The count printed last before the snapshot (the guest runs on until we stop it).
before=$(count_at_snapshot "$EMU_LOG")
boot=${before% *} last=${before#* }
[ -n "$boot" ] && [ -n "$last" ] || fail "no count before the snapshot in the emu log"
sleep 2
tr -d '\r' < "$EMU_LOG" | grep -q "count $((last + 2))$" || fail "the emu guest did not resume after the snapshot"
ok "the emu guest carried on after the snapshot (boot $boot, count $last at the snapshot)"
if [ "$IRQCHIP" = apic ]; then
    # The guest really ran on the APIC platform: the APIC part of its interrupt-controller state
    # (vmm/irqchip.h: after the PIC part, 21 bytes, and the PIT part, 78) says present.
    python3 - "$SNAP" <<'PY' || fail "the snapshot's dev.irqchip holds no local APIC and IOAPIC"
import struct, sys
b = open(sys.argv[1], "rb").read()
off, (count,) = 36, struct.unpack_from("<I", b, 12)
for _ in range(count):
    name = b[off:off + 24].rstrip(b"\0")
    (length,) = struct.unpack_from("<Q", b, off + 32)
    if name == b"dev.irqchip":
        sys.exit(0 if struct.unpack_from("<I", b, off + 48 + 21 + 78)[0] == 1 else 1)
    off += 48 + length
sys.exit(1)
PY
fi
kill "$vmctl_pid"; wait 2> /dev/null; vmctl_pid=""
echo "snapshot: $(du -h "$SNAP" | cut -f1)"

RIG_LOG=$TEST_TMP/rig.log
start=$(date +%s)
rc=0
# The emulator showed the guest SSSE3, SSE4.1 and POPCNT (as the host has them); qemu64 lacks them.
scripts/nested-rig.sh --outer-cpu "qemu64,+svm,+npt,+ssse3,+sse4.1,+popcnt" --timeout "${RIG_TIMEOUT:-240}" --hang-retries 1 --inner-memory $MEM --vmctl-timeout 25 \
    --vmctl-args "--restore /rig/emu.snap" --add "$SNAP:/rig/emu.snap" > "$RIG_LOG" 2>&1 || rc=$?
tr -d '\r' < "$RIG_LOG" > "$RIG_LOG.txt"
[ -n "${KEEP_RIG_LOG:-}" ] && cp "$RIG_LOG.txt" "$KEEP_RIG_LOG"
echo "rig finished in $(( $(date +%s) - start ))s (exit $rc)"
expect_in "$RIG_LOG.txt" '^RIG: /dev/kvm ok' "the outer guest has /dev/kvm"
expect_in "$RIG_LOG.txt" "restored /rig/emu.snap" "vmctl run --accel kvm restored the emu ($IRQCHIP platform) snapshot"
[ "$IRQCHIP" = apic ] &&
    expect_in "$RIG_LOG.txt" "IOAPIC, local APIC" "the emulated local APIC and IOAPIC now drive KVM's in-kernel irqchip"
expect_carries_on "$RIG_LOG.txt" "$boot" "$last" 4 "under kvm"
