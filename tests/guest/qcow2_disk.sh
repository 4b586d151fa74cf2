# Guest side of test_qcow2: /dev/vda and /dev/vdb are qcow2 overlays (one made by qemu-img, one by
# vmctl disk create) over one base holding a known pattern. Read the base through each, write the
# same three things to both (a partial cluster over base data, a fresh megabyte, the last sector),
# flush, and print what each disk now holds. Then write to /dev/vdc forever: the host kills the
# VM in the middle of that.
set -u
for d in vda vdb; do
    echo "QCOW: $d sectors $(cat /sys/block/$d/size)"
    echo "QCOW: $d base sha256 $(dd if=/dev/$d bs=1048576 count=4 2>/dev/null | sha256sum | cut -d' ' -f1)"
    yes qcow2-partial | head -c 4096 | dd of=/dev/$d bs=512 seek=2049 conv=notrunc,fsync 2>/dev/null
    yes qcow2-fresh-megabyte | head -c 1048576 | dd of=/dev/$d bs=1048576 seek=8 conv=notrunc,fsync 2>/dev/null
    printf 'qcow2-last-sector' | dd of=/dev/$d bs=512 seek=$(( $(cat /sys/block/$d/size) - 1 )) conv=notrunc,fsync 2>/dev/null
done
sync
echo 3 > /proc/sys/vm/drop_caches
for d in vda vdb; do
    echo "QCOW: $d after sha256 $(dd if=/dev/$d bs=1048576 2>/dev/null | sha256sum | cut -d' ' -f1)"
done
[ -b /dev/vdc ] || exit 0
echo "QCOW: churning"
i=0
while :; do
    yes "churn-$i" | head -c 262144 | dd of=/dev/vdc bs=4096 seek=$(( (i * 97) % 4000 )) conv=notrunc 2>/dev/null
    i=$((i + 1))
    [ $((i % 8)) -eq 0 ] && sync
done
