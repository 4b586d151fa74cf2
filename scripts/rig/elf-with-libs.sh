#!/bin/bash
# elf-with-libs: print SRC:DST lines (for mkinitramfs.sh --add) that put a dynamically linked host
# program into an initramfs together with every shared library ldd lists and the dynamic loader.
# usage: scripts/rig/elf-with-libs.sh PROGRAM:DST [PROGRAM:DST ...]
# Libraries keep their host paths (e.g. /lib/x86_64-linux-gnu/libc.so.6), symlinks resolved.
set -euo pipefail
declare -A seen=()
for spec in "$@"; do
    prog=${spec%%:*} dst=${spec#*:}
    [ -x "$prog" ] || { echo "elf-with-libs: '$prog' is not an executable" >&2; exit 1; }
    echo "$(readlink -f "$prog"):$dst"
    # ldd lines: "libx.so.1 => /path/libx.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (..)"
    out=$(ldd "$prog" 2>&1) || { case $out in *"not a dynamic executable"*) continue ;; esac
                                 echo "elf-with-libs: ldd $prog: $out" >&2; exit 1; }
    while read -r a b c _; do
        if [ "$b" = "=>" ]; then
            [ "$c" = "not" ] && { echo "elf-with-libs: $prog needs $a, which is not found" >&2; exit 1; }
            lib=$c
        else
            lib=$a
        fi
        case $lib in /*) ;; *) continue ;; esac
        [ -n "${seen[$lib]:-}" ] && continue
        seen[$lib]=1
        echo "$(readlink -f "$lib"):$lib"
    done <<< "$out"
done
