#!/bin/bash
# demo (make demo): boot Debian's cloud kernel with a busybox initramfs under vmctl run, on this terminal.
# On a terminal you get an interactive shell in the guest: Ctrl-A x quits vmctl, `poweroff -f` in the
# guest shuts it down. Without a terminal (CI, pipes) a scripted guest prints what it sees and powers off.
# usage: scripts/demo.sh [--scripted]     env: DEMO_ACCEL=auto|kvm|emu (default auto), DEMO_MEMORY=MiB
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
VMCTL=build/bin/vmctl
accel=${DEMO_ACCEL:-auto}
memory=${DEMO_MEMORY:-256}
scripted=0
[ "${1:-}" = --scripted ] && scripted=1
[ -t 0 ] && [ -t 1 ] || scripted=1
[ -x $VMCTL ] || { echo "demo: $VMCTL is not built (run make)" >&2; exit 1; }
scripts/fetch-guest-assets.sh
mkdir -p .cache/demo
args=(run --accel "$accel" --memory "$memory" --kernel .cache/guest/vmlinuz)
if [ $scripted = 0 ]; then
    scripts/mkinitramfs.sh .cache/demo/interactive.cpio.gz
    cat <<MSG
demo: booting $(sed -n 's/^cloud-kernel //p' .cache/guest/VERSIONS) with a busybox shell ($memory MiB, --accel $accel).
demo: in the guest, 'poweroff -f' shuts the VM down; Ctrl-A x quits vmctl at any time.
MSG
    exec $VMCTL "${args[@]}" --initrd .cache/demo/interactive.cpio.gz --cmdline "console=ttyS0"
fi
scripts/mkinitramfs.sh .cache/demo/scripted.cpio.gz --script tests/guest/demo-scripted.sh
echo "demo: no terminal, so the guest runs a script and powers off (run 'make demo' in a terminal for a shell)"
echo "demo: $VMCTL ${args[*]} --initrd .cache/demo/scripted.cpio.gz --cmdline 'console=ttyS0 quiet'"
rc=0
timeout "${DEMO_TIMEOUT:-600}" $VMCTL "${args[@]}" --initrd .cache/demo/scripted.cpio.gz \
    --cmdline "console=ttyS0 quiet" < /dev/null || rc=$?
case $rc in
    0) echo "demo: the guest powered off; vmctl exited 0" ;;
    124) echo "demo: the guest did not power off within ${DEMO_TIMEOUT:-600}s" >&2 ;;
    *) echo "demo: vmctl exited $rc" >&2 ;;
esac
exit $rc
