# Guest side of test_virtio_disk_net: with virtio-pci, virtio-blk, virtio-net and virtio-rng
# loaded, read the disk the host prepared, write to it, flush; take an address from slirp's DHCP,
# download a file from the host and hash it, then serve a page through the hostfwd port until
# the host has fetched it.
set -u
echo "GUEST: devices $(ls /sys/bus/virtio/devices | wc -l)"
echo "GUEST: hwrng $(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
echo "GUEST: rng $(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n' | wc -c)"
# Disk: the host wrote "vmd-disk-test" + a pattern into sector 0..7; the guest reads it.
echo "GUEST: disk size $(cat /sys/block/vda/size)"
echo "GUEST: disk head $(head -c 13 /dev/vda)"
echo "GUEST: disk sha256 $(head -c 4096 /dev/vda | sha256sum | cut -d' ' -f1)"
printf 'written-by-guest' | dd of=/dev/vda bs=512 seek=100 conv=notrunc,fsync 2>/dev/null
sync
echo "GUEST: disk write done"
# Network
ip link set eth0 up
cat > /tmp/udhcpc.sh <<'S'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
ip route add default via "$router"
S
chmod +x /tmp/udhcpc.sh
udhcpc -i eth0 -s /tmp/udhcpc.sh -q -n -t 10 > /dev/null 2>&1
echo "GUEST: ip $(ip -4 -o addr show eth0 | awk '{print $4}')"
port=$(cat /proc/cmdline | tr ' ' '\n' | sed -n 's/^vmd.hostport=//p')
wget -q -O /tmp/blob "http://10.0.2.2:$port/blob" && echo "GUEST: download sha256 $(sha256sum /tmp/blob | cut -d' ' -f1)"
mkdir -p /www
echo "hello from the guest $((7 * 6))" > /www/index.html
httpd -p 80 -h /www
echo "GUEST: serving"
# Wait (bounded) until the host has fetched the page and told us so via a second request.
i=0
while [ $i -lt 600 ] && ! grep -q done /www/flag 2>/dev/null; do
    wget -q -O /www/flag "http://10.0.2.2:$port/done" 2>/dev/null
    sleep 1
    i=$((i + 1))
done
echo "GUEST: host fetched the page"
# Which interrupt controllers carried all that (the PIC platform: XT-PIC; the APIC one: IO-APIC,
# MSI-X for virtio, the local APIC timer).
echo "GUEST: irqs xtpic $(grep -c XT-PIC /proc/interrupts) ioapic $(grep -c IO-APIC /proc/interrupts) msix $(grep -c PCI-MSI /proc/interrupts) local-timer $(awk '/LOC:/ { print $2 }' /proc/interrupts)"
sed 's/^/GUEST: interrupts: /' /proc/interrupts
