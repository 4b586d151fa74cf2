#!/bin/bash
# sandbox-rss: what the worker sandbox (docs/security.md) costs in memory. The same guest (emu,
# 128 MiB, busybox ticker initramfs) runs under vmd with the sandbox on and with --no-sandbox; after
# it has booted, the worker's VmRSS is read from /proc (3 runs each, median). Issue #18 asks that
# confinement cost at most 1 MiB. Needs root (vmd drops privileges only as root).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "sandbox-rss: needs root (skipped)"; exit 0; }
[ -x build/bin/vmd ] || make -s build
scripts/fetch-guest-assets.sh > /dev/null
getent passwd vmd > /dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin vmd
T=$(mktemp -d /tmp/vmd-bench.XXXXXX)
VMD=
cleanup() {
    local p
    for p in "$T"/state*/vms/*/worker.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2> /dev/null; done
    [ -n "$VMD" ] && kill "$VMD" 2> /dev/null
    rm -rf "$T"
    return 0
}
trap cleanup EXIT
scripts/mkinitramfs.sh "$T/t.cpio.gz" --script tests/guest/daemon_ticker.sh > /dev/null 2>&1
export VMD_SOCKET=unix:$T/s
rss() { # MODE-ARGS...: the worker's VmRSS in KiB once the guest ticks
    local st=$T/state$RANDOM
    build/bin/vmd --state-dir "$st" --socket "$T/s" --image-dir "$T" --image-dir "$PWD/.cache/guest" "$@" > "$T/log" 2>&1 &
    VMD=$!
    for _ in $(seq 100); do [ -S "$T/s" ] && break; sleep 0.05; done
    build/bin/vmctl create r --kernel .cache/guest/vmlinuz --initrd "$T/t.cpio.gz" --accel emu --memory 128 \
        --cmdline console=ttyS0 > /dev/null
    build/bin/vmctl start r > /dev/null
    for _ in $(seq 120); do grep -q tick "$st/vms/r/console.log" 2>/dev/null && break; sleep 0.5; done
    sleep 2
    local pid
    pid=$(cat "$st/vms/r/worker.pid")
    sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status"
    build/bin/vmctl stop --force r > /dev/null
    kill $VMD; wait $VMD 2>/dev/null || true
    rm -f "$T/s"
}
median() { sort -n | sed -n 2p; }
on=$(for _ in 1 2 3; do rss; done | median)
off=$(for _ in 1 2 3; do rss --no-sandbox; done | median)
echo "worker VmRSS, guest booted: sandbox ${on} KiB, --no-sandbox ${off} KiB, difference $((on - off)) KiB (issue #18: within 1024)"
