# Guest side of bench/vnc-latency.sh: copy every line from the serial console to the VGA console.
echo "GUEST: echo ready"
while read -r line < /dev/ttyS0; do
    echo "$line" > /dev/tty1
    [ "$line" = quit ] && break
done
