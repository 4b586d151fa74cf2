#!/bin/bash
# emu-mips: build bench/emu_mips.c against the release libvmm and print the emulator's
# instructions per second on CPU-bound loops (one second each).
# usage: bench/emu-mips.sh    (needs `make` first)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/release/libvmm.a ] || make -j2 >/dev/null
out=build/release/bench/emu_mips
mkdir -p "$(dirname "$out")"
cc -std=gnu11 -O2 -D_GNU_SOURCE -I. -Itests/unit -pthread -o "$out" bench/emu_mips.c tests/unit/guest_builder.c \
    build/release/librpc.a -Wl,--whole-archive build/release/libvmm.a -Wl,--no-whole-archive build/release/libstore.a \
    $(pkg-config --libs libuv jansson libvncserver libvncclient slirp openssl zlib libseccomp) -lpthread -lm
"$out"
