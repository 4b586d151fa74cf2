#!/bin/bash
# emu-ab: the emulator of this tree against another build of vmd (a baseline: another commit's
# checkout, built with `make`), side by side in one run: emu-mips's loops and boot-to-poweroff of
# Debian's cloud kernel (as bench/emu-boot.sh), alternating the two builds RUNS times so that a
# busy host slows both alike. Prints the best figure of each and the ratio new/base.
#
# usage: bench/emu-ab.sh BASE_TREE [RUNS]    e.g.
#   git worktree add /tmp/base HEAD~3 && make -C /tmp/base && bench/emu-ab.sh /tmp/base 3
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: bench/emu-ab.sh BASE_TREE [RUNS]}
runs=${2:-3}
kernel=.cache/guest/vmlinuz
[ -s "$kernel" ] || scripts/fetch-guest-assets.sh
for t in . "$base"; do
    [ -x "$t/build/release/bin/vmctl" ] || { echo "emu-ab: build $t first (make)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/emu-ab.XXXXXX")
trap 'rm -rf "$work"' EXIT

# emu_mips against each tree's libvmm (the same source file, so only the emulator differs)
mips_bin() { # TREE OUT
    cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -Itests/unit -pthread -o "$2" bench/emu_mips.c tests/unit/guest_builder.c \
        "$1/build/release/librpc.a" -Wl,--whole-archive "$1/build/release/libvmm.a" -Wl,--no-whole-archive \
        $(ls "$1"/build/release/libstore.a 2>/dev/null) \
        $(pkg-config --libs libuv jansson libvncserver libvncclient slirp openssl zlib libseccomp) -lpthread -lm
}
mips_bin . "$work/mips-new"
mips_bin "$base" "$work/mips-base"

printf 'echo bench-userspace-ok\n' > "$work/test.sh"
scripts/mkinitramfs.sh "$work/initramfs.cpio.gz" --script "$work/test.sh" >/dev/null
boot() { # VMCTL: prints CPU seconds (user+sys) of one boot to poweroff
    local TIMEFORMAT="%U %S" t
    t=$( { time timeout 600 "$1" run --accel emu --memory 256 --kernel "$kernel" --initrd "$work/initramfs.cpio.gz" \
        --cmdline "console=ttyS0 quiet" </dev/null >"$work/boot.log" 2>&1; } 2>&1 )
    grep -q bench-userspace-ok "$work/boot.log" || { echo "emu-ab: $1: userspace did not run" >&2; exit 1; }
    echo "$t" | awk '{print $1 + $2}'
}

declare -A best
keep_max() { [ -z "${best[$1]:-}" ] || [ "$(echo "$2 > ${best[$1]}" | bc -l)" = 1 ] && best[$1]=$2 || true; }
keep_min() { [ -z "${best[$1]:-}" ] || [ "$(echo "$2 < ${best[$1]}" | bc -l)" = 1 ] && best[$1]=$2 || true; }
for _ in $(seq "$runs"); do
    for side in base new; do
        while read -r name mips _; do keep_max "$side.$name" "$mips"; done < <("$work/mips-$side" | awk '{print $1, $2}')
        if [ $side = new ]; then vmctl=build/release/bin/vmctl; else vmctl=$base/build/release/bin/vmctl; fi
        keep_min "$side.boot" "$(boot "$vmctl")"
    done
done
printf '%-14s %10s %10s %8s\n' "" "base" "new" "new/base"
for k in alu mem+call bytesum; do
    printf '%-14s %10.1f %10.1f %8.3f\n' "$k MIPS" "${best[base.$k]}" "${best[new.$k]}" \
        "$(echo "${best[new.$k]} / ${best[base.$k]}" | bc -l)"
done
printf '%-14s %10.2f %10.2f %8.3f\n' "boot cpu s" "${best[base.boot]}" "${best[new.boot]}" \
    "$(echo "${best[new.boot]} / ${best[base.boot]}" | bc -l)"
