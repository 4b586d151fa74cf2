# Outer guest of the nested KVM rig for test_snapshot_kvm_to_emu: boots the inner guest (a counter)
# with `vmctl run --accel kvm --snapshot-on-signal`, lets it count, takes a snapshot (SIGUSR2), stops
# it, prints the inner guest's output, and sends the snapshot out through the second serial port
# (/dev/ttyS1, a file on the host) as "VMD-SNAPSHOT-BEGIN <bytes>", gzip|base64 lines, "VMD-SNAPSHOT-END".
. /rig/env
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
if [ ! -c /dev/kvm ]; then
    echo "RIG: no /dev/kvm"
    exit 1
fi
echo "RIG: /dev/kvm ok ($(grep -c svm /proc/cpuinfo) vCPUs with svm)"
# --no-sandbox: the snapshot goes to root's /tmp (vmctl run as root otherwise runs the VM as an
# unprivileged user, who could not write it)
vmctl run --no-sandbox --accel kvm --memory "$INNER_MEMORY" --kernel /rig/vmlinuz --initrd /rig/inner.cpio.gz \
    --cmdline "$INNER_CMDLINE" --snapshot-on-signal /tmp/kvm.snap $VMCTL_ARGS < /dev/null > /tmp/inner.log 2>&1 &
pid=$!
i=0
while [ $i -lt "$VMCTL_TIMEOUT" ] && ! grep -q 'count 6' /tmp/inner.log; do sleep 1; i=$((i + 1)); done
kill -USR2 $pid
i=0
while [ $i -lt 60 ] && ! grep -q 'snapshot saved to' /tmp/inner.log; do sleep 1; i=$((i + 1)); done
sleep 2
kill $pid
wait $pid
cat /tmp/inner.log
if [ -s /tmp/kvm.snap ]; then
    stty -F /dev/ttyS1 raw -echo 2> /dev/null
    { echo "VMD-SNAPSHOT-BEGIN $(wc -c < /tmp/kvm.snap)"; gzip -c /tmp/kvm.snap | base64; echo "VMD-SNAPSHOT-END"; } > /dev/ttyS1
    echo "RIG: snapshot exported"
fi
echo "RIG: vmctl exit 0"
