# Guest side of test_debug_exit: end the VM through isa-debug-exit (port 0xf4) by writing 0x10 to
# it (/outb: tests/guest/outb.c); the device turns that into exit status (0x10<<1)|1 = 33.
echo "DEBUG-EXIT: writing 0x10 to port 0xf4"
/outb 0xf4 0x10
sleep 5
echo "DEBUG-EXIT: still running after the write"
