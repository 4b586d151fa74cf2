#!/bin/bash
# nested-rig: run vmd's KVM backend against a stock Linux guest on a host without usable hardware
# virtualization (DESIGN.md section 5). QEMU (TCG, with nested SVM) boots Debian's linux-image-*-amd64
# as the "outer" guest; its initramfs loads irqbypass, kvm, ccp, kvm-amd, which gives it /dev/kvm,
# and then runs vmd's own vmctl (copied in with its shared libraries) to boot the "inner" guest:
# the Debian cloud kernel with a busybox initramfs. Everything both guests print goes to stdout.
#
# usage: scripts/nested-rig.sh [options]
#   --inner-script FILE   inner guest's test script (default tests/guest/inner-result.sh)
#   --outer-script FILE   outer guest's script (default tests/guest/rig-outer-vmctl.sh: vmctl run --accel kvm)
#   --inner-modules LIST  cloud-kernel modules the inner initramfs loads first (e.g. "virtio_pci virtio_blk")
#   --inner-cmdline STR   inner kernel command line (default "console=ttyS0 quiet panic=-1")
#   --inner-memory MIB    inner guest RAM (default 256)
#   --vmctl PATH          the vmctl to test (default build/bin/vmctl, the release build)
#   --vmctl-args STR      extra `vmctl run` options
#   --vmctl-timeout SEC   the outer guest kills each inner VMM run after SEC seconds (default 180)
#   --with-qemu           also copy qemu-system-x86_64, its libraries and microvm firmware into the outer guest
#   --add SRC:DST         extra file for the outer initramfs (repeatable); /rig/before.sh and /rig/after.sh,
#                         if added, are sourced by the default outer script before vmctl starts and after it exits
#   --timeout SEC         kill the outer QEMU after SEC seconds (default 600)
#   --hang-retries N      if the outer guest hangs (timeout before "RIG: vmctl exit" is printed: QEMU TCG's
#                         nested SVM has been seen to stall the whole outer guest), dump its registers and
#                         boot the rig again, up to N times (default 0). The output of a hung attempt is
#                         printed with a "hung-attempt| " prefix, so exact-line checks only see the last one.
#   --idle-timeout SEC    with --hang-retries: an attempt counts as hung as soon as the outer guest has printed
#                         nothing (console or --serial2) for SEC seconds, whatever --timeout says; then
#                         --timeout can be generous for a rig that is slow but progressing (a loaded host)
#   --keep DIR            keep the built initramfs images in DIR
#   --serial2 FILE        the outer guest's second serial port (/dev/ttyS1) writes to FILE (a way out for data)
#   --outer-cpu MODEL     the outer QEMU's -cpu (default qemu64,+svm,+npt; a restored snapshot needs
#                         every CPUID feature the guest saw where it was taken)
# Exit status: QEMU's (0 once the outer guest powered off), 124 on timeout.
# Markers: "RIG: /dev/kvm ok", "RIG: vmctl exit N", "RIG: vmctl seconds S" (outer), "INNER: ..." (inner).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
G=.cache/guest
inner_script=tests/guest/inner-result.sh
outer_script=tests/guest/rig-outer-vmctl.sh
inner_cmdline="console=ttyS0 quiet panic=-1"
inner_memory=256
inner_modules=""
vmctl=build/bin/vmctl
vmctl_args=""
vmctl_timeout=180
with_qemu=0
timeout_s=600
hang_retries=0
idle_timeout=0
keep=""
serial2=""
outer_cpu="qemu64,+svm,+npt"
adds=()
usage() { sed -n '8,30p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
        --inner-script) inner_script=$2; shift 2 ;;
        --outer-script) outer_script=$2; shift 2 ;;
        --inner-modules) inner_modules=$2; shift 2 ;;
        --inner-cmdline) inner_cmdline=$2; shift 2 ;;
        --inner-memory) inner_memory=$2; shift 2 ;;
        --vmctl) vmctl=$2; shift 2 ;;
        --vmctl-args) vmctl_args=$2; shift 2 ;;
        --vmctl-timeout) vmctl_timeout=$2; shift 2 ;;
        --with-qemu) with_qemu=1; shift ;;
        --add) adds+=(--add "$2"); shift 2 ;;
        --timeout) timeout_s=$2; shift 2 ;;
        --hang-retries) hang_retries=$2; shift 2 ;;
        --idle-timeout) idle_timeout=$2; shift 2 ;;
        --keep) keep=$2; shift 2 ;;
        --serial2) serial2=$2; shift 2 ;;
        --outer-cpu) outer_cpu=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "nested-rig: unknown option '$1'" >&2; usage ;;
    esac
done
die() { echo "nested-rig: $*" >&2; exit 1; }
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not installed (apt-get install qemu-system-x86)"
scripts/fetch-guest-assets.sh
[ -x "$vmctl" ] || die "vmctl '$vmctl' not built (run make)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmd-rig.XXXXXX")
trap 'rm -rf "$work"' EXIT

scripts/mkinitramfs.sh "$work/inner.cpio.gz" --script "$inner_script" \
    --modules-dir $G/modules-cloud --modules "$inner_modules"

cat > "$work/env" <<ENV
INNER_CMDLINE='$inner_cmdline'
INNER_MEMORY='$inner_memory'
VMCTL_TIMEOUT='$vmctl_timeout'
VMCTL_ARGS='$vmctl_args'
ENV

elfs=("$vmctl:/usr/bin/vmctl")
if [ $with_qemu = 1 ]; then
    elfs+=("$(command -v qemu-system-x86_64):/usr/bin/qemu-system-x86_64")
    # microvm's firmware (qboot) and the option ROMs QEMU loads for direct kernel boot.
    for f in bios-microvm.bin qboot.rom linuxboot_dma.bin linuxboot.bin kvmvapic.bin pvh.bin; do
        [ -e /usr/share/qemu/$f ] && adds+=(--add "$(readlink -f /usr/share/qemu/$f):/usr/share/qemu/$f")
    done
fi
while IFS= read -r a; do adds+=(--add "$a"); done < <(scripts/rig/elf-with-libs.sh "${elfs[@]}")

# The payload (kernel, libraries) is mostly compressed already: a plain cpio is quicker for TCG to unpack.
scripts/mkinitramfs.sh "$work/outer.cpio" --uncompressed --script "$outer_script" \
    --modules-dir $G/modules-amd64 --modules "irqbypass kvm ccp kvm-amd" \
    --add $G/vmlinuz:/rig/vmlinuz --add "$work/inner.cpio.gz:/rig/inner.cpio.gz" --add "$work/env:/rig/env" \
    "${adds[@]}"
if [ -n "$keep" ]; then mkdir -p "$keep" && cp "$work/inner.cpio.gz" "$work/outer.cpio" "$keep/"; fi

extra=()
[ -n "$serial2" ] && extra=(-serial "file:$serial2")
run_outer() {
    timeout --foreground -k 5 "$timeout_s" qemu-system-x86_64 -accel tcg -cpu "$outer_cpu" -m 2048 -smp 2 \
        -nographic -no-reboot -nic none -serial mon:stdio "${extra[@]}" -monitor none \
        -qmp "unix:$work/qmp,server=on,wait=off" \
        -kernel $G/vmlinuz-amd64 -initrd "$work/outer.cpio" \
        -append "console=ttyS0 quiet panic=1 oops=panic" < /dev/null
}
# Registers of every outer vCPU (through QMP), for the record when the outer guest hangs.
dump_outer_registers() {
    python3 - "$work/qmp" <<'PY' || true
import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); f = s.makefile("rw")
f.readline()
for cmd in ({"execute": "qmp_capabilities"},
            {"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}}):
    f.write(json.dumps(cmd) + "\n"); f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg: break
print(msg.get("return", msg))
PY
}
attempt=0
while :; do
    attempt=$((attempt + 1))
    rc=0
    if [ "$hang_retries" -eq 0 ]; then run_outer || rc=$?; break; fi
    # Watch the attempt: when its time is almost up and the outer guest has not finished, record
    # where its vCPUs are before timeout kills QEMU.
    ( sleep $((timeout_s > 10 ? timeout_s - 5 : timeout_s / 2)); dump_outer_registers > "$work/regs" 2>&1 ) &
    watcher=$!
    rm -f "$work/idle"
    idle_watcher=
    if [ "$idle_timeout" -gt 0 ]; then
        # No output for idle_timeout seconds: record the registers and end QEMU (QMP quit).
        (
            last=-1 changed=$SECONDS
            while sleep 5; do
                now=$(stat -c %s "$work/out" ${serial2:+"$serial2"} 2>/dev/null | awk '{ s += $1 } END { print s + 0 }') || now=-1
                [ "$now" = "$last" ] || { last=$now changed=$SECONDS; }
                if [ $((SECONDS - changed)) -ge "$idle_timeout" ]; then
                    echo "$idle_timeout" > "$work/idle"
                    dump_outer_registers > "$work/regs" 2>&1
                    python3 -c 'import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1]); f = s.makefile("rw"); f.readline()
for c in ({"execute": "qmp_capabilities"}, {"execute": "quit"}): f.write(json.dumps(c) + "\n"); f.flush(); f.readline()' \
                        "$work/qmp" > /dev/null 2>&1
                    break
                fi
            done
        ) &
        idle_watcher=$!
    fi
    run_outer > "$work/out" 2>&1 || rc=$?
    kill $watcher $idle_watcher 2>/dev/null || true; wait $watcher $idle_watcher 2>/dev/null || true
    if [ -f "$work/idle" ] && ! grep -q 'RIG: vmctl exit' "$work/out"; then
        rc=124 why="no output for $(cat "$work/idle")s"
    else
        why="no 'RIG: vmctl exit' within ${timeout_s}s"
    fi
    if [ $rc -eq 124 ] && ! grep -q 'RIG: vmctl exit' "$work/out" && [ $attempt -le "$hang_retries" ]; then
        sed 's/^/hung-attempt| /' "$work/out"
        echo "nested-rig: attempt $attempt: the outer guest hung ($why); its registers:"
        [ -f "$work/regs" ] && sed 's/^/hung-attempt| /' "$work/regs" | head -80
        echo "nested-rig: booting the rig again"
        continue
    fi
    cat "$work/out"
    break
done
exit $rc
