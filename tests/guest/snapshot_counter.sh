# snapshot_counter: guest script for test_snapshot_restore. Counts in memory (a shell variable)
# and prints "VMD-GUEST: boot <boot_id> count N" twice a second, so the host can tell a restored
# run (same boot id, the count continuing) from a fresh boot. Lines typed on the console:
#   write WORD [SECTOR]  writes WORD to /dev/vda's sector SECTOR (default 1; flushed): "VMD-GUEST: wrote WORD"
#   read [SECTOR]        prints that sector as read from the disk (caches dropped): "VMD-GUEST: sector <text>"
boot=$(cat /proc/sys/kernel/random/boot_id)
echo "VMD-GUEST: counter ready boot $boot disk $([ -b /dev/vda ] && echo yes || echo no)"
( i=0; while :; do i=$((i + 1)); echo "VMD-GUEST: boot $boot count $i"; sleep 0.5; done ) &
while read -r cmd arg sector; do
    case $cmd in
    write) printf '%-16s' "$arg" | dd of=/dev/vda bs=512 seek="${sector:-1}" count=1 conv=sync,fsync 2>/dev/null &&
        echo "VMD-GUEST: wrote $arg" ;;
    read) sync; echo 3 > /proc/sys/vm/drop_caches
        echo "VMD-GUEST: sector $(dd if=/dev/vda bs=512 skip="${arg:-1}" count=1 2>/dev/null | tr -d '\000' | head -c 16)" ;;
    esac
done
wait
