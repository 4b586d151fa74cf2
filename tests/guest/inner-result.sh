# Inner guest of the nested KVM rig: prove the guest ran userspace code by printing a value it computed.
# /proc/uptime here is the inner kernel's clock: how long the inner kernel took to reach userspace.
read up _ < /proc/uptime
echo "INNER: userspace at ${up}s"
echo "INNER: RESULT $((6 * 7))"
echo "INNER: cpus $(grep -c ^processor /proc/cpuinfo) online $(cat /sys/devices/system/cpu/online)"
