# test_multiboot: `--kernel` loads multiboot v1 images as QEMU's -kernel does. The test kernel
# (tests/guest/mbtest.s, built by the Makefile as build/guest/mbtest-elf and, with the a.out kludge,
# build/guest/mbtest-aout) prints the multiboot info it was given on COM1 and exits through
# isa-debug-exit with 0x21. Each variant runs under `vmctl run --accel emu --device isa-debug-exit`
# with a module (--initrd) and a command line: vmctl exits 67 ((0x21<<1)|1), and the lines that do
# not depend on the machine (magic, mem_lower, the command line after the kernel's name, the
# module's count, size, alignment and first bytes, a RAM entry at 1 MiB in the mmap, bss zeroed)
# equal what qemu-system-i386 prints for the same kernel, module, command line and -m (the test
# oracle; skipped without QEMU). vmd's own flags (0x24d: memory, cmdline, mods, mmap, loader
# name) and loader name "vmd" are checked apart; QEMU also sets a boot device and says "qemu".
# A corrupted header is refused with a clear error.
# timeout: 120
# duration: 2
. "$(dirname "$0")/lib.sh"
need_vmctl
for k in mbtest-elf mbtest-aout; do
    [ -f "build/guest/$k" ] || fail "build/guest/$k is not built (run make)"
done
printf 'MODULE-1 test module for mbtest\n' > "$TEST_TMP/mod.bin"
machine_free() { grep '^MB: ' | grep -v '^MB: \(flags\|mem_upper\|boot loader\) '; }
for k in mbtest-elf mbtest-aout; do
    log=$TEST_TMP/$k.vmd
    rc=0
    timeout 60 "$VMCTL" run --accel emu --memory 128 --kernel "build/guest/$k" --initrd "$TEST_TMP/mod.bin" \
        --cmdline "hello multiboot" --device isa-debug-exit < /dev/null > "$log" 2>&1 || rc=$?
    tr -d '\r' < "$log" > "$log.txt"
    [ $rc -eq 67 ] || { tail -n 20 "$log.txt"; fail "$k: vmctl run exited $rc (expected 67)"; }
    expect_in "$log.txt" "^MB: magic 0x2badb002$" "$k: entered with EAX = 0x2BADB002"
    expect_in "$log.txt" "^MB: flags 0x0000024d$" "$k: info flags memory, cmdline, mods, mmap, boot loader name"
    expect_in "$log.txt" "^MB: mem_upper 130048$" "$k: mem_upper = 128 MiB - 1 MiB"
    expect_in "$log.txt" "^MB: boot loader vmd$" "$k: boot loader name"
    expect_in "$log.txt" "^MB: cmdline args: hello multiboot$" "$k: the command line follows the kernel's name"
    expect_in "$log.txt" "^MB: mod0 first bytes 4d 4f 44 55 4c 45 2d 31 $" "$k: the module's bytes"
    expect_in "$log.txt" "^MB: bss zeroed yes$" "$k: bss zeroed"
    ok "$k: vmctl run exited 67 through isa-debug-exit"
    if ! command -v qemu-system-i386 > /dev/null; then
        echo "qemu-system-i386 is not installed: no comparison with QEMU"
        continue
    fi
    qlog=$TEST_TMP/$k.qemu
    rc=0
    timeout 60 qemu-system-i386 -kernel "build/guest/$k" -initrd "$TEST_TMP/mod.bin" -append "hello multiboot" \
        -device isa-debug-exit,iobase=0xf4,iosize=4 -accel tcg -nographic -m 128 -no-reboot < /dev/null > "$qlog" 2>&1 || rc=$?
    tr -d '\r' < "$qlog" | sed 's/^.*MB: magic/MB: magic/' > "$qlog.txt"
    [ $rc -eq 67 ] || { tail -n 20 "$qlog.txt"; fail "$k: QEMU exited $rc (expected 67): the test kernel or the oracle is off"; }
    machine_free < "$log.txt" > "$TEST_TMP/$k.vmd.lines"
    machine_free < "$qlog.txt" > "$TEST_TMP/$k.qemu.lines"
    [ "$(wc -l < "$TEST_TMP/$k.vmd.lines")" -ge 9 ] || fail "$k: only $(wc -l < "$TEST_TMP/$k.vmd.lines") lines to compare"
    diff -u "$TEST_TMP/$k.qemu.lines" "$TEST_TMP/$k.vmd.lines" || fail "$k: vmd's multiboot info differs from QEMU's"
    ok "$k: the $(wc -l < "$TEST_TMP/$k.vmd.lines") machine-independent lines equal QEMU's, both exit 67"
done

# A header whose checksum no longer matches: refused, naming the file and the reason
cp build/guest/mbtest-aout "$TEST_TMP/bad"
printf '\x07' | dd of="$TEST_TMP/bad" bs=1 seek=8 conv=notrunc 2> /dev/null
rc=0
timeout 30 "$VMCTL" run --accel emu --memory 128 --kernel "$TEST_TMP/bad" < /dev/null > /dev/null 2> "$TEST_TMP/bad.err" || rc=$?
[ $rc -eq 1 ] && grep -q "multiboot header at offset 0x0: bad checksum" "$TEST_TMP/bad.err" ||
    fail "a bad multiboot checksum: exit $rc, $(cat "$TEST_TMP/bad.err")"
ok "a corrupted multiboot header is refused: $(grep -o "multiboot header.*" "$TEST_TMP/bad.err")"
