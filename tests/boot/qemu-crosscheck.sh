#!/bin/bash
# qemu-crosscheck: boot a real Linux kernel under QEMU TCG from the exact memory image
# vmd's direct-boot code (vmm/boot/) produces, to check the zero page, e820 map, page
# tables, GDT, ACPI and MP tables against a real kernel independently of vmd's own CPU
# backends. A tiny real-mode trampoline stands in for the BIOS (see bootdump.c, tramp.S).
#
# usage: tests/boot/qemu-crosscheck.sh [--cpus N] [--memory MIB] [--acpi-off] [--no-apic] [KERNEL]
# Needs: build/release/libvmm.a (make), qemu-system-x86_64, busybox-static, cpio.
# Prints the guest's boot lines that matter and PASS/FAIL; exit status 0 on PASS, 77 on SKIP.
set -u
cd "$(dirname "$0")/../.."
cpus=2 mem=256 extra="" apic=1
kernel=.cache/guest/vmlinuz
while [ $# -gt 0 ]; do
    case $1 in
    --cpus) cpus=$2; shift ;;
    --memory) mem=$2; shift ;;
    --acpi-off) extra="$extra acpi=off" ;;
    --no-apic) apic=0 ;;
    *) kernel=$1 ;;
    esac
    shift
done
[ -r "$kernel" ] || { echo "SKIP: no kernel at $kernel (make assets)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 77; }
busybox=$(command -v busybox || echo /bin/busybox)
[ -x "$busybox" ] || { echo "SKIP: busybox not installed"; exit 77; }
[ -f build/release/libvmm.a ] || { echo "build first: make"; exit 1; }

out=${CROSSCHECK_OUT:-build/crosscheck} # the integration test gives each run its own
rm -rf "$out" && mkdir -p "$out/rootfs/bin" "$out/rootfs/proc" "$out/rootfs/sys" "$out/rootfs/dev"
as --64 -o "$out/tramp.o" tests/boot/tramp.S && objcopy -O binary "$out/tramp.o" "$out/tramp.bin" || exit 1
# libvmm.a's objects that bootdump pulls in need zlib (the snapshot code, through the device models)
cc -std=gnu11 -D_GNU_SOURCE -I. -o "$out/bootdump" tests/boot/bootdump.c build/release/libvmm.a -lpthread -lz || exit 1

cp "$busybox" "$out/rootfs/bin/busybox"
for c in sh mount cat poweroff grep ls; do ln -sf busybox "$out/rootfs/bin/$c"; done
cat >"$out/rootfs/init" <<'INIT'
#!/bin/sh
mount -t proc proc /proc
echo "CROSSCHECK: userland up, $(grep -c ^processor /proc/cpuinfo) CPUs"
echo "CROSSCHECK: cmdline $(cat /proc/cmdline)"
poweroff -f
INIT
chmod +x "$out/rootfs/init"
(cd "$out/rootfs" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$out/initrd.gz"

# apic=0 is the emu backend's platform (PIC only): QEMU still has APICs, so tell Linux not to use them.
[ "$apic" = 0 ] && extra="$extra noapic nolapic"
cmdline="console=ttyS0 panic=-1$extra"
"$out/bootdump" "$kernel" "$out/initrd.gz" "$cmdline" "$mem" "$cpus" "$apic" "$out/tramp.bin" "$out" >"$out/dump.txt" || exit 1
rd=$(sed -n 's/^initrd=//p' "$out/dump.txt")

start=$(date +%s)
qemu-system-x86_64 -machine pc -accel tcg -m "$mem" -smp "$cpus" -bios "$out/bios.bin" -nodefaults -vga none \
    -display none -serial "file:$out/serial.log" -no-reboot \
    -device loader,file="$out/low.bin",addr=0,force-raw=on \
    -device loader,file="$out/kernel.bin",addr=0x100000,force-raw=on \
    -device loader,file="$out/initrd.bin",addr="$rd",force-raw=on &
qpid=$!
for _ in $(seq 1 180); do
    sleep 1
    grep -q "Power down\|System halted\|Kernel panic\|end trace" "$out/serial.log" 2>/dev/null && break
    kill -0 $qpid 2>/dev/null || break
done
kill $qpid 2>/dev/null
wait $qpid 2>/dev/null
echo "guest ran $(($(date +%s) - start)) s (QEMU TCG); log: $out/serial.log"
grep -a "BIOS-e820\|ACPI: RSDP\|ACPI: FACP\|ACPI: DSDT\|ACPI: APIC\|MP-table\|PM: (supports\|Brought up\|TIMER:\|Console: colour\|PCI Root Bridge\|Unpacking\|CROSSCHECK\|S5\|Power down\|System halted\|Kernel panic" "$out/serial.log"
want_cpus=$cpus
[ "$apic" = 0 ] && want_cpus=1
if grep -aq "CROSSCHECK: userland up, $want_cpus CPUs" "$out/serial.log"; then
    echo PASS
else
    echo FAIL
    exit 1
fi
