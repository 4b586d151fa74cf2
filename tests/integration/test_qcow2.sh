# test_qcow2: qcow2 disks, with Debian's qemu-utils as the oracle (vmd never runs it).
#  1. vmd's block layer (tests/tools/blk_tool) writes the same pseudo-random requests into qcow2
#     images made by qemu-img (v3, v2 = compat 0.10, over a raw backing file, compressed by
#     `qemu-img convert -c`) and into raw copies: `qemu-img check` finds no errors and
#     `qemu-img compare` finds the qcow2 and the raw identical. It reads what qemu-img wrote.
#  2. `vmctl disk create` makes images and overlays that qemu-img reads and checks (backing format
#     recorded, size taken from the base); malformed requests get clear errors.
#  3. A Linux guest under the emulator (`vmctl run`, the runner vmd's workers use) boots with two
#     qcow2 overlays over one qemu-img-made base: one made by qemu-img, one by vmctl disk create.
#     It reads the base through both and writes to both (flushed), then writes to a third qcow2
#     disk without end, and the VM process is killed (SIGKILL) in the middle of that.
#     Afterwards the two overlays pass `qemu-img check` with no leak (the guest had flushed) and
#     equal the expected raw content (`qemu-img compare`); the base is unchanged; the third image
#     has no corruption (leaked clusters are allowed, as QEMU allows them) and vmd opens, reads and
#     writes it again.
# timeout: 600
# duration: 27
. "$(dirname "$0")/lib.sh"
need_vmctl
command -v qemu-img > /dev/null || skip "qemu-img is not installed (package qemu-utils)"
BLK=$ROOT/build/release/tools/blk_tool
[ -x "$BLK" ] || fail "$BLK is not built (make build)"
T=$TEST_TMP

# qemu-img check: exit 0 (clean) or, with allow_leaks, 3 (leaked clusters only)
check() {
    local img=$1 allow_leaks=${2:-} rc=0
    qemu-img check "$img" > "$T/check.log" 2>&1 || rc=$?
    if [ $rc -eq 0 ] || { [ -n "$allow_leaks" ] && [ $rc -eq 3 ] && ! grep -qi "corrupt\|error" "$T/check.log"; }; then
        ok "qemu-img check $(basename "$img"): $(grep -m1 -iE 'no errors|leaked' "$T/check.log")"
    else
        cat "$T/check.log"
        fail "qemu-img check $(basename "$img") exited $rc"
    fi
}
compare() {
    qemu-img compare -q "$1" "$2" || fail "qemu-img compare: $(basename "$1") differs from $(basename "$2")"
    ok "qemu-img compare: $(basename "$1") == $(basename "$2")"
}

# ---- 1. vmd's writes into qemu-made images ----
truncate -s 64M "$T/zero.raw"
qemu-img create -q -f qcow2 "$T/q3.qcow2" 64M
qemu-img create -q -f qcow2 -o compat=0.10 "$T/q2.qcow2" 64M
cp "$T/zero.raw" "$T/r1.raw"
"$BLK" write raw "$T/r1.raw" 1 300 || fail "blk_tool write raw"
for img in q3 q2; do
    "$BLK" write qcow2 "$T/$img.qcow2" 1 300 || fail "blk_tool write $img"
    check "$T/$img.qcow2"
    compare "$T/$img.qcow2" "$T/r1.raw"
done
cp "$T/r1.raw" "$T/base.raw"
qemu-img create -q -f qcow2 -b base.raw -F raw "$T/over.qcow2"
cp "$T/r1.raw" "$T/r2.raw"
"$BLK" write qcow2 "$T/over.qcow2" 2 200 || fail "blk_tool write over.qcow2"
"$BLK" write raw "$T/r2.raw" 2 200
check "$T/over.qcow2"
compare "$T/over.qcow2" "$T/r2.raw"
cmp -s "$T/base.raw" "$T/r1.raw" || fail "the backing file changed"
ok "the raw backing file is unchanged"
qemu-img convert -c -O qcow2 "$T/r1.raw" "$T/comp.qcow2"
"$BLK" dump qcow2 "$T/comp.qcow2" "$T/comp.out" || fail "blk_tool dump comp.qcow2"
cmp -s "$T/comp.out" "$T/r1.raw" || fail "vmd reads qemu-img's compressed image differently"
ok "vmd reads a compressed image ($(qemu-img check "$T/comp.qcow2" | grep -o '[0-9.]*% compressed'))"
cp "$T/r1.raw" "$T/r3.raw"
"$BLK" write qcow2 "$T/comp.qcow2" 3 200 || fail "blk_tool write comp.qcow2"
"$BLK" write raw "$T/r3.raw" 3 200
check "$T/comp.qcow2"
compare "$T/comp.qcow2" "$T/r3.raw"

# ---- 2. images vmctl disk create makes ----
"$VMCTL" disk create --size 32M "$T/new.qcow2" > /dev/null || fail "vmctl disk create"
qemu-img info --output=json "$T/new.qcow2" > "$T/info.json"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["format"]=="qcow2" and j["virtual-size"]==32<<20, j' \
    "$T/info.json" || fail "qemu-img info of a vmctl image"
check "$T/new.qcow2"
truncate -s 32M "$T/new.raw"
"$BLK" write qcow2 "$T/new.qcow2" 4 100 && "$BLK" write raw "$T/new.raw" 4 100 || fail "blk_tool write new.qcow2"
check "$T/new.qcow2"
compare "$T/new.qcow2" "$T/new.raw"
"$VMCTL" disk create --backing over.qcow2 "$T/top.qcow2" > /dev/null || fail "vmctl disk create --backing"
qemu-img info --backing-chain "$T/top.qcow2" > "$T/chain.txt"
grep -q "^backing file: over.qcow2 (actual path" "$T/chain.txt" && grep -q "^backing file format: qcow2$" "$T/chain.txt" &&
    grep -q "^backing file format: raw$" "$T/chain.txt" || { cat "$T/chain.txt"; fail "qemu-img does not see the backing chain"; }
ok "qemu-img sees top.qcow2 -> over.qcow2 (qcow2) -> base.raw (raw)"
compare "$T/top.qcow2" "$T/r2.raw"
check "$T/top.qcow2"
out=$("$VMCTL" disk create --size 1M "$T/new.qcow2" 2>&1) && fail "disk create over an existing file succeeded"
echo "$out" | grep -q "File exists" || fail "disk create over an existing file: '$out'"
out=$("$VMCTL" disk create --backing nope.img "$T/x.qcow2" 2>&1) && fail "disk create on a missing base succeeded"
echo "$out" | grep -q "nope.img.*No such file" || fail "disk create on a missing base: '$out'"
out=$("$VMCTL" disk create --size 12Q "$T/x.qcow2" 2>&1) && fail "--size 12Q accepted"
ok "vmctl disk create refuses an existing file, a missing base and a bad size"

# ---- 3. a booted guest writes two overlays ----
need_guest_assets
python3 - "$T" <<'PY'
import hashlib, sys
d = sys.argv[1]
size = 16 << 20
base = bytearray(b"".join(hashlib.sha256(b"qcow2-base-%d" % i).digest() for i in range(4 * 1048576 // 32)) + bytes(size - 4 * 1048576))
open(d + "/gbase.raw", "wb").write(base)
exp = bytearray(base)
def put(off, data): exp[off:off + len(data)] = data
put(2049 * 512, (b"qcow2-partial\n" * 400)[:4096])
put(8 << 20, (b"qcow2-fresh-megabyte\n" * 60000)[:1048576])
put(size - 512, b"qcow2-last-sector")
open(d + "/gexpected.raw", "wb").write(exp)
with open(d + "/gexpected.txt", "w") as f:
    for disk in ("vda", "vdb"):
        print("QCOW: %s sectors %d" % (disk, size // 512), file=f)
        print("QCOW: %s base sha256 %s" % (disk, hashlib.sha256(base[:4 << 20]).hexdigest()), file=f)
        print("QCOW: %s after sha256 %s" % (disk, hashlib.sha256(exp).hexdigest()), file=f)
PY
qemu-img convert -q -f raw -O qcow2 "$T/gbase.raw" "$T/gbase.qcow2"
qemu-img create -q -f qcow2 -b gbase.qcow2 -F qcow2 "$T/by-qemu.qcow2"
"$VMCTL" disk create --backing gbase.qcow2 "$T/by-vmd.qcow2" > /dev/null || fail "vmctl disk create (guest overlay)"
initrd=$T/qcow2.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/qcow2_disk.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_blk" > /dev/null || fail "mkinitramfs"
qemu-img create -q -f qcow2 "$T/churn.qcow2" 32M
log=$T/console.log
"$VMCTL" run --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --initrd "$initrd" --disk "$T/by-qemu.qcow2,format=qcow2" \
    --disk "$T/by-vmd.qcow2" --disk "$T/churn.qcow2" --cmdline "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 &
vm=$!
for _ in $(seq 600); do grep -q "QCOW: churning" "$log" && break; kill -0 $vm 2>/dev/null || break; sleep 0.5; done
grep -q "QCOW: churning" "$log" || { tail -30 "$log"; kill -9 $vm; fail "the guest did not get to its churning writes"; }
sleep 3
kill -0 $vm 2>/dev/null || { tail -30 "$log"; fail "the VM stopped by itself"; }
kill -9 $vm
wait $vm 2>/dev/null
ok "killed the VM process (SIGKILL) while the guest was writing"
tr -d '\r' < "$log" > "$log.txt"
while IFS= read -r want; do
    grep -qxF -- "$want" "$log.txt" || { tail -n 30 "$log.txt"; fail "expected '$want'"; }
    ok "$want"
done < "$T/gexpected.txt"
for img in by-qemu by-vmd; do
    check "$T/$img.qcow2"
    compare "$T/$img.qcow2" "$T/gexpected.raw"
done
compare "$T/gbase.qcow2" "$T/gbase.raw"
check "$T/churn.qcow2" allow_leaks
"$BLK" dump qcow2 "$T/churn.qcow2" "$T/churn.out" || fail "vmd cannot read the image after the kill"
"$BLK" write qcow2 "$T/churn.qcow2" 5 50 || fail "vmd cannot write the image after the kill"
check "$T/churn.qcow2" allow_leaks
ok "vmd opens, reads and writes the image after the kill"
