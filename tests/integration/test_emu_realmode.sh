# test_emu_realmode: the emulator against QEMU TCG on ROM images that start at the reset vector
# (tests/guest/modes/*.s, built by the Makefile into build/roms/). Each runs under
# `vmctl run --accel emu --firmware ROM` and under `qemu-system-x86_64 -accel tcg -bios ROM`,
# and the two serial outputs must be identical: real mode (arithmetic and flags with 16- and
# 32-bit forms, string operations, INT/IRET through the IVT, far transfers, exceptions), unreal
# mode (and a hardware interrupt through the i8259 and the IVT, on both of vmd's interrupt
# platforms), and a torture test switching real -> 16-bit protected -> 32-bit protected -> PAE paging
# -> long mode -> compatibility mode -> 32-bit protected -> real mode. A ROM halts with
# interrupts off after its marker line, so each run is stopped when the marker appears. Then:
# guest resets (triple fault, port 0xcf9, the i8042) restart at the reset vector with the reset
# state, and bad ROM images are refused before the VM starts.
# timeout: 120
# duration: 3
. "$(dirname "$0")/lib.sh"
need_vmctl
ROMS=$ROOT/build/roms
MARKER='=== mode test done ==='
for r in realmode unreal torture reset_triple reset_cf9 reset_i8042; do
    [ -f "$ROMS/$r.rom" ] || fail "$ROMS/$r.rom is not built (run make)"
done

# run_until OUT PATTERN COUNT CMD...: run CMD (stdin closed) until OUT holds COUNT lines matching
# PATTERN, the command exits, or 30 s pass; then stop it. OUT.txt is the output without CRs and
# without a last line the stop cut short.
run_until() {
    local out=$1 pat=$2 count=$3 i pid
    shift 3
    "$@" < /dev/null > "$out" 2> "$out.err" &
    pid=$!
    for i in $(seq 1 300); do
        [ "$(tr -d '\r' < "$out" | grep -c -- "$pat")" -ge "$count" ] && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    kill "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    tr -d '\r' < "$out" > "$out.txt"
    [ -z "$(tail -c 1 "$out.txt")" ] || sed -i '$ d' "$out.txt"
}

have_qemu=1
command -v qemu-system-x86_64 > /dev/null || have_qemu=0
for r in realmode unreal torture; do
    run_until "$TEST_TMP/$r.vmd" "^$MARKER\$" 1 "$VMCTL" run --accel emu --firmware "$ROMS/$r.rom"
    grep -qx -- "$MARKER" "$TEST_TMP/$r.vmd.txt" ||
        { cat "$TEST_TMP/$r.vmd.txt" "$TEST_TMP/$r.vmd.err"; fail "$r: vmd did not reach the marker"; }
    ok "$r: ran to its marker under vmd ($(wc -l < "$TEST_TMP/$r.vmd.txt") lines)"
    [ $have_qemu = 1 ] || continue
    run_until "$TEST_TMP/$r.qemu" "^$MARKER\$" 1 qemu-system-x86_64 -accel tcg -bios "$ROMS/$r.rom" -nographic
    grep -qx -- "$MARKER" "$TEST_TMP/$r.qemu.txt" || { cat "$TEST_TMP/$r.qemu.txt"; fail "$r: QEMU did not reach the marker"; }
    diff -u "$TEST_TMP/$r.qemu.txt" "$TEST_TMP/$r.vmd.txt" > "$TEST_TMP/$r.diff" ||
        { cat "$TEST_TMP/$r.diff"; fail "$r: vmd's serial output differs from QEMU's (- QEMU, + vmd)"; }
    ok "$r: identical to QEMU TCG's output"
done
if [ $have_qemu = 1 ]; then
    run_until "$TEST_TMP/pic.vmd" "^$MARKER\$" 1 "$VMCTL" run --accel emu --irqchip pic --firmware "$ROMS/unreal.rom"
    diff -u "$TEST_TMP/unreal.qemu.txt" "$TEST_TMP/pic.vmd.txt" > "$TEST_TMP/pic.diff" ||
        { cat "$TEST_TMP/pic.diff"; fail "unreal with --irqchip pic: vmd's serial output differs from QEMU's"; }
    ok "unreal with --irqchip pic (the i8259 straight to the CPU): identical to QEMU TCG's output"
fi
ok "$(grep -c '^exception [0-9a-f]' "$TEST_TMP/realmode.vmd.txt") exceptions delivered through the IVT in realmode"
expect_in "$TEST_TMP/torture.vmd.txt" '^torture: RpPGcLCPpR$' "the torture test went through every mode and back"

# resets: each boot prints the state the reset vector was entered with, then resets
for r in reset_triple reset_cf9 reset_i8042; do
    run_until "$TEST_TMP/$r.vmd" '^boot: ' 3 "$VMCTL" run --accel emu --firmware "$ROMS/$r.rom"
    n=$(grep -c '^boot: ' "$TEST_TMP/$r.vmd.txt")
    [ "$n" -ge 3 ] || { cat "$TEST_TMP/$r.vmd.txt" "$TEST_TMP/$r.vmd.err"; fail "$r: $n boot(s), expected a restart at the reset vector after each reset"; }
    [ "$(grep '^boot: ' "$TEST_TMP/$r.vmd.txt" | sort -u)" = "boot: edx=00060fb1 cr0=60000010 esp=00000000 cs=f000" ] ||
        { cat "$TEST_TMP/$r.vmd.txt"; fail "$r: the state at the reset vector is not the reset state every time"; }
    ok "$r: $n boots, each from the reset vector in the reset state"
done

# bad images are refused before the VM starts
head -c 1000 /dev/zero > "$TEST_TMP/short.rom"
rc=0
"$VMCTL" run --accel emu --firmware "$TEST_TMP/short.rom" < /dev/null > "$TEST_TMP/short.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "a 1000-byte ROM was accepted"
expect_in "$TEST_TMP/short.out" "firmware '.*short.rom' is 1000 bytes: a ROM image must be a non-zero multiple of 64 KiB, at most 16 MiB" \
    "a ROM of a bad size is refused with the reason"
rc=0
"$VMCTL" run --accel kvm --firmware "$ROMS/realmode.rom" < /dev/null > "$TEST_TMP/kvm.out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "--firmware with --accel kvm was accepted"
expect_in "$TEST_TMP/kvm.out" "firmware: runs under the emulator only" "--firmware with --accel kvm is refused"
[ $have_qemu = 1 ] || skip "qemu-system-x86_64 is missing: the outputs were not compared with QEMU TCG's"
