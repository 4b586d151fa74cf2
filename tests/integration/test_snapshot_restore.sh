# test_snapshot_restore: snapshots of a daemon-managed guest, end to end (emu backend).
# The guest (tests/guest/snapshot_counter.sh) counts in memory and prints the count on its serial
# console with its boot id, and has a virtio-blk disk. We snapshot it (vmctl snapshot), let it
# run on, make it write a word to its disk, force-stop it, and restore (vmctl restore starts the
# stopped VM from the snapshot): the count continues from the snapshot value with the same boot
# id (no fresh boot), and the word written after the snapshot is gone from the disk image.
# Then a copy of the snapshot with one byte of its RAM section flipped is refused with an error
# naming the section, both on the running VM (which runs on unchanged) and on a stopped one
# (which stays stopped). DISK_FORMAT=qcow2 (test_snapshot_restore_qcow2) runs it all on a qcow2
# overlay over the disk image.
# timeout: 600
# duration: 42
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_guest_assets
start_vmd
V=$VMCTL
INITRD=$TEST_TMP/counter.cpio.gz
scripts/mkinitramfs.sh "$INITRD" --script tests/guest/snapshot_counter.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_blk" > /dev/null 2>&1 || fail "mkinitramfs"
DISK=$TEST_TMP/disk.img
printf 'vmd-snap-disk' > "$DISK" && truncate -s 4M "$DISK"
printf 'BASEDATA' | dd of="$DISK" bs=512 seek=4096 conv=notrunc 2> /dev/null # sector 4096 (2 MiB)
if [ "${DISK_FORMAT:-raw}" = qcow2 ]; then # test_snapshot_restore_qcow2: a qcow2 overlay on that image
    mv "$DISK" "$TEST_TMP/base.img"
    DISK=$TEST_TMP/disk.qcow2
    "$V" disk create --backing base.img "$DISK" > /dev/null || fail "vmctl disk create"
fi
"$V" create c1 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 128 --disk "$DISK" \
    --cmdline "console=ttyS0 quiet" > /dev/null || fail "create"
need_running_guest c1
LOG=$STATE/vms/c1/console.log
say() { python3 - "$SOCK" "$1" <<'PY'
import sys, base64
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
c = Conn.unix(sys.argv[1], timeout=30)
c.call("console.input", {"name": "c1", "data": base64.b64encode(sys.argv[2].encode() + b"\n").decode()})
PY
}
# wait_log PATTERN [FROM_BYTE]: wait until the console log (after FROM_BYTE) has a line matching
wait_log() {
    for _ in $(seq "${GUEST_BOOT_TIMEOUT:-300}"); do
        tail -c +"$((${2:-0} + 1))" "$LOG" 2>/dev/null | tr -d '\r' | grep -qE "$1" && return 0
        sleep 1
    done
    tail -5 "$LOG"; return 1
}
last_count() { tail -c +"$((${1:-0} + 1))" "$LOG" | tr -d '\r' | sed -n 's/^VMD-GUEST: boot .* count \([0-9]*\)$/\1/p' | tail -1; }
first_count() { tail -c +"$((${1:-0} + 1))" "$LOG" | tr -d '\r' | sed -n 's/^VMD-GUEST: boot .* count \([0-9]*\)$/\1/p' | head -1; }
wait_log "VMD-GUEST: boot .* count 3$" || fail "the guest did not start counting"
BOOT=$(tr -d '\r' < "$LOG" | sed -n 's/^VMD-GUEST: counter ready boot \([^ ]*\) disk \(.*\)/\1 \2/p' | tail -1)
[ "${BOOT#* }" = yes ] || fail "the guest has no /dev/vda: $BOOT"
BOOT=${BOOT% *}
ok "guest counting, boot id $BOOT"

# a word on the disk that the snapshot holds
say "write BEFORESNAP"
wait_log "VMD-GUEST: wrote BEFORESNAP" || fail "the guest did not write to its disk before the snapshot"
# snapshot while running: the snapshot's count lies between the last count printed before the
# call and the last printed after it (a line being printed at that instant may be printed again)
BEFORE=$(last_count)
"$V" snapshot c1 s1 > "$TEST_TMP/snap.out" 2> "$TEST_TMP/snap.err" || { cat "$TEST_TMP/snap.err"; fail "vmctl snapshot"; }
SNAPCOUNT=$(last_count)
ok "$(cat "$TEST_TMP/snap.out") at count $BEFORE..$SNAPCOUNT"
grep -q "snapshot: 100%" "$TEST_TMP/snap.err" || { cat "$TEST_TMP/snap.err"; fail "no progress lines from vmctl snapshot"; }
ok "progress reported: $(tr '\n' ' ' < "$TEST_TMP/snap.err")"
[ "$(vm_state c1)" = running ] || fail "c1 is $(vm_state c1) after the snapshot"
"$V" snapshots c1 > "$TEST_TMP/list" || fail "vmctl snapshots"
grep -q "^s1 .* emu .* running" "$TEST_TMP/list" || { cat "$TEST_TMP/list"; fail "s1 is not listed"; }
ok "vmctl snapshots lists s1"
"$V" snapshot c1 s1 2> "$TEST_TMP/dup" && fail "a second snapshot named s1 was accepted"
grep -q "already has a snapshot named 's1'" "$TEST_TMP/dup" || fail "duplicate: $(cat "$TEST_TMP/dup")"
"$V" snapshot c1 ../x 2> "$TEST_TMP/bad" && fail "snapshot name '../x' was accepted"
ok "duplicate and malformed snapshot names are refused"

# run on, write to the disk after the snapshot, force-stop
wait_log "VMD-GUEST: boot .* count $((SNAPCOUNT + 6))$" || fail "the guest stopped counting after the snapshot"
say "write AFTERSNAP"
wait_log "VMD-GUEST: wrote AFTERSNAP" || fail "the guest did not write to its disk"
STOPCOUNT=$(last_count)
"$V" stop --force c1 > /dev/null || fail "vmctl stop --force"
grep -q AFTERSNAP "$DISK" || fail "the guest's write did not reach $DISK"
ok "ran on to count $STOPCOUNT, wrote AFTERSNAP to the disk, force-stopped"

# restore: the stopped VM starts from s1
SIZE=$(stat -c %s "$LOG")
"$V" restore c1 s1 > "$TEST_TMP/restore.out" 2>&1 || { cat "$TEST_TMP/restore.out"; fail "vmctl restore"; }
ok "$(tail -1 "$TEST_TMP/restore.out")"
grep -q AFTERSNAP "$DISK" && fail "the disk still holds the write made after the snapshot"
ok "the disk write made after the snapshot is gone"
wait_log "VMD-GUEST: boot .* count [0-9]+$" "$SIZE" || fail "the restored guest does not count"
sleep 2
FIRST=$(first_count "$SIZE")
tail -c +"$((SIZE + 1))" "$LOG" | tr -d '\r' | grep -q "VMD-INIT: start\|Linux version" && fail "the guest booted afresh"
tail -c +"$((SIZE + 1))" "$LOG" | tr -d '\r' | grep "count" | grep -vq "boot $BOOT " && fail "a different boot id after restore"
[ "$FIRST" -ge "$BEFORE" ] && [ "$FIRST" -le $((SNAPCOUNT + 1)) ] ||
    fail "after restore the count went on from $FIRST; the snapshot was at $BEFORE..$SNAPCOUNT (stopped at $STOPCOUNT)"
ok "restored: count continues from the snapshot ($BEFORE..$SNAPCOUNT) at $FIRST -> $(last_count "$SIZE") in boot $BOOT (was $STOPCOUNT at the stop)"
say "read"
wait_log "VMD-GUEST: sector " "$SIZE" || fail "the guest did not read its disk"
tail -c +"$((SIZE + 1))" "$LOG" | tr -d '\r' | grep -q "VMD-GUEST: sector BEFORESNAP" ||
    { tail -c +"$((SIZE + 1))" "$LOG" | grep "sector"; fail "the restored guest does not read the snapshot's BEFORESNAP"; }
ok "the restored guest reads its disk as snapshotted (BEFORESNAP, without the later write)"

# restore of the running VM: it goes back to s1 again (the count drops back) and runs on; a disk
# write made just before is gone (the image was put back under the running device, which reads
# it afresh), and the disk takes writes again
wait_log "VMD-GUEST: boot .* count $((SNAPCOUNT + 8))$" "$SIZE" || fail "the restored guest stopped counting"
say "write RUNNINGWRITE 4096" # (on qcow2: a cluster the snapshot's image does not have)
wait_log "VMD-GUEST: wrote RUNNINGWRITE" "$SIZE" || fail "the guest did not write to its disk before the running restore"
SIZE2=$(stat -c %s "$LOG")
"$V" restore c1 s1 > "$TEST_TMP/restore2.out" 2>&1 || { cat "$TEST_TMP/restore2.out"; fail "vmctl restore (running VM)"; }
[ "$(vm_state c1)" = running ] || fail "c1 is $(vm_state c1) after restoring the running VM"
sleep 3
LOW=$(tail -c +"$((SIZE2 + 1))" "$LOG" | tr -d '\r' | sed -n 's/^VMD-GUEST: boot .* count \([0-9]*\)$/\1/p' | sort -n | head -1)
[ -n "$LOW" ] && [ "$LOW" -ge "$BEFORE" ] && [ "$LOW" -le $((SNAPCOUNT + 1)) ] ||
    fail "after restoring the running VM the lowest count is '$LOW', the snapshot was at $BEFORE..$SNAPCOUNT"
ok "restore of the running VM: the count went back to $LOW and runs on ($(last_count "$SIZE2"))"
say "read"
wait_log "VMD-GUEST: sector " "$SIZE2" || fail "the guest did not read its disk after the running restore"
tail -c +"$((SIZE2 + 1))" "$LOG" | tr -d '\r' | grep -q "VMD-GUEST: sector BEFORESNAP" ||
    { tail -c +"$((SIZE2 + 1))" "$LOG" | grep "sector"; fail "after restoring the running VM the guest does not read the snapshot's BEFORESNAP"; }
SIZE4=$(stat -c %s "$LOG")
say "read 4096"
wait_log "VMD-GUEST: sector " "$SIZE4" || fail "the guest did not read sector 4096 after the running restore"
tail -c +"$((SIZE4 + 1))" "$LOG" | tr -d '\r' | grep -q "VMD-GUEST: sector BASEDATA" ||
    { tail -c +"$((SIZE4 + 1))" "$LOG" | grep "sector"; fail "after the running restore sector 4096 is not the snapshot's BASEDATA"; }
say "write AFTERRESTORE 4096"
wait_log "VMD-GUEST: wrote AFTERRESTORE" "$SIZE2" || fail "the guest cannot write its disk after the running restore"
say "read 4096"
wait_log "VMD-GUEST: sector AFTERRESTORE" "$SIZE2" || fail "the guest does not read back its write after the running restore"
ok "after the running restore the disk is the snapshot's (BEFORESNAP, BASEDATA; the later write gone) and takes writes"

# a paused VM: snapshot and restore keep it paused
"$V" pause c1 > /dev/null || fail "pause"
"$V" snapshot c1 p1 > /dev/null 2>&1 || fail "snapshot of the paused VM"
"$V" restore c1 s1 > /dev/null 2>&1 || fail "restore of the paused VM"
[ "$(vm_state c1)" = paused ] || fail "c1 is $(vm_state c1) after snapshot/restore while paused"
"$V" snapshots c1 | grep -q "^p1 .* paused" || fail "p1 is not listed as taken while paused"
"$V" resume c1 > /dev/null || fail "resume"
"$V" snapshot-delete c1 p1 > /dev/null || fail "snapshot-delete p1"
ok "snapshot and restore of a paused VM leave it paused"

# a corrupted copy: one byte of the RAM page data flipped
SNAPDIR=$STATE/vms/c1/snapshots
cp -a "$SNAPDIR/s1" "$SNAPDIR/bad"
python3 - "$SNAPDIR/bad/vm.snap" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
b[len(b) - 100] ^= 0x5a   # the RAM section is the last one
open(p, "wb").write(b)
PY
B1=$(last_count)
SIZE3=$(stat -c %s "$LOG")
"$V" restore c1 bad 2> "$TEST_TMP/bad.err" && fail "a corrupted snapshot was restored"
grep -q "section 'ram' is corrupted" "$TEST_TMP/bad.err" || { cat "$TEST_TMP/bad.err"; fail "the error does not name the section"; }
ok "corrupted snapshot refused on the running VM: $(cat "$TEST_TMP/bad.err")"
wait_log "VMD-GUEST: boot $BOOT count $((B1 + 3))$" "$SIZE3" || fail "the VM did not run on after the refused restore"
[ "$(vm_state c1)" = running ] || fail "c1 is $(vm_state c1)"
ok "the VM runs on unchanged (count $B1 -> $(last_count))"
"$V" stop --force c1 > /dev/null || fail "stop"
"$V" restore c1 bad 2> "$TEST_TMP/bad2.err" && fail "a corrupted snapshot started the stopped VM"
grep -q "section 'ram' is corrupted" "$TEST_TMP/bad2.err" || { cat "$TEST_TMP/bad2.err"; fail "stopped: error does not name the section"; }
[ "$(vm_state c1)" = stopped ] || fail "c1 is $(vm_state c1) after the refused restore"
ok "corrupted snapshot refused on the stopped VM, which stays stopped"
# a snapshot whose interrupt-controller section has a version this vmd does not read (as a newer
# vmd would write) is refused naming it, with the VM left stopped
cp -a "$SNAPDIR/s1" "$SNAPDIR/foreign"
python3 - "$SNAPDIR/foreign/vm.snap" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
off, (count,) = 36, struct.unpack_from("<I", b, 12)
for _ in range(count):
    name = bytes(b[off:off + 24]).rstrip(b"\0")
    (length,) = struct.unpack_from("<Q", b, off + 32)
    if name == b"dev.irqchip":
        struct.pack_into("<I", b, off + 24, 9)
    off += 48 + length
open(p, "wb").write(b)
PY
"$V" restore c1 foreign 2> "$TEST_TMP/foreign.err" && fail "a snapshot of an unknown irqchip version was restored"
grep -q "irqchip: state version 9, this vmd reads 1" "$TEST_TMP/foreign.err" ||
    { cat "$TEST_TMP/foreign.err"; fail "unknown section version: unexpected error"; }
grep -q "(error -32008)" "$TEST_TMP/foreign.err" || { cat "$TEST_TMP/foreign.err"; fail "not -32008"; }
[ "$(vm_state c1)" = stopped ] || fail "c1 is $(vm_state c1) after the refused restore"
ok "a snapshot of an unknown version is refused: $(cat "$TEST_TMP/foreign.err")"
"$V" restore c1 nosuch 2> "$TEST_TMP/nosuch" && fail "restore of a missing snapshot succeeded"
grep -q "no snapshot named 'nosuch'" "$TEST_TMP/nosuch" || fail "missing: $(cat "$TEST_TMP/nosuch")"
"$V" snapshot-delete c1 bad > /dev/null || fail "snapshot-delete"
[ -e "$SNAPDIR/bad" ] && fail "snapshot 'bad' still on disk"
ok "snapshot-delete removes it; a missing snapshot is reported"
# the same snapshot directory in the foreground: vmctl run shares the worker's runner
# (vmm/vm_run.c), so it takes a snapshot as vmd keeps it (disk copy restored over its --disk)
FG_DISK=$TEST_TMP/fg.img FG_LOG=$TEST_TMP/fg.log
cp "$DISK" "$FG_DISK"
"$V" run --restore "$SNAPDIR/s1" --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 128 \
    --disk "$FG_DISK" --cmdline "console=ttyS0 quiet" > "$FG_LOG" 2>&1 < /dev/null &
FG_PID=$!
for _ in $(seq 60); do [ "$(tr -d '\r' < "$FG_LOG" | grep -c "^VMD-GUEST: boot $BOOT count")" -ge 4 ] && break; sleep 1; done
kill "$FG_PID" 2>/dev/null; wait "$FG_PID" 2>/dev/null
FG_FIRST=$(tr -d '\r' < "$FG_LOG" | sed -n "s/^VMD-GUEST: boot $BOOT count \([0-9]*\)$/\1/p" | head -1)
[ -n "$FG_FIRST" ] && [ "$FG_FIRST" -ge "$BEFORE" ] && [ "$FG_FIRST" -le $((SNAPCOUNT + 1)) ] ||
    { tail -20 "$FG_LOG"; fail "vmctl run --restore of the snapshot directory did not carry on from $BEFORE..$SNAPCOUNT"; }
grep -q '^VMD-GUEST: counter ready' "$FG_LOG" && fail "vmctl run --restore booted afresh"
grep -q AFTERSNAP "$FG_DISK" && fail "vmctl run --restore kept the disk's later write"
ok "vmctl run --restore of vmd's snapshot directory carries on at count $FG_FIRST in boot $BOOT, disk as snapshotted"
"$V" delete c1 > /dev/null || fail "vmctl delete of a VM with snapshots"
[ -e "$STATE/vms/c1" ] && fail "the VM's directory (with its snapshots) is still there"
ok "vm.delete removes the VM with its snapshots"
