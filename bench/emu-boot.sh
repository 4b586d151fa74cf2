#!/bin/bash
# emu-boot: time boot-to-poweroff of Debian's cloud kernel with a busybox initramfs under
# `vmctl run --accel emu` and under `qemu-system-x86_64 -M pc -accel tcg` (the reference), in one
# run, and print both and their ratio.
#
# usage: bench/emu-boot.sh [RUNS]   (default 1 run each; the best time is reported)
# Needs .cache/guest/vmlinuz (scripts/fetch-guest-assets.sh) and build/bin/vmctl (make).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
kernel=.cache/guest/vmlinuz
vmctl=build/bin/vmctl
[ -s "$kernel" ] || scripts/fetch-guest-assets.sh
[ -x "$vmctl" ] || { echo "emu-boot: build vmctl first (make)" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "emu-boot: qemu-system-x86_64 missing" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/emu-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf 'echo bench-userspace-ok\n' > "$work/test.sh"
scripts/mkinitramfs.sh "$work/initramfs.cpio.gz" --script "$work/test.sh" >/dev/null
cmdline="console=ttyS0 quiet"

# run NAME CMD...: best wall time in seconds over $runs runs; fails if userspace never ran
run() {
    local name=$1 best="" t0 t1 t
    shift
    for _ in $(seq "$runs"); do
        t0=$(date +%s.%N)
        if ! timeout 600 "$@" </dev/null >"$work/$name.log" 2>&1; then
            echo "emu-boot: $name failed (exit $?); last output:" >&2
            tail -5 "$work/$name.log" >&2
            return 1
        fi
        t1=$(date +%s.%N)
        grep -q bench-userspace-ok "$work/$name.log" || { echo "emu-boot: $name: userspace did not run" >&2; return 1; }
        t=$(echo "$t1 - $t0" | bc -l)
        if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
    done
    echo "$best"
}

qemu=$(run qemu qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
    -kernel "$kernel" -initrd "$work/initramfs.cpio.gz" -append "$cmdline")
emu=$(run emu "$vmctl" run --accel emu --memory 256 --kernel "$kernel" \
    --initrd "$work/initramfs.cpio.gz" --cmdline "$cmdline")
printf 'qemu-tcg (-M pc): %6.2f s\n' "$qemu"
printf 'vmd emu:          %6.2f s\n' "$emu"
printf 'ratio emu/qemu:   %6.2f\n' "$(echo "$emu / $qemu" | bc -l)"
