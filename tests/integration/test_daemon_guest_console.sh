# test_daemon_guest_console: a daemon-managed guest's serial console. The guest (Debian kernel,
# busybox initramfs running tests/guest/daemon_ticker.sh on the emu backend) prints a tick a
# second: its console.log grows, `vmctl log` shows it, `vmctl console` receives it live and
# delivers typed input (the guest echoes it back), the log keeps growing across a kill -9 of vmd
# and a restart, and a graceful `vmctl stop` (Ctrl-Alt-Del through the i8042; the guest restarts
# at once) ends the VM before the timeout would force it.
# The guest side was cross-checked under QEMU TCG: ticks, the echoed input, and "reboot:
# Restarting system" right after a Ctrl-Alt-Del (sendkey ctrl-alt-delete).
# timeout: 900
# duration: 16
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
start_vmd
V=$VMCTL
need_ticker_initrd
"$V" create t1 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 128 --cmdline "console=ttyS0 quiet" > /dev/null || fail "create"
need_running_guest t1
LOG=$STATE/vms/t1/console.log
limit=${GUEST_BOOT_TIMEOUT:-600}
for _ in $(seq "$limit"); do grep -q "VMD-GUEST: tick 2" "$LOG" 2>/dev/null && break; sleep 1; done
grep -q "VMD-GUEST: tick 2" "$LOG" || { tail -20 "$LOG"; fail "the guest did not reach its ticker within ${limit}s"; }
ok "guest ticking in $LOG"
"$V" log t1 > "$TEST_TMP/log" || fail "vmctl log"
expect_in "$TEST_TMP/log" "VMD-INIT: start" "vmctl log shows the guest's boot"
expect_in "$TEST_TMP/log" "VMD-GUEST: tick [0-9]+" "vmctl log shows the ticks"

# live console: output arrives, and input reaches the guest
python3 - "$SOCK" > "$TEST_TMP/console" 2>&1 <<'PY' || { cat "$TEST_TMP/console"; fail "live console"; }
import sys, base64, time
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
c = Conn.unix(sys.argv[1], timeout=120)
c.call("console.attach", {"name": "t1"})
c.notify("console.input", {"name": "t1", "data": base64.b64encode(b"hello vmd\n").decode()})
seen = b""; deadline = time.time() + 120
while time.time() < deadline and not (b"got 'hello vmd'" in seen and b"tick" in seen):
    m = c.read()
    if m and m.get("method") == "console.output":
        seen += base64.b64decode(m["params"]["data"])
print(seen.decode(errors="replace")[-300:])
sys.exit(0 if b"got 'hello vmd'" in seen and b"tick" in seen else 1)
PY
ok "console.attach: live output, and input echoed by the guest"

# the log keeps growing while vmd is dead and after its restart
s1=$(stat -c %s "$LOG")
stop_vmd_hard
sleep 3
s2=$(stat -c %s "$LOG")
[ "$s2" -gt "$s1" ] || fail "console.log did not grow while vmd was down ($s1 -> $s2)"
start_vmd
[ "$(vm_state t1)" = running ] || fail "t1 is $(vm_state t1) after the restart"
sleep 3
s3=$(stat -c %s "$LOG")
[ "$s3" -gt "$s2" ] || fail "console.log did not grow after the restart ($s2 -> $s3)"
ok "console.log grew $s1 -> $s2 (vmd down) -> $s3 (re-adopted)"

# graceful stop: Ctrl-Alt-Del, well before the 120 s timeout
t0=$(date +%s)
"$V" stop --timeout 120 t1 > "$TEST_TMP/stop" || fail "vmctl stop"
t1=$(date +%s)
grep -q forced "$TEST_TMP/stop" && fail "the stop was forced: $(cat "$TEST_TMP/stop")"
[ $((t1 - t0)) -lt 100 ] || fail "graceful stop took $((t1 - t0)) s"
ok "graceful stop in $((t1 - t0)) s: $(cat "$TEST_TMP/stop")"
