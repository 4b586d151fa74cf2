# Guest side of test_cloud_init_seed: find the cloud-init seed disk (the virtio-blk disk whose
# serial is vmd-cidata), say whether it is read-only, read its volume label from the ISO 9660
# primary volume descriptor (sector 16, bytes 40-71) and, if busybox has it, from blkid, then
# mount it as cloud-init would (iso9660, Rock Ridge names) and print every file's name, size,
# sha256 and text; the same names are listed through Joliet (mounted with norock). Lines start
# with "CIDATA:". A write to the disk must fail.
set -u
seed=""
for d in /sys/block/vd*; do
    [ -e "$d/serial" ] || continue
    echo "CIDATA: disk $(basename "$d") serial $(cat "$d/serial")"
    [ "$(cat "$d/serial")" = vmd-cidata ] && seed=$(basename "$d")
done
[ -n "$seed" ] || { echo "CIDATA: no seed disk"; exit 1; }
echo "CIDATA: seed $seed ro $(cat /sys/block/$seed/ro)"
echo "CIDATA: pvd label '$(dd if=/dev/$seed bs=1 skip=$((16 * 2048 + 40)) count=32 2>/dev/null | sed 's/ *$//')'"
if busybox blkid /dev/$seed > /tmp/blkid 2>/dev/null; then echo "CIDATA: blkid $(cat /tmp/blkid)"; fi
if dd if=/dev/zero of=/dev/$seed bs=512 count=1 conv=fsync 2>/dev/null; then echo "CIDATA: write accepted"; else echo "CIDATA: write refused"; fi
mkdir -p /mnt/seed /mnt/joliet
mount -t iso9660 -o ro /dev/$seed /mnt/seed || { echo "CIDATA: mount failed"; exit 1; }
echo "CIDATA: files $(ls /mnt/seed | tr '\n' ' ')"
for f in /mnt/seed/*; do
    n=$(basename "$f")
    echo "CIDATA: $n size $(wc -c < "$f") sha256 $(sha256sum "$f" | cut -d' ' -f1)"
    sed "s/^/CIDATA: $n| /" "$f"
done
umount /mnt/seed
mount -t iso9660 -o ro,norock /dev/$seed /mnt/joliet && echo "CIDATA: joliet files $(ls /mnt/joliet | tr '\n' ' ')"
umount /mnt/joliet 2>/dev/null
echo "CIDATA: done"
