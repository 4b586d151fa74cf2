#!/bin/bash
# emu-boot: time boot-to-poweroff of Debian's cloud kernel with a busybox initramfs under
# `vmctl run --accel emu` and under `qemu-system-x86_64 -M pc -accel tcg` (the reference), in one
# run, and print both and their ratio. Then the same kernel with an i386 (32-bit) busybox as init,
# whose userspace runs in compatibility mode, and Debian's 32-bit kernel (686-pae, the 32-bit boot
# protocol) with that busybox (busybox-static:i386 and linux-image-686-pae,
# `scripts/fetch-guest-assets.sh i386`; left out with a note when they cannot be fetched).
#
# usage: bench/emu-boot.sh [RUNS]   (default 1 run each; the best time is reported)
# Needs .cache/guest/vmlinuz (scripts/fetch-guest-assets.sh) and build/release/bin/vmctl (make).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
kernel=.cache/guest/vmlinuz
vmctl=build/release/bin/vmctl
[ -s "$kernel" ] || scripts/fetch-guest-assets.sh
[ -x "$vmctl" ] || { echo "emu-boot: build vmctl first (make)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "emu-boot: qemu-system-x86_64 missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/emu-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'echo bench-userspace-ok\n' > "$work/test.sh"
scripts/mkinitramfs.sh "$work/initramfs.cpio.gz" --script "$work/test.sh" >/dev/null
i386=""
if scripts/fetch-guest-assets.sh i386 >/dev/null; then
    scripts/mkinitramfs.sh "$work/initramfs-i386.cpio.gz" --script "$work/test.sh" \
        --busybox .cache/guest/busybox-i386 >/dev/null
    i386=1
else
    echo "emu-boot: no busybox-static:i386: the 32-bit userspace rows are left out" >&2
fi
cmdline="console=ttyS0 quiet"

bench=emu-boot
. bench/lib.sh # run NAME CMD...: "WALL CPU" of the best of $runs runs

read -r qemu qemu_cpu < <(run qemu qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
    -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" -append "$cmdline")
read -r emu emu_cpu < <(run emu "$vmctl" run --accel emu --memory 256 --kernel "$kernel" \
    --initrd "$work/initramfs.cpio.gz" --cmdline "$cmdline")
# the same on the emulator's APIC platform (local APIC, IOAPIC, MSI-X: what QEMU's -M pc gives)
read -r apic apic_cpu < <(run apic "$vmctl" run --accel emu --irqchip apic --memory 256 --kernel "$kernel" \
    --initrd "$work/initramfs.cpio.gz" --cmdline "$cmdline")
[ -n "$qemu" ] && [ -n "$emu" ] && [ -n "$apic" ] || exit 1
printf '%-20s %8s %8s\n' "boot to poweroff" "wall s" "cpu s"
printf '%-20s %8.2f %8.2f\n' "qemu-tcg (-M pc)" "$qemu" "$qemu_cpu"
printf '%-20s %8.2f %8.2f\n' "vmd emu" "$emu" "$emu_cpu"
printf '%-20s %8.2f %8.2f\n' "vmd emu (apic)" "$apic" "$apic_cpu"
printf '%-20s %8.2f %8.2f\n' "ratio emu/qemu" "$(echo "$emu / $qemu" | bc -l)" "$(echo "$emu_cpu / $qemu_cpu" | bc -l)"
printf '%-20s %8.2f %8.2f\n' "ratio apic/qemu" "$(echo "$apic / $qemu" | bc -l)" "$(echo "$apic_cpu / $qemu_cpu" | bc -l)"
[ -n "$i386" ] || exit 0
read -r qemu32 qemu32_cpu < <(run qemu32 qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
    -kernel "$kernel" -initrd "$work/initramfs-i386.cpio.gz" -append "$cmdline")
read -r emu32 emu32_cpu < <(run emu32 "$vmctl" run --accel emu --memory 256 --kernel "$kernel" \
    --initrd "$work/initramfs-i386.cpio.gz" --cmdline "$cmdline")
[ -n "$qemu32" ] && [ -n "$emu32" ] || exit 1
printf '%-20s %8.2f %8.2f\n' "qemu-tcg, i386 init" "$qemu32" "$qemu32_cpu"
printf '%-20s %8.2f %8.2f\n' "vmd emu, i386 init" "$emu32" "$emu32_cpu"
printf '%-20s %8.2f %8.2f\n' "ratio (i386 init)" "$(echo "$emu32 / $qemu32" | bc -l)" "$(echo "$emu32_cpu / $qemu32_cpu" | bc -l)"
k32=.cache/guest/vmlinuz-686-pae
read -r qemuk32 qemuk32_cpu < <(run qemuk32 qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
    -kernel "$k32" -initrd "$work/initramfs-i386.cpio.gz" -append "$cmdline")
read -r emuk32 emuk32_cpu < <(run emuk32 "$vmctl" run --accel emu --memory 256 --kernel "$k32" \
    --initrd "$work/initramfs-i386.cpio.gz" --cmdline "$cmdline")
[ -n "$qemuk32" ] && [ -n "$emuk32" ] || exit 1
printf '%-20s %8.2f %8.2f\n' "qemu-tcg, 686-pae" "$qemuk32" "$qemuk32_cpu"
printf '%-20s %8.2f %8.2f\n' "vmd emu, 686-pae" "$emuk32" "$emuk32_cpu"
printf '%-20s %8.2f %8.2f\n' "ratio (686-pae)" "$(echo "$emuk32 / $qemuk32" | bc -l)" "$(echo "$emuk32_cpu / $qemuk32_cpu" | bc -l)"
