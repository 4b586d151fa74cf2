# Guest side of test_daemon_metrics: with virtio-blk and virtio-net loaded, keep the disk and the
# NIC busy so that the host sees their counters move: every second read a new 64 KiB of the disk
# (past the page cache), write and flush a sector, and send a DHCP discover through slirp.
set -u
ip link set eth0 up
echo "GUEST: io ready"
i=0
while :; do
    i=$((i + 1))
    dd if=/dev/vda of=/dev/null bs=4096 count=16 skip=$(((i * 16) % 4096)) 2>/dev/null
    echo "tick $i" | dd of=/dev/vda bs=512 seek=$((20000 + i % 1000)) conv=notrunc,fsync 2>/dev/null
    udhcpc -i eth0 -s /bin/true -q -n -t 1 -T 1 > /dev/null 2>&1
    echo "GUEST: tick $i"
    sleep 1
done
