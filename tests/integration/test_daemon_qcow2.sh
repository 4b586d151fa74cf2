# test_daemon_qcow2: qcow2 disks through vmd. vm.create without a format stores the one the image's
# first bytes say (qcow2 for an overlay from vmctl disk create, raw for a plain file), and never
# probes again: a raw disk whose first cluster is later overwritten with a qcow2 header (as a guest
# could) still starts as raw. An overlay whose backing file lies outside the image directories, or
# whose chain loops, is refused at vm.create (-32602, field disks, naming the backing file); one
# whose backing file is replaced afterwards by a symlink to a file outside is refused at vm.start
# (-32002). A VM on a qcow2
# overlay runs, is snapshotted and restored while running and restarted from the snapshot; the
# snapshot's copy of the disk passes `qemu-img check` (when qemu-utils is installed).
# timeout: 180
# duration: 5
. "$(dirname "$0")/lib.sh"
IMG=$TEST_TMP/imgs
IMAGE_DIRS=("$IMG")
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_ticker_initrd
mkdir -p "$IMG"
cp "$GUEST/vmlinuz" "$IMG/vmlinuz"
cp "$INITRD" "$IMG/ticker.cpio.gz"
truncate -s 16M "$IMG/base.raw" "$IMG/plain.raw" "$IMG/looks-raw.img"
"$VMCTL" disk create --backing base.raw "$IMG/overlay.qcow2" > /dev/null || fail "vmctl disk create"
OUTSIDE=$TEST_TMP/outside.raw
truncate -s 16M "$OUTSIDE"
"$VMCTL" disk create --backing "$OUTSIDE" "$IMG/escapes.qcow2" > /dev/null || fail "vmctl disk create (outside base)"
"$VMCTL" disk create --size 16M "$IMG/loop-a.qcow2" > /dev/null && "$VMCTL" disk create --backing loop-a.qcow2 "$IMG/loop-b.qcow2" > /dev/null ||
    fail "vmctl disk create (loop)"
python3 - "$IMG" <<'PY' || fail "making the loop"
import struct, sys
d = sys.argv[1]
with open(d + "/loop-a.qcow2", "r+b") as f:  # loop-a's backing file becomes loop-b: a -> b -> a
    f.seek(8); f.write(struct.pack(">QI", 1024, 12)); f.seek(1024); f.write(b"loop-b.qcow2")
PY
start_vmd

python3 - "$SOCK" "$IMG" "$OUTSIDE" <<'PY' || fail "formats and backing files at vm.create"
import json, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, img, outside = sys.argv[1:4]
c = Conn.unix(sock)
def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail); sys.exit(1)
    print("ok -", what)
vm = {"kernel": img + "/vmlinuz", "initrd": img + "/ticker.cpio.gz", "accel": "emu", "memory_mib": 96,
      "cmdline": "console=ttyS0 quiet"}
r = c.request("vm.create", dict(vm, name="q1", disks=[{"path": img + "/overlay.qcow2"}, {"path": img + "/plain.raw"}]))
d = r.get("result", {}).get("definition", {}).get("disks", [])
check(len(d) == 2 and d[0].get("format") == "qcow2" and d[1].get("format") == "raw",
      "vm.create stores the detected formats (qcow2, raw)", json.dumps(r))
r = c.request("vm.create", dict(vm, name="q2", disks=[{"path": img + "/looks-raw.img", "format": "raw"}]))
check(r.get("result", {}).get("definition", {}).get("disks", [{}])[0].get("format") == "raw", "a given format is stored", json.dumps(r))
r = c.request("vm.create", dict(vm, name="q3", disks=[{"path": img + "/plain.raw", "format": "vmdk"}]))
check(r.get("error", {}).get("code") == -32602 and r["error"].get("data", {}).get("field") == "disks",
      "an unknown format is refused: " + r.get("error", {}).get("message", ""), json.dumps(r))
r = c.request("vm.create", dict(vm, name="q4", disks=[{"path": img + "/escapes.qcow2"}]))
e = r.get("error", {})
check(e.get("code") == -32602 and e.get("data", {}).get("field") == "disks" and "backing file '%s'" % outside in e.get("message", "")
      and "resolves outside the image directories" in e.get("message", ""),
      "a backing file outside the image dirs is refused: " + e.get("message", ""), json.dumps(r))
r = c.request("vm.create", dict(vm, name="q5", disks=[{"path": img + "/loop-b.qcow2"}]))
e = r.get("error", {})
check(e.get("code") == -32602 and "loops" in e.get("message", ""), "a backing loop is refused: " + e.get("message", ""), json.dumps(r))
names = [v["name"] for v in c.call("vm.list")]
check(sorted(names) == ["q1", "q2"], "only q1 and q2 were defined: %s" % names)
PY
ok "vm.create: formats stored, bad backing chains refused"
"$VMCTL" info q1 | grep -qx "disk0:    $IMG/overlay.qcow2 (qcow2)" && "$VMCTL" info q1 | grep -qx "disk1:    $IMG/plain.raw (raw)" ||
    { "$VMCTL" info q1; fail "vmctl info does not show the disks' formats"; }
ok "vmctl info shows each disk's format"

# a raw disk whose first cluster now holds a qcow2 header (naming a backing file that does not
# exist): opened as qcow2 it would not start; the stored format keeps it raw
head -c 65536 "$IMG/escapes.qcow2" | dd of="$IMG/looks-raw.img" conv=notrunc 2> /dev/null
"$VMCTL" start q2 > /dev/null 2>&1 || fail "q2 (raw, with a qcow2 header written into it) did not start: $(vm_field q2 reason)"
wait_state q2 running 10 || fail "q2 is $(vm_state q2)"
ok "a raw disk with a qcow2 header inside still starts as raw"
"$VMCTL" stop --force q2 > /dev/null || fail "stop q2"

# the VM on the overlay: runs, snapshot while running, restore while running, restart from it
"$VMCTL" start q1 > /dev/null || fail "q1 did not start: $(vm_field q1 reason)"
wait_state q1 running 10 || fail "q1 is $(vm_state q1)"
ok "q1 runs on a qcow2 overlay"
"$VMCTL" snapshot q1 s1 > /dev/null || fail "snapshot of q1"
copy=$STATE/vms/q1/snapshots/s1/disk0.img
[ -f "$copy" ] || fail "the snapshot has no copy of the qcow2 disk"
if command -v qemu-img > /dev/null; then
    # the copy keeps the overlay's relative backing name, which resolves against the overlay's own
    # directory, not the snapshot's: check the copy's own metadata without its backing file
    qemu-img check "json:{\"driver\":\"qcow2\",\"backing\":null,\"file\":{\"driver\":\"file\",\"filename\":\"$copy\"}}" \
        > "$TEST_TMP/check.log" 2>&1 || { cat "$TEST_TMP/check.log"; fail "the snapshot's disk copy fails qemu-img check"; }
    ok "the snapshot's qcow2 copy passes qemu-img check (no leaks)"
fi
"$VMCTL" restore q1 s1 > /dev/null || fail "restore of running q1: $(vm_field q1 reason)"
wait_state q1 running 10 || fail "q1 after restore is $(vm_state q1)"
ok "q1 restored while running"
"$VMCTL" stop --force q1 > /dev/null || fail "stop q1"
"$VMCTL" restore q1 s1 > /dev/null || fail "restore of stopped q1: $(vm_field q1 reason)"
wait_state q1 running 10 || fail "q1 started from the snapshot is $(vm_state q1)"
ok "q1 started from its snapshot"
"$VMCTL" stop --force q1 > /dev/null || fail "stop q1"
if command -v qemu-img > /dev/null; then
    qemu-img check "$IMG/overlay.qcow2" > "$TEST_TMP/check.log" 2>&1 || { cat "$TEST_TMP/check.log"; fail "overlay.qcow2 fails qemu-img check"; }
    ok "the overlay passes qemu-img check after the VM stopped"
fi

# every start checks the chain again: the base moved out of the image dirs (a symlink in its place)
mv "$IMG/base.raw" "$TEST_TMP/base.raw"
ln -s "$TEST_TMP/base.raw" "$IMG/base.raw"
out=$("$VMCTL" start q1 2>&1) && fail "q1 started with its backing file outside the image dirs"
# (the chain is opened as the worker opens it: the symlink in the base's place is not followed)
echo "$out" | grep -q "backing file: disk '$IMG/base.raw': is a symbolic link" || fail "vm.start: '$out'"
ok "vm.start re-checks the backing chain: $out"
