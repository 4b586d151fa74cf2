# Guest side of test_tap_bridge: take the address given on the command line (vmd.ip=) and ping the
# peer (vmd.peer=) until it answers (bounded), then report.
set -u
ip=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^vmd.ip=//p')
peer=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^vmd.peer=//p')
ip link set eth0 up
ip addr add "$ip/24" dev eth0
i=0
while [ $i -lt 300 ]; do
    if ping -c 1 -W 1 "$peer" > /dev/null 2>&1; then
        echo "GUEST: ping $peer ok"
        # Stay up a little so the peer can reach us too.
        sleep 20
        exit 0
    fi
    i=$((i + 1))
done
echo "GUEST: ping $peer failed"
