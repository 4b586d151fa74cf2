#!/bin/bash
# vnc-latency: time from a write on the guest's console to a VNC viewer receiving the update.
# The guest (under vmd's emulator) copies lines from its serial console to its VGA console; a
# libvncclient viewer (tests/tools/vnclatency) times each line from the moment it is written
# into the serial console until its glyphs are in the viewer's framebuffer. The path includes
# the guest's tty and vgacon, vmd's 30 Hz text renderer (at most ~33 ms) and libvncserver.
set -u
cd "$(dirname "$0")/.."
GUEST=$PWD/.cache/guest
VMCTL=$PWD/build/bin/vmctl
TOOL=$PWD/build/release/tools/vnclatency
scripts/fetch-guest-assets.sh > /dev/null || exit 1
[ -x "$VMCTL" ] && [ -x "$TOOL" ] || { echo "vnc-latency: build first (make)"; exit 1; }
tmp=$(mktemp -d /tmp/vmd-vnc-bench.XXXXXX)
trap 'kill $vm 2>/dev/null; rm -rf "$tmp"' EXIT
scripts/mkinitramfs.sh "$tmp/echo.cpio.gz" --script bench/guest/vnc_echo.sh > /dev/null || exit 1
mkfifo "$tmp/serial"
"$VMCTL" run --accel emu --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$tmp/echo.cpio.gz" --vnc 127.0.0.1:0 \
    --cmdline "console=ttyS0 quiet" < "$tmp/serial" > "$tmp/vm.log" 2>&1 &
vm=$!
exec 9> "$tmp/serial" # keep the FIFO open for the VM while the tool writes
for _ in $(seq 600); do grep -q "GUEST: echo ready" "$tmp/vm.log" && break; sleep 0.5; done
addr=$(sed -n 's/.*vnc: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$tmp/vm.log" | head -1)
[ -n "$addr" ] || { tail "$tmp/vm.log"; exit 1; }
"$TOOL" "$addr" "$tmp/serial" 30
rc=$?
echo quit >&9
wait $vm
exit $rc
