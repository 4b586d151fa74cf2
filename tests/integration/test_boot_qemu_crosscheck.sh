# test_boot_qemu_crosscheck: the guest memory image vmm/boot/ writes (zero page, e820, GDT, page
# tables, ACPI and MP tables, kernel, initrd) boots Debian's kernel to userland under QEMU TCG and
# powers off through ACPI S5, independently of vmd's own CPU backends (tests/boot/qemu-crosscheck.sh).
# timeout: 900
# duration: 14
. "$(dirname "$0")/lib.sh"
need_guest_assets
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 not installed"
[ -f build/release/libvmm.a ] || fail "build/release/libvmm.a missing (run make)"

run() { # run NAME ARGS...: one cross-check boot, its output in $TEST_TMP/NAME
    local name=$1; shift
    local rc=0
    CROSSCHECK_OUT=$TEST_TMP/crosscheck-$name tests/boot/qemu-crosscheck.sh "$@" > "$TEST_TMP/$name" 2>&1 || rc=$?
    [ $rc -eq 77 ] && skip "$(tail -1 "$TEST_TMP/$name")"
    [ $rc -eq 0 ] || { cat "$TEST_TMP/$name"; fail "$name: cross-check boot failed"; }
}

run acpi --cpus 2 "$GUEST/vmlinuz"
expect_in "$TEST_TMP/acpi" "ACPI: RSDP 0x00000000000E0000" "RSDP found at 0xE0000"
expect_in "$TEST_TMP/acpi" "Console: colour VGA\+ 80x25" "vgacon accepts screen_info"
expect_in "$TEST_TMP/acpi" "Brought up 1 node, 2 CPUs" "both CPUs up through the MADT"
expect_in "$TEST_TMP/acpi" "PCI Root Bridge \[PCI0\]" "PCI host bridge from the DSDT"
expect_in "$TEST_TMP/acpi" "CROSSCHECK: userland up" "initrd unpacked, /init ran"
expect_in "$TEST_TMP/acpi" "Preparing to enter system sleep state S5" "poweroff goes through ACPI S5"

# The MP table path (acpi=off) needs CONFIG_X86_MPPARSE, which Debian's generic kernel has.
if [ -r "$GUEST/vmlinuz-amd64" ]; then
    run mptable --cpus 2 --acpi-off "$GUEST/vmlinuz-amd64"
    expect_in "$TEST_TMP/mptable" "found SMP MP-table at \[mem 0x0009fc00" "MP floating pointer in the EBDA"
    expect_in "$TEST_TMP/mptable" "Brought up 1 node, 2 CPUs" "both CPUs up through the MP table"
fi

# The emu backend's platform: no APICs described, 8259 PIC only.
run pic --cpus 1 --no-apic "$GUEST/vmlinuz"
expect_in "$TEST_TMP/pic" "CROSSCHECK: userland up, 1 CPUs" "PIC-only platform boots"
