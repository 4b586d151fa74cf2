# Outer guest of bench/kvm-boot.sh: boot the same inner kernel + initramfs on /dev/kvm with vmd's vmctl
# and with QEMU (-M microvm), alternating, and print the wall time of each run on the outer guest's clock.
. /rig/env
[ -f /rig/bench.env ] && . /rig/bench.env
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
[ -c /dev/kvm ] || { echo "BENCH: no /dev/kvm"; exit 1; }
now() { read t _ < /proc/uptime; echo "$t"; }
# one NAME CMD...: run CMD, print "BENCH: NAME seconds S exit N userspace U"
one() {
    name=$1; shift
    t0=$(now)
    timeout "$VMCTL_TIMEOUT" "$@" < /dev/null > /tmp/$name.log 2>&1
    rc=$?
    t1=$(now)
    cat /tmp/$name.log
    up=$(tr -d '\r' < /tmp/$name.log | sed -n 's/^INNER: userspace at \(.*\)s$/\1/p' | tail -1)
    ok=no; tr -d '\r' < /tmp/$name.log | grep -qx 'INNER: RESULT 42' && ok=yes
    echo "BENCH: $name seconds $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') exit $rc userspace ${up:-none} result $ok"
}
i=0
while [ $i -lt "${BENCH_RUNS:-2}" ]; do
    one vmctl vmctl run --accel kvm --memory "$INNER_MEMORY" --kernel /rig/vmlinuz --initrd /rig/inner.cpio.gz \
        --cmdline "$INNER_CMDLINE"
    one qemu qemu-system-x86_64 -enable-kvm -M microvm -cpu host -m "$INNER_MEMORY" -nographic -no-reboot \
        -nodefaults -serial stdio -kernel /rig/vmlinuz -initrd /rig/inner.cpio.gz -append "$INNER_CMDLINE"
    i=$((i + 1))
done
