# daemon_ticker: guest script for the vmd daemon tests. Prints a numbered tick every second so a
# running guest's serial log keeps growing; Ctrl-Alt-Del (vm.stop's graceful request) makes the
# kernel restart at once, which ends the VM; "echo" lines typed on the console are answered.
echo 1 > /proc/sys/kernel/ctrl-alt-del
echo "VMD-GUEST: ticker ready"
( i=0; while :; do i=$((i + 1)); echo "VMD-GUEST: tick $i"; sleep 1; done ) &
while read -r line; do echo "VMD-GUEST: got '$line'"; done
wait
