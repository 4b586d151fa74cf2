# Guest side of test_virtio_net: eth0 is a virtio-net NIC on vmd's slirp backend (10.0.2.0/24).
# DHCP lease from slirp, a download (text, 1 MiB) from the host side (10.0.2.2:8080), then one HTTP reply served to
# the host side through a hostfwd (host 5555 -> guest 80).
ip link set lo up
ip link set eth0 up || { echo "VNET: no eth0"; ls /sys/class/net; exit 1; }
cat > /tmp/dhcp.sh <<'S'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
ip route add default via "$router"
echo "VNET: dhcp $ip router $router dns $dns"
S
chmod +x /tmp/dhcp.sh
udhcpc -i eth0 -n -q -f -t 10 -T 1 -s /tmp/dhcp.sh 2>&1 | grep "^VNET:" || echo "VNET: dhcp failed"
ip addr show eth0 | grep -q 'inet ' || { echo "VNET: no address"; exit 1; }
# busybox wget (static glibc) crashes in its resolver: speak HTTP/1.0 through nc, drop the headers.
if printf 'GET /blob HTTP/1.0\r\n\r\n' | timeout 60 nc 10.0.2.2 8080 > /tmp/response; then
    sed '1,/^\r*$/d' /tmp/response > /tmp/blob
    set -- $(sha256sum /tmp/blob)
    echo "VNET: download sha256 $1 bytes $(wc -c < /tmp/blob)"
else
    echo "VNET: download failed"
fi
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the inner guest %d\n' $((6 * 7)) > /tmp/reply
echo "VNET: serving on :80"
if timeout 120 nc -l -p 80 < /tmp/reply > /tmp/request; then
    echo "VNET: served $(head -1 /tmp/request | tr -d '\r')"
    sleep 2 # the reply may still be in the TCP stacks (guest, slirp): let it reach the client before poweroff
else
    echo "VNET: nobody connected"
fi
