#!/bin/bash
# firmware-boot: time firmware -> boot loader -> kernel -> busybox shell -> poweroff of a disk image
# with no --kernel, under `vmctl run --accel emu --firmware bios-256k.bin` and under
# `qemu-system-x86_64 -M pc -accel tcg -drive if=virtio` (the reference, with the same Debian
# SeaBIOS), in one run: the SYSLINUX and the GRUB i386-pc images of scripts/mkboot-image.sh
# holding Debian's cloud kernel and a busybox initramfs. Prints wall and CPU seconds and the ratio.
#
# usage: bench/firmware-boot.sh [RUNS]   (default 3 runs each; the best wall time is reported)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
kernel=.cache/guest/vmlinuz
bios=/usr/share/seabios/bios-256k.bin
vmctl=build/release/bin/vmctl
[ -s "$kernel" ] || scripts/fetch-guest-assets.sh
[ -x "$vmctl" ] || make -s BUILD=release build
[ -r "$bios" ] || { echo "firmware-boot: $bios missing (scripts/deps.sh)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "firmware-boot: qemu-system-x86_64 missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/firmware-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'echo bench-userspace-ok\n' > "$work/test.sh"
scripts/mkinitramfs.sh "$work/init.cpio.gz" --script "$work/test.sh" >/dev/null

bench=firmware-boot
. bench/lib.sh # run NAME CMD...: "WALL CPU" of the best of $runs runs

printf '%-10s %12s %12s %12s %12s %8s\n' image "vmd wall s" "vmd cpu s" "qemu wall s" "qemu cpu s" "vmd/qemu"
for loader in syslinux grub; do
    img=$work/$loader.img
    scripts/mkboot-image.sh $loader "$img" --kernel "$kernel" --initrd "$work/init.cpio.gz" \
        --cmdline "console=ttyS0 quiet" >/dev/null
    read -r q qc < <(run "qemu-$loader" qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot -nic none \
        -bios "$bios" -drive "file=$img,format=raw,if=virtio,snapshot=on")
    read -r v vc < <(run "vmd-$loader" "$vmctl" run --accel emu --memory 256 --firmware "$bios" --disk "$img,readonly")
    printf '%-10s %12s %12s %12s %12s %8.2f\n' "$loader" "$v" "$vc" "$q" "$qc" "$(echo "$v / $q" | bc -l)"
done
echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
