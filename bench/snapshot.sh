#!/bin/bash
# snapshot: time vm.snapshot and vm.restore and measure the snapshot size for a 256 MiB and a
# 1 GiB guest (emu backend, Debian's kernel, a busybox initramfs that fills part of its RAM with
# non-zero data: tests/guest/snapshot_fill.sh), through vmd and vmctl like a user would.
# Reported per size: the save (VM running -> paused -> saved -> running), restore of the
# running VM (paused, RAM/CPU/devices/disk replaced, resumed), restore of a stopped VM (a new
# worker: machine created, then the snapshot loaded before the first instruction), vm.snap size.
#
# usage: bench/snapshot.sh [SIZES_MIB...]   (default: 256 1024)
# Needs .cache/guest (scripts/fetch-guest-assets.sh); builds the release binaries if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(256 1024)
[ -s .cache/guest/vmlinuz ] || scripts/fetch-guest-assets.sh
R=build/release/bin # the release build, as the other benchmarks use (build/bin may be missing or another flavour)
[ -x $R/vmd ] && [ -x $R/vmd-worker ] && [ -x $R/vmctl ] || make -s -j"$(nproc)" BUILD=release build > /dev/null
work=$(mktemp -d "${TMPDIR:-/tmp}/snap-bench.XXXXXX")
vmd_pid=
cleanup() {
    for p in "$work"/state/vms/*/worker.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
    [ -n "$vmd_pid" ] && kill "$vmd_pid" 2>/dev/null
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export VMD_SOCKET=unix:$work/vmd.sock
$R/vmd --state-dir "$work/state" --socket "$work/vmd.sock" --worker $R/vmd-worker \
    > "$work/vmd.log" 2>&1 &
vmd_pid=$!
for _ in $(seq 50); do [ -S "$work/vmd.sock" ] && break; sleep 0.1; done
scripts/mkinitramfs.sh "$work/fill.cpio.gz" --script tests/guest/snapshot_fill.sh > /dev/null 2>&1
V=$R/vmctl
now() { date +%s.%N; }
secs() { python3 -c "print('%.2f' % ($2 - $1))"; }

printf '%-8s %-9s %10s %10s %12s %14s\n' "guest" "filled" "vm.snap" "save s" "restore s" "restore(stop) s"
for mib in "${sizes[@]}"; do
    fill=$((mib / 2))
    name=b$mib
    "$V" create "$name" --kernel "$PWD/.cache/guest/vmlinuz" --initrd "$work/fill.cpio.gz" --accel emu --memory "$mib" \
        --cmdline "console=ttyS0 quiet vmd.fill=$fill" > /dev/null
    "$V" start "$name" > /dev/null
    log=$work/state/vms/$name/console.log
    for _ in $(seq 600); do grep -q "VMD-GUEST: filled" "$log" 2>/dev/null && break; sleep 1; done
    grep -q "VMD-GUEST: filled" "$log" || { echo "snapshot: guest $name did not fill its memory" >&2; tail -5 "$log" >&2; exit 1; }
    t0=$(now); "$V" snapshot "$name" s > /dev/null 2>&1; t1=$(now)
    size=$(stat -c %s "$work/state/vms/$name/snapshots/s/vm.snap")
    t2=$(now); "$V" restore "$name" s > /dev/null 2>&1; t3=$(now)
    "$V" stop --force "$name" > /dev/null
    t4=$(now); "$V" restore "$name" s > /dev/null 2>&1; t5=$(now)
    "$V" stop --force "$name" > /dev/null
    printf '%-8s %-9s %10s %10s %12s %14s\n' "${mib}MiB" "${fill}MiB" "$((size >> 20))MiB" "$(secs "$t0" "$t1")" \
        "$(secs "$t2" "$t3")" "$(secs "$t4" "$t5")"
    "$V" snapshot-delete "$name" s > /dev/null
    "$V" delete "$name" > /dev/null
done
echo "(wall seconds through vmctl -> vmd -> worker, including vmctl's connect; host $(nproc) cores, shared)"
