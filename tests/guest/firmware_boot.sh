# Guest side of test_firmware_boot: the kernel came up through SeaBIOS and a boot loader; show
# what the firmware left for it (the command line the loader passed, the ACPI tables vmd gave
# through fw_cfg, the e820 map) for the test to check.
echo "GUEST: cmdline $(cat /proc/cmdline)"
echo "GUEST: acpi $(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\n' ' ')"
echo "GUEST: memtotal-kb $(awk '/MemTotal/ { print $2 }' /proc/meminfo)"
echo "GUEST: dsdt-oem $(dd if=/sys/firmware/acpi/tables/DSDT bs=1 skip=10 count=6 2>/dev/null)"
