#!/bin/bash
# qcow2-ab: vmd's qcow2 driver against raw on the same platform, alternating, ROUNDS times (default
# 3): the guest of bench/virtio.sh (iobench disk, 64 MiB, O_DIRECT) under the emulator's APIC
# platform with a fresh 128 MiB disk each run, raw (truncate) or qcow2 (vmctl disk create, so the
# sequential write allocates every cluster). Prints each run's figures, then the means and
# qcow2/raw. Alternating runs share the machine's load, which moves the figures more than the format.
set -u
cd "$(dirname "$0")/.."
GUEST=$PWD/.cache/guest
VMCTL=${VMCTL:-$PWD/build/bin/vmctl}
scripts/fetch-guest-assets.sh > /dev/null || exit 1
tmp=$(mktemp -d /tmp/vmd-qcow2-ab.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
gcc -O2 -static -o "$tmp/iobench" bench/guest/iobench.c || exit 1
printf '/iobench disk /dev/vda 64\n' > "$tmp/guest.sh"
scripts/mkinitramfs.sh "$tmp/bench.cpio.gz" --script "$tmp/guest.sh" --add "$tmp/iobench:/iobench" \
    --modules-dir "$GUEST/modules-cloud" --modules "virtio_pci virtio_blk" > /dev/null || exit 1
for round in $(seq "${ROUNDS:-3}"); do
    for fmt in raw qcow2; do
        rm -f "$tmp/disk"
        if [ $fmt = raw ]; then truncate -s 128M "$tmp/disk"; else "$VMCTL" disk create --size 128M "$tmp/disk" > /dev/null || exit 1; fi
        timeout 600 "$VMCTL" run --accel emu --irqchip apic --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$tmp/bench.cpio.gz" \
            --disk "$tmp/disk,format=$fmt" --cmdline "console=ttyS0 quiet" < /dev/null 2>&1 | tr -d '\r' |
            sed -n "s/^BENCH: \([a-z0-9-]*\) \([0-9.]*\) .*/$fmt \1 \2/p" | tee -a "$tmp/all"
    done
done
echo
awk '{ sum[$1 " " $2] += $3; n[$1 " " $2]++ }
     END { split("seq-write seq-read rand-read-4k rand-write-4k", m, " ");
           printf "%-16s %10s %10s %9s\n", "mean", "raw", "qcow2", "qcow2/raw";
           for (i = 1; i <= 4; i++) { r = sum["raw " m[i]] / n["raw " m[i]]; q = sum["qcow2 " m[i]] / n["qcow2 " m[i]];
               printf "%-16s %10.1f %10.1f %9.2f\n", m[i], r, q, q / r } }' "$tmp/all"
