# test_virtio_blk: a Linux guest (Debian cloud kernel, virtio_pci + virtio_blk modules) under
# vmctl run --accel kvm (in the nested rig) sees two --disk images as /dev/vda and /dev/vdb (readonly):
# it reads data the host wrote (same SHA-256), its flushed write reaches the image file (checked after
# vmctl exits), and the read-only disk refuses writes and stays unchanged.
# timeout: 900
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 15
. "$(dirname "$0")/lib.sh"
need_vmctl
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
need_guest_assets
python3 - "$TEST_TMP" > "$TEST_TMP/expected" <<'PY'
import hashlib, sys
d = sys.argv[1]
data = b"".join(hashlib.sha256(b"vmd-disk-%d" % i).digest() for i in range(4 * 1048576 // 32))
open(d + "/disk.img", "wb").write(data + bytes(4 * 1048576))
ro = b"".join(hashlib.sha256(b"vmd-ro-%d" % i).digest() for i in range(1048576 // 32))
open(d + "/ro.img", "wb").write(ro)
write = (b"vmd-virtio-blk-write\n" * 60000)[:1048576]
print("VBLK: vda sectors 16384 ro 0")
print("VBLK: vdb sectors 2048 ro 1")
print("VBLK: vda read sha256 " + hashlib.sha256(data).hexdigest())
print("VBLK: vda write ok")
print("VBLK: vda reread sha256 " + hashlib.sha256(write).hexdigest())
print("VBLK: vdb write refused")
print("VBLK: vdb read sha256 " + hashlib.sha256(ro).hexdigest())
print("RIG: vmctl exit 0")
print("RIG: disk.img at 4 MiB sha256 " + hashlib.sha256(write).hexdigest())
print("RIG: ro.img sha256 " + hashlib.sha256(ro).hexdigest())
PY
log=$TEST_TMP/rig.log
rc=0
scripts/nested-rig.sh --timeout "${RIG_TIMEOUT:-300}" --hang-retries 1 --inner-script tests/guest/virtio-blk.sh \
    --inner-modules "virtio_pci virtio_blk" --vmctl-args "--disk /rig/disk.img --disk /rig/ro.img,readonly" \
    --add "$TEST_TMP/disk.img:/rig/disk.img" --add "$TEST_TMP/ro.img:/rig/ro.img" \
    --add tests/guest/virtio-blk-after.sh:/rig/after.sh > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
while IFS= read -r want; do
    grep -qxF -- "$want" "$log.txt" ||
        { tail -n 40 "$log.txt"; fail "expected '$want', got '$(grep -F "${want% *}" "$log.txt" | tail -1)'"; }
    ok "$want"
done < "$TEST_TMP/expected"
[ $rc -eq 0 ] || fail "the rig's QEMU exited $rc"
