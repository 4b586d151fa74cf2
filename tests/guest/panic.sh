# Guest side of test_guest_panic: with pvpanic and pvpanic-mmio loaded (mkinitramfs --modules), show
# that the driver bound to the ACPI device vmd describes (_HID QEMU0001), then crash the kernel with
# sysrq c. The oops in the shell's write panics the kernel ("Fatal exception"); pvpanic's panic
# notifier writes "panicked" to port 0x505 before the kernel's own panic=N handling runs.
echo "PANIC-GUEST: pvpanic-mmio bound to $(ls /sys/bus/platform/drivers/pvpanic-mmio 2> /dev/null | grep QEMU0001 || echo nothing)"
echo "PANIC-GUEST: crashing the kernel"
echo c > /proc/sysrq-trigger
sleep 30
echo "PANIC-GUEST: still alive after the crash"
