# test_firmware_boot: disk images with real boot loaders boot through Debian's SeaBIOS under the
# emulator, with no --kernel. scripts/mkboot-image.sh builds a partitioned raw image with SYSLINUX
# and one with GRUB i386-pc (both from Debian packages), each holding Debian's cloud kernel and a
# busybox initramfs. `vmctl run --accel emu --firmware bios-256k.bin --disk IMAGE` must show
# SeaBIOS and the boot loader on the serial console (SeaBIOS mirrors its screen to COM1 through
# fw_cfg's etc/sercon-port) and SeaBIOS's debug port in the log, then the kernel the loader
# started finds the command line the loader passed and vmd's ACPI tables (placed by SeaBIOS from
# fw_cfg's table loader), and the guest powers off: vmctl exits 0. A disk with no boot sector
# shows SeaBIOS's "No bootable device." and the VM keeps running.
# timeout: 400
# duration: 26
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
BIOS=/usr/share/seabios/bios-256k.bin
[ -r "$BIOS" ] || skip "no $BIOS (Debian package seabios; scripts/deps.sh installs it)"
for t in sfdisk mkfs.fat mcopy syslinux grub-mkimage; do
    command -v $t > /dev/null || skip "$t not installed (scripts/deps.sh installs the boot-image tools)"
done
initrd=$TEST_TMP/init.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/firmware_boot.sh > /dev/null || fail "mkinitramfs"

for loader in syslinux grub; do
    img=$TEST_TMP/$loader.img
    scripts/mkboot-image.sh $loader "$img" --kernel "$GUEST/vmlinuz" --initrd "$initrd" \
        --cmdline "console=ttyS0 quiet vmd-loader=$loader" > /dev/null || fail "mkboot-image.sh $loader"
    log=$TEST_TMP/$loader.log
    start=$(date +%s.%N)
    rc=0
    timeout 300 "$VMCTL" run --accel emu --memory 256 --firmware "$BIOS" --disk "$img" < /dev/null > "$log" 2>&1 || rc=$?
    secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    tr -d '\r' < "$log" > "$log.txt"
    echo "$loader: vmctl exited $rc after ${secs}s"
    [ $rc -ne 124 ] || { tail -n 30 "$log.txt"; fail "$loader: the guest did not power off within 300 s"; }
    expect_in "$log.txt" "firmware: SeaBIOS \\(version" "$loader: SeaBIOS's debug port (0x402) in the VM log"
    expect_in "$log.txt" "firmware: Booting from Hard Disk" "$loader: SeaBIOS boots the virtio disk"
    if [ $loader = syslinux ]; then
        expect_in "$log.txt" "^SYSLINUX [0-9]" "syslinux: its banner on the serial console"
    else
        expect_in "$log.txt" "GNU GRUB  *version" "grub: its menu on the serial console"
    fi
    expect_in "$log.txt" "^GUEST: cmdline .*console=ttyS0 quiet vmd-loader=$loader( |$)" "$loader: the kernel got the loader's command line"
    expect_in "$log.txt" "^GUEST: acpi .*APIC.*DSDT.*FACP" "$loader: the kernel found ACPI tables (APIC, DSDT, FACP)"
    expect_in "$log.txt" "^GUEST: dsdt-oem VMD" "$loader: they are vmd's, placed by SeaBIOS's table loader"
    expect_in "$log.txt" '^VMD-INIT: poweroff$' "$loader: the guest powered off"
    [ $rc -eq 0 ] || fail "$loader: vmctl exited $rc after the guest powered off (expected 0)"
done

# no boot sector: SeaBIOS says so and keeps retrying; the VM runs on until stopped
blank=$TEST_TMP/blank.img
truncate -s 8M "$blank"
log=$TEST_TMP/blank.log
timeout 60 "$VMCTL" run --accel emu --memory 64 --firmware "$BIOS" --disk "$blank" < /dev/null > "$log" 2>&1 &
pid=$!
for i in $(seq 1 300); do
    tr -d '\r' < "$log" | grep -q "No bootable device" && break
    kill -0 $pid 2> /dev/null || break
    sleep 0.2
done
kill -0 $pid 2> /dev/null || { tail -n 20 "$log"; fail "vmctl ended on a disk with no boot sector (it should keep the VM running)"; }
kill $pid
wait $pid 2> /dev/null
tr -d '\r' < "$log" > "$log.txt"
expect_in "$log.txt" "No bootable device" "a blank disk: SeaBIOS says \"No bootable device\" and the VM keeps running"
