# Guest side of test_vnc_console: write known text on the VGA console (tty1, the console vgacon
# shows), then echo back lines typed on the keyboard until "quit".
echo "GUEST: vnc test ready" # on the serial console, for the log
printf '\033[2J\033[HVMD-VNC-MARKER %d\n' $((6 * 7)) > /dev/tty1
while read -r line < /dev/tty1; do
    echo "GOT:$line" > /dev/tty1
    echo "GUEST: got $line"
    [ "$line" = quit ] && break
done
