# Guest side of bench/virtio.sh: disk throughput on /dev/vda, then TCP throughput to the host
# over the NIC (address by DHCP). The host-side port comes on the command line (vmd.hostport=).
set -u
port=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^vmd.hostport=//p')
/iobench disk /dev/vda 64
ip link set eth0 up
cat > /tmp/udhcpc.sh <<'S'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
ip route add default via "$router"
S
chmod +x /tmp/udhcpc.sh
udhcpc -i eth0 -s /tmp/udhcpc.sh -q -n -t 10 > /dev/null 2>&1
/iobench tcp 10.0.2.2 "$port" 64
