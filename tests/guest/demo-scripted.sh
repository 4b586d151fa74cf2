# Guest side of `make demo` when no terminal is attached: show what the guest sees, then power off.
read up _ < /proc/uptime
echo "DEMO: userspace reached after ${up}s (guest clock)"
echo "DEMO: uname: $(uname -a)"
echo "DEMO: cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(grep -c ^processor /proc/cpuinfo) vCPU(s)"
echo "DEMO: memory: $(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
echo "DEMO: 6 * 7 = $((6 * 7))"
echo "DEMO: powering off"
