#!/bin/bash
# kvm-boot: time a stock Linux boot on /dev/kvm with vmd (vmctl run --accel kvm) beside QEMU
# (-enable-kvm -M microvm), same Debian cloud kernel, same busybox initramfs, inside the nested rig
# (scripts/nested-rig.sh: QEMU TCG + nested SVM provides /dev/kvm where the host has none).
# Each run is timed on the outer guest's clock from start to exit of the VMM; the inner kernel's own
# "userspace at" time is printed too. usage: bench/kvm-boot.sh [RUNS]   (default 2 runs of each)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
runs=${1:-2}
log=$(mktemp "${TMPDIR:-/tmp}/vmd-kvm-boot.XXXXXX")
trap 'rm -f "$log" "$log.env"' EXIT
echo "BENCH_RUNS=$runs" > "$log.env"
echo "kvm-boot: $(sed -n 's/^cloud-kernel //p' .cache/guest/VERSIONS 2>/dev/null) inner guest, $runs run(s) each, nested rig (QEMU TCG + nested SVM)"
rc=0
scripts/nested-rig.sh --with-qemu --outer-script tests/guest/rig-outer-bench.sh --timeout $((300 * runs + 120)) \
    --add "$log.env:/rig/bench.env" > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" | grep '^BENCH: ' | sed 's/^BENCH: /  /'
tr -d '\r' < "$log" | awk '
    /^BENCH: / && $3 == "seconds" { n[$2]++; s[$2] += $4; if ($6 != 0 || $10 != "yes") bad[$2]++; up[$2] = up[$2] " " $8 }
    END {
        for (k in n) printf "kvm-boot: %-6s mean %.2f s over %d run(s)%s; inner kernel reached userspace at:%s s\n",
                            k, s[k] / n[k], n[k], bad[k] ? " (" bad[k] " failed)" : "", up[k]
        if (n["vmctl"] && n["qemu"] && !bad["vmctl"] && !bad["qemu"])
            printf "kvm-boot: vmctl/qemu time ratio %.2f\n", (s["vmctl"] / n["vmctl"]) / (s["qemu"] / n["qemu"])
    }'
[ $rc -eq 0 ] || { echo "kvm-boot: the rig exited $rc; last lines:"; tail -n 20 "$log"; exit 1; }
