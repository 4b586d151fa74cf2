# Guest side of test_virtio_blk: /dev/vda (read-write) and /dev/vdb (read-only) are virtio-blk disks.
# Reads vda's first 4 MiB, writes a known 1 MiB at 4 MiB (flushed), and tries to write vdb.
for d in vda vdb; do
    [ -b /dev/$d ] || { echo "VBLK: no /dev/$d"; ls /sys/block; exit 1; }
    echo "VBLK: $d sectors $(cat /sys/block/$d/size) ro $(cat /sys/block/$d/ro)"
done
set -- $(dd if=/dev/vda bs=1048576 count=4 2>/dev/null | sha256sum)
echo "VBLK: vda read sha256 $1"
yes vmd-virtio-blk-write | head -c 1048576 | dd of=/dev/vda bs=1048576 seek=4 conv=fsync 2>/dev/null &&
    echo "VBLK: vda write ok" || echo "VBLK: vda write failed"
# read back through the page cache-free path (O_DIRECT is not in busybox dd; drop caches instead)
sync; echo 3 > /proc/sys/vm/drop_caches
set -- $(dd if=/dev/vda bs=1048576 skip=4 count=1 2>/dev/null | sha256sum)
echo "VBLK: vda reread sha256 $1"
if echo x | dd of=/dev/vdb bs=512 count=1 conv=fsync 2>/dev/null; then echo "VBLK: vdb write accepted"; else echo "VBLK: vdb write refused"; fi
set -- $(dd if=/dev/vdb bs=1048576 count=1 2>/dev/null | sha256sum)
echo "VBLK: vdb read sha256 $1"
