#!/bin/bash
# rpc-bench: the control plane's cost. Calls per second and p50/p99 latency of vm.list over mutual
# TLS with 1, 8 and 40 concurrent clients (bench/rpc_load.c), then the memory of vmd and of one
# worker beyond its guest RAM (RSS minus the resident part of the guest-RAM mapping), printed
# beside Firecracker's published figure (< 5 MiB of VMM memory overhead per microVM).
# Environment: CALLS (per client, default 2000), VMS (defined VMs listed by vm.list, default 10),
# SETTLE (seconds the VM runs before its memory is read, default 40: booted and idle).
set -eu
cd "$(dirname "$0")/.."
CALLS=${CALLS:-2000}
VMS=${VMS:-10}
B=build/bench
mkdir -p $B
# the release build (made here if missing), as the other benchmarks use: not build/bin, which may be
# missing or point at another flavour
R=build/release/bin
[ -x $R/vmd ] && [ -x $R/vmd-worker ] && [ -x $R/vmctl ] && [ -f build/release/librpc.a ] || make -s -j"$(nproc)" BUILD=release build > /dev/null
cc -O2 -std=gnu11 -D_GNU_SOURCE -I. -o $B/rpc_load bench/rpc_load.c build/release/librpc.a build/release/libvmm.a \
    $(pkg-config --libs libuv jansson openssl libvncserver slirp) -lpthread -lm -lz
T=$(mktemp -d /tmp/vmd-bench.XXXXXX)
VMD_PID=
cleanup() {
    for p in "$T"/state/vms/*/worker.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
    [ -n "$VMD_PID" ] && kill "$VMD_PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
(
    cd "$T"
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=bench CA" -keyout ca.key -out ca.crt 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile san.ext -out server.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=bench" -keyout client.key -out client.csr 2>/dev/null
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -out client.crt 2>/dev/null
)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$R/vmd --state-dir "$T/state" --socket "$T/vmd.sock" --listen 127.0.0.1:$PORT \
    --tls-cert "$T/server.crt" --tls-key "$T/server.key" --tls-ca "$T/ca.crt" 2> "$T/vmd.log" &
VMD_PID=$!
for _ in $(seq 100); do grep -q ready "$T/vmd.log" 2>/dev/null && break; sleep 0.05; done
export VMD_SOCKET=unix:$T/vmd.sock
KERNEL=.cache/guest/vmlinuz
[ -f "$KERNEL" ] || { head -c 4096 /dev/zero > "$T/kernel"; KERNEL=$T/kernel; }
for i in $(seq "$VMS"); do $R/vmctl create "bench$i" --kernel "$KERNEL" --accel emu --memory 64 > /dev/null; done

echo "vm.list over mutual TLS (TLS 1.3, $VMS VMs defined), $CALLS calls per client, $(nproc) host CPUs:"
printf "  %-8s %10s %10s %10s %8s\n" clients calls/s p50_us p99_us failed
for n in 1 8 40; do
    out=$($B/rpc_load --connect tls://127.0.0.1:$PORT --cert "$T/client.crt" --key "$T/client.key" --ca "$T/ca.crt" \
        --clients $n --calls "$CALLS")
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("  %-8d %10.0f %10.0f %10.0f %8d" % (r["clients"], r["calls_per_s"], r["p50_us"], r["p99_us"], r["failed"]))' "$out"
done

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon_kib() { awk '/^Anonymous:/ {s += $2} END {print s}' "/proc/$1/smaps"; }
echo
echo "memory:"
echo "  vmd RSS with $VMS VMs defined, after the load: $(rss_kib $VMD_PID) KiB (private anonymous $(anon_kib $VMD_PID) KiB)"
# one running VM: the worker's RSS beyond its guest RAM
INITRD=
if [ -x scripts/mkinitramfs.sh ] && [ -f .cache/guest/vmlinuz ]; then
    scripts/mkinitramfs.sh "$T/idle.cpio.gz" --script tests/guest/daemon_ticker.sh > /dev/null 2>&1 && INITRD="--initrd $T/idle.cpio.gz"
fi
$R/vmctl create idle --kernel "$KERNEL" $INITRD --accel emu --memory 256 > /dev/null
if $R/vmctl start idle > "$T/start.out" 2>&1; then
    sleep "${SETTLE:-40}" # long enough for the guest to boot to its idle ticker
    wp=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' < <($R/vmctl --json info idle))
    python3 - "$wp" 256 <<'PY'
import sys
pid, mib = int(sys.argv[1]), int(sys.argv[2])
rss = guest = anon = anon_guest = 0
size = None
for line in open("/proc/%d/smaps" % pid):
    parts = line.split()
    if "-" in parts[0] and len(parts) >= 5:
        a, b = (int(x, 16) for x in parts[0].split("-"))
        size = b - a
    elif parts[0] == "Rss:":
        kib = int(parts[1]); rss += kib
        if size == mib << 20:
            guest += kib
    elif parts[0] == "Anonymous:":
        kib = int(parts[1]); anon += kib
        if size == mib << 20:
            anon_guest += kib
print("  worker (256 MiB guest, emu, running): RSS %d KiB, of which guest RAM %d KiB -> VMM overhead %d KiB (%.1f MiB),"
      % (rss, guest, rss - guest, (rss - guest) / 1024))
print("    of which private anonymous memory %d KiB (%.1f MiB); the rest is shared library pages"
      % (anon - anon_guest, (anon - anon_guest) / 1024))
PY
    echo "  vmd RSS with one VM running: $(rss_kib $VMD_PID) KiB (private anonymous $(anon_kib $VMD_PID) KiB)"
else
    echo "  worker: the VM did not start on this build: $(tail -1 "$T/start.out")"
fi
echo "  Firecracker (published): < 5 MiB of VMM memory overhead per microVM"
