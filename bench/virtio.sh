#!/bin/bash
# virtio: disk and network throughput inside the same guest (Debian cloud kernel, busybox
# initramfs, a static benchmark program), under vmd's emulator and under QEMU TCG with the same
# virtio-blk and virtio-net (user-mode networking) devices, printed side by side.
#   disk: sequential 1 MiB write/read and random 4 KiB read/write IOPS, O_DIRECT, 64 MiB of a raw image
#   net:  64 MiB guest-to-host over one TCP connection through slirp (QEMU: -netdev user)
# Then the disk figures once more on qcow2 images (vmd's qcow2 driver on an image from vmctl disk
# create, QEMU's on one from qemu-img create; both empty, 64 KiB clusters, so the writes allocate),
# side by side with raw on the same platform (emu APIC / QEMU -M pc): QCOW2=0 skips that part.
# Figures are measured inside the guest with its own clock.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
GUEST=$ROOT/.cache/guest
# VMCTL=path/to/vmctl compares another build; by default the release build's (made here if missing)
if [ -z "${VMCTL:-}" ]; then
    VMCTL=$ROOT/build/release/bin/vmctl
    [ -x "$VMCTL" ] || make -s -j"$(nproc)" BUILD=release build > /dev/null
fi
scripts/fetch-guest-assets.sh > /dev/null || exit 1
[ -x "$VMCTL" ] || { echo "virtio bench: build vmctl first (make)"; exit 1; }
tmp=$(mktemp -d /tmp/vmd-virtio-bench.XXXXXX)
trap 'kill $recv 2>/dev/null; rm -rf "$tmp"' EXIT
gcc -O2 -static -o "$tmp/iobench" bench/guest/iobench.c || exit 1
scripts/mkinitramfs.sh "$tmp/bench.cpio.gz" --script bench/guest/virtio_bench.sh --add "$tmp/iobench:/iobench" \
    --modules-dir "$GUEST/modules-cloud" --modules "virtio_pci virtio_blk virtio_net" > /dev/null || exit 1
port=$((40000 + RANDOM % 10000))
# Receiver: accept connections one after the other, read each to EOF, close.
python3 - "$port" <<'PY' > /dev/null 2>&1 &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
while True:
    c, _ = s.accept()
    while c.recv(1 << 20):
        pass
    c.close()
PY
recv=$!
run() { # NAME LOG CMD...
    local name=$1 log=$2; shift 2
    truncate -s 128M "$tmp/disk-$name.img"
    timeout 1200 "$@" < /dev/null > "$log" 2>&1
}
# the emulator's i8259-only platform (--irqchip pic): virtio interrupts are INTx there
run vmd "$tmp/vmd.log" "$VMCTL" run --accel emu --irqchip pic --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$tmp/bench.cpio.gz" \
    --disk "$tmp/disk-vmd.img" --net slirp --cmdline "console=ttyS0 quiet vmd.hostport=$port"
# the emulator's APIC platform: virtio interrupts are MSI-X there, as under QEMU's -M pc
run apic "$tmp/apic.log" "$VMCTL" run --accel emu --irqchip apic --memory 256 --kernel "$GUEST/vmlinuz" \
    --initrd "$tmp/bench.cpio.gz" --disk "$tmp/disk-apic.img" --net slirp --cmdline "console=ttyS0 quiet vmd.hostport=$port"
if [ "${QCOW2:-1}" = 1 ]; then
    rm -f "$tmp/disk-vmdq.img"
    "$VMCTL" disk create --size 128M "$tmp/disk-vmdq.qcow2" > /dev/null || exit 1
    timeout 1200 "$VMCTL" run --accel emu --irqchip apic --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$tmp/bench.cpio.gz" \
        --disk "$tmp/disk-vmdq.qcow2,format=qcow2" --net slirp --cmdline "console=ttyS0 quiet vmd.hostport=$port" \
        < /dev/null > "$tmp/vmdq.log" 2>&1
fi
if [ "${QCOW2:-1}" = 1 ] && command -v qemu-system-x86_64 > /dev/null && command -v qemu-img > /dev/null; then
    qemu-img create -q -f qcow2 "$tmp/disk-qemuq.qcow2" 128M
    timeout 1200 qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
        -kernel "$GUEST/vmlinuz" -initrd "$tmp/bench.cpio.gz" -append "console=ttyS0 quiet vmd.hostport=$port" \
        -drive "file=$tmp/disk-qemuq.qcow2,if=none,id=d0,format=qcow2,cache=none" -device virtio-blk-pci,drive=d0 \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0 < /dev/null > "$tmp/qemuq.log" 2>&1
else
    echo "no qcow2 runs" > "$tmp/qemuq.log"
fi
if command -v qemu-system-x86_64 > /dev/null; then
    run qemu "$tmp/qemu.log" qemu-system-x86_64 -M pc -accel tcg -m 256 -nographic -no-reboot \
        -kernel "$GUEST/vmlinuz" -initrd "$tmp/bench.cpio.gz" -append "console=ttyS0 quiet vmd.hostport=$port" \
        -drive "file=$tmp/disk-qemu.img,if=none,id=d0,format=raw,cache=none" -device virtio-blk-pci,drive=d0 \
        -netdev user,id=n0 -device virtio-net-pci,netdev=n0
else
    echo "qemu-system-x86_64 not installed: no reference column" > "$tmp/qemu.log"
fi
value() { tr -d '\r' < "$1" | sed -n "s/^BENCH: $2 \([0-9.]*\) .*/\1/p" | tail -1; }
printf '%-26s %10s %10s %10s %9s %10s\n' "virtio (in the guest)" "emu pic" "emu apic" "QEMU TCG" "pic/QEMU" "apic/QEMU"
ratio() { awk -v a="${1:-0}" -v b="${2:-0}" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", a / b; else print "-" }'; }
for m in "seq-write MiB/s" "seq-read MiB/s" "rand-read-4k IOPS" "rand-write-4k IOPS" "tcp-guest-to-host MiB/s"; do
    set -- $m
    a=$(value "$tmp/vmd.log" "$1"); c=$(value "$tmp/apic.log" "$1"); b=$(value "$tmp/qemu.log" "$1")
    printf '%-26s %10s %10s %10s %9s %10s\n' "$1 ($2)" "${a:--}" "${c:--}" "${b:--}" "$(ratio "$a" "$b")" "$(ratio "$c" "$b")"
done
if [ "${QCOW2:-1}" = 1 ]; then
    echo
    printf '%-26s %10s %10s %9s %10s %10s %9s\n' "disk format" "emu raw" "emu qcow2" "q/raw" "QEMU raw" "QEMU qcow2" "q/raw"
    for m in "seq-write MiB/s" "seq-read MiB/s" "rand-read-4k IOPS" "rand-write-4k IOPS"; do
        set -- $m
        a=$(value "$tmp/apic.log" "$1"); q=$(value "$tmp/vmdq.log" "$1")
        b=$(value "$tmp/qemu.log" "$1"); r=$(value "$tmp/qemuq.log" "$1")
        printf '%-26s %10s %10s %9s %10s %10s %9s\n' "$1 ($2)" "${a:--}" "${q:--}" "$(ratio "$q" "$a")" "${b:--}" "${r:--}" "$(ratio "$r" "$b")"
    done
fi
[ -n "$(value "$tmp/vmd.log" seq-read)" ] || { echo "vmd run produced no figures; last lines:"; tail -20 "$tmp/vmd.log"; exit 1; }
