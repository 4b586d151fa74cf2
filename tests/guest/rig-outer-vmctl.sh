# Outer guest of the nested KVM rig (runs as /test.sh in the QEMU TCG + nested SVM guest):
# checks /dev/kvm, then boots the inner guest with vmd's own vmctl on /dev/kvm.
# /rig/env (written by scripts/nested-rig.sh) sets INNER_CMDLINE, INNER_MEMORY, VMCTL_TIMEOUT, VMCTL_ARGS.
. /rig/env
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
if [ ! -c /dev/kvm ]; then
    echo "RIG: no /dev/kvm"
    dmesg | grep -iE 'kvm|svm' | sed 's/^/RIG: dmesg: /'
    exit 1
fi
echo "RIG: /dev/kvm ok ($(grep -c svm /proc/cpuinfo) vCPUs with svm)"
[ -f /rig/before.sh ] && . /rig/before.sh
read t0 _ < /proc/uptime
timeout "$VMCTL_TIMEOUT" vmctl run --accel kvm --memory "$INNER_MEMORY" --kernel /rig/vmlinuz \
    --initrd /rig/inner.cpio.gz --cmdline "$INNER_CMDLINE" $VMCTL_ARGS < /dev/null
rc=$?
read t1 _ < /proc/uptime
echo "RIG: vmctl exit $rc"
echo "RIG: vmctl seconds $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
[ -f /rig/after.sh ] && . /rig/after.sh
exit $rc
