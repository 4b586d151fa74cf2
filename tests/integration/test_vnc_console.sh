# test_vnc_console: a guest under the emulator writes known text on its VGA console; a real VNC
# viewer (tests/tools/vncprobe, libvncclient) reads it back from the framebuffer pixels, types a
# line that a shell on the guest's tty1 reads and echoes, and sees the echo; then types "quit" and
# the guest powers off. Viewers connecting and disconnecting meanwhile leave the VM running.
# timeout: 600
# duration: 67
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
PROBE=$ROOT/build/release/tools/vncprobe
[ -x "$PROBE" ] || fail "$PROBE is not built (run make)"
initrd=$TEST_TMP/vnc.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/vnc_console.sh || fail "mkinitramfs"
log=$TEST_TMP/vmctl.log
"$VMCTL" run --accel emu --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$initrd" --vnc 127.0.0.1:0 \
    --cmdline "console=ttyS0 quiet" < /dev/null > "$log" 2>&1 &
vm=$!
trap 'kill $vm 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
for _ in $(seq 150); do grep -q "vnc: listening on" "$log" && break; sleep 0.2; done
addr=$(sed -n 's/.*vnc: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -1)
[ -n "$addr" ] || { cat "$log"; kill $vm; fail "vmctl did not report its VNC address"; }
ok "VNC on $addr"
"$PROBE" "$addr" --timeout 400 --wait-text "VMD-VNC-MARKER 42" || { kill $vm; tail -20 "$log"; fail "marker not seen over VNC"; }
ok "guest text read back from the VNC framebuffer"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$vm/status"; }
rss0=$(rss)
for _ in $(seq 100); do "$PROBE" "$addr" --timeout 10 > /dev/null || fail "reconnect refused"; done
# Clients that send garbage instead of the RFB handshake.
port=${addr##*:}
for i in $(seq 30); do
    head -c $((RANDOM % 2000 + 1)) /dev/urandom > /dev/tcp/127.0.0.1/$port 2> /dev/null || true
done
# Clients that send 1-3 bytes, at once or after a pause, then shut down or hang up: libvncserver's
# first-bytes check used to spin on these forever, and no viewer could connect again (vnc/vnc.c).
timeout 120 python3 - "$port" <<'PY' || fail "the VNC port stopped accepting during the short-garbage clients"
import random, socket, sys, time
port = int(sys.argv[1])
for i in range(40):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    time.sleep(random.uniform(0.0, 0.2))
    s.send(bytes(random.getrandbits(8) for _ in range(1 + i % 3)))
    if i % 4: s.shutdown(socket.SHUT_WR)
    time.sleep(random.uniform(0.0, 0.1))
    s.close()
PY
# (a wedged server never answers; 60 s, not 5, for a machine busy with other tests)
"$PROBE" "$addr" --timeout 60 --wait-text "VMD-VNC-MARKER 42" > /dev/null || fail "no longer serving after garbage clients"
sleep 1
cpu() { awk '{ print $14 + $15 }' "/proc/$vm/stat"; }
c0=$(cpu); sleep 2; c1=$(cpu)
[ $((c1 - c0)) -lt 100 ] || fail "the VM process burns $((c1 - c0)) ticks in 2 s after the garbage clients (a spinning thread)"
ok "40 clients sending 1-3 stray bytes did not wedge or spin the VNC server"
kill -0 $vm || fail "the VM died while viewers came and went"
rss1=$(rss)
growth=$(( (rss1 - rss0) / 1024 ))
echo "VM process RSS ${rss0} KiB -> ${rss1} KiB across 100 viewers and 70 garbage clients"
[ "$growth" -lt 8 ] || fail "the VM process grew by ${growth} MiB across reconnects"
ok "100 viewers and 70 garbage clients came and went; VM running, memory flat (+${growth} MiB)"
"$PROBE" "$addr" --type 'hello vnc\n' --timeout 60 --wait-text "GOT:hello vnc" || { kill $vm; fail "typed line not echoed"; }
ok "keys typed over VNC reached the shell on tty1"
# A burst far larger than the i8042's 16-byte queue (about 100 scan codes) arrives whole.
line='the quick brown fox jumps over the lazy dog 42'
"$PROBE" "$addr" --type "$line\\n" --timeout 60 --wait-text "GOT:$line" || { kill $vm; fail "a long typed line was not echoed whole"; }
ok "a 46-character burst typed over VNC arrived whole"
"$PROBE" "$addr" --type 'quit\n' --timeout 10 > /dev/null
wait $vm
rc=$?
[ $rc -eq 0 ] || { tail -20 "$log"; fail "vmctl exited $rc"; }
ok "guest powered off, vmctl exit 0"
