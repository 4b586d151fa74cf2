# test_daemon_lifecycle: a VM's life under vmd, driven by vmctl: create (with bad options
# rejected, naming the option), list/info (table and --json), start, pause, resume, reboot,
# stop --force, start again, graceful stop, delete; and the vm.state_changed notifications a
# subscribed client receives meanwhile. The guest is Debian's kernel with a busybox initramfs on
# the emu backend: the test checks the guest boots, stays silent while paused, ticks again after
# resume, boots again after reboot, and shuts down on the graceful stop's Ctrl-Alt-Del.
# timeout: 600
# duration: 34
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
V=$VMCTL
# without vmd: a clear error and exit 1; usage errors exit 2
rc=0; "$V" list > /dev/null 2> "$TEST_TMP/err" || rc=$?
[ $rc -eq 1 ] || fail "vmctl list without vmd: exit $rc"
expect_in "$TEST_TMP/err" "cannot connect to $SOCK" "vmctl without vmd names the socket"
rc=0; "$V" stop > /dev/null 2>&1 || rc=$?; [ $rc -eq 2 ] || fail "vmctl stop without a name: exit $rc"
rc=0; "$V" --bogus list > /dev/null 2>&1 || rc=$?; [ $rc -eq 2 ] || fail "vmctl --bogus: exit $rc"
ok "usage errors exit 2"
start_vmd

# --- definitions (no guest needed) ---
need_ticker_initrd
KERNEL=$GUEST/vmlinuz

expect_fail() { # expect_fail PATTERN WHAT ARGS...: vmctl ARGS exits non-zero, stderr matches PATTERN
    local pat=$1 what=$2; shift 2
    if "$V" "$@" > "$TEST_TMP/out" 2> "$TEST_TMP/err"; then fail "$what: vmctl $* succeeded"; fi
    grep -Eq -- "$pat" "$TEST_TMP/err" || { cat "$TEST_TMP/err"; fail "$what: stderr does not match '$pat'"; }
    ok "$what: $(head -1 "$TEST_TMP/err")"
}
expect_fail "kernel.*No such file" "create with a missing kernel" create g1 --kernel "$TEST_TMP/nope" --accel emu
expect_fail "--memory" "create with a bad --memory" create g1 --kernel "$KERNEL" --memory 3
expect_fail "name" "create with a bad name" create "bad/name" --kernel "$KERNEL"
expect_fail "no VM named 'ghost'" "start an unknown VM" start ghost
"$V" create g1 --kernel "$KERNEL" --initrd "$INITRD" --accel emu --memory 128 --cmdline "console=ttyS0" \
    --vnc 127.0.0.1:0 > "$TEST_TMP/out" ||
    fail "vmctl create g1"
ok "$(cat "$TEST_TMP/out")"
expect_fail "already exists" "create a duplicate" create g1 --kernel "$KERNEL"
expect_fail "is defined, not running" "stop a defined VM" stop g1
"$V" list > "$TEST_TMP/list" || fail "vmctl list"
expect_in "$TEST_TMP/list" "^NAME +STATE" "list prints a table header"
expect_in "$TEST_TMP/list" "^g1 +defined +- +emu +128Mi" "list shows g1 defined"
[ "$(vm_state g1)" = defined ] || fail "info --json: state $(vm_state g1)"
ok "info --json: defined"
[ -f "$STATE/vms/g1/config.json" ] || fail "definition not persisted"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['memory_mib']==128 and d['accel']=='emu', d" "$STATE/vms/g1/config.json" ||
    fail "config.json content"
ok "definition persisted in $STATE/vms/g1/config.json"

# a client subscribed to events records every notification from here on
python3 - "$SOCK" > "$TEST_TMP/events" 2>&1 <<'PY' &
import sys, json
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
c = Conn.unix(sys.argv[1], timeout=None)
c.call("events.subscribe")
print("subscribed", flush=True)
while True:
    m = c.read()
    if m is None: break
    if m.get("method") == "vm.state_changed":
        p = m["params"]; print("event %s %s %s" % (p["name"], p["state"], p["reason"]), flush=True)
PY
EVENTS_PID=$!
"$V" events > "$TEST_TMP/vmctl-events" 2>&1 &
VMCTL_EVENTS_PID=$!
for _ in $(seq 50); do grep -q subscribed "$TEST_TMP/events" && break; sleep 0.1; done
sleep 0.2

# --- running (needs a machine that runs) ---
need_running_guest g1
ok "g1 started"
pid=$(vm_field g1 pid)
[ -n "$pid" ] && kill -0 "$pid" || fail "g1 has no live worker pid ($pid)"
ok "g1 worker pid $pid is alive"
"$V" list | grep -Eq "^g1 +running +$pid " || fail "list does not show g1 running with pid $pid"
ok "list shows g1 running"
vnc=$(vm_field g1 vnc)
[[ "$vnc" =~ ^127\.0\.0\.1:[1-9][0-9]*$ ]] || fail "info shows VNC address '$vnc' (expected the port the worker listens on)"
"$V" info g1 | grep -Eq "^vnc: +$vnc$" || fail "vmctl info does not show the VNC address $vnc"
ok "info shows the VNC console at $vnc"
GLOG=$STATE/vms/g1/console.log
# wait_log_count PATTERN N: the guest's console log has at least N lines matching PATTERN
wait_log_count() {
    local i
    for i in $(seq "${GUEST_BOOT_TIMEOUT:-300}"); do
        [ "$(tr -d '\r' < "$GLOG" 2>/dev/null | grep -c -- "$1")" -ge "$2" ] && return 0
        sleep 1
    done
    tail -c 400 "$GLOG"; fail "the guest's console never showed '$1' $2 time(s)"
}
wait_log_count "VMD-GUEST: tick" 1
ok "the guest booted to its ticker ($(grep -c 'VMD-GUEST: tick' "$GLOG") ticks so far)"
expect_fail "is running" "start a running VM" start g1
expect_fail "stop it first" "delete a running VM" delete g1
"$V" pause g1 > /dev/null || fail "pause"
[ "$(vm_state g1)" = paused ] || fail "after pause: $(vm_state g1)"
p1=$(stat -c %s "$GLOG"); sleep 2.5; p2=$(stat -c %s "$GLOG")
[ "$p1" = "$p2" ] || fail "the guest kept printing while paused ($p1 -> $p2 bytes)"
ok "paused: the guest is frozen (console log stays at $p2 bytes)"
expect_fail "not running" "pause a paused VM" pause g1
"$V" resume g1 > /dev/null || fail "resume"
[ "$(vm_state g1)" = running ] || fail "after resume: $(vm_state g1)"
for _ in $(seq 50); do [ "$(stat -c %s "$GLOG")" -gt "$p2" ] && break; sleep 0.2; done
[ "$(stat -c %s "$GLOG")" -gt "$p2" ] || fail "the guest did not continue after resume"
ok "resumed: the guest ticks again"
python3 - "$SOCK" <<'PY' || fail "console attach/input on a running VM"
import sys, base64
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
c = Conn.unix(sys.argv[1])
r = c.call("console.attach", {"name": "g1"}); assert r == {"name": "g1", "attached": True}, r
r = c.call("console.input", {"name": "g1", "data": base64.b64encode(b"echo hi\n").decode()}); assert r.get("accepted") is True, r
r = c.request("console.input", {"name": "g1", "data": "not base64!"}); assert r["error"]["code"] == -32602 and r["error"]["data"]["field"] == "data", r
r = c.call("console.detach", {"name": "g1"}); assert r["attached"] is False, r
print("ok: console.attach, console.input (typed into the guest's UART), console.detach; bad base64 named")
PY
printf 'x\035' | timeout 20 "$V" console g1 > "$TEST_TMP/console.out" 2> "$TEST_TMP/console.err" ||
    { cat "$TEST_TMP/console.err"; fail "vmctl console g1 did not detach cleanly on Ctrl-]"; }
expect_in "$TEST_TMP/console.err" "Connected to VM 'g1' \\(escape character is \\^\\]\\)" "vmctl console attaches"
expect_in "$TEST_TMP/console.err" "detached from VM 'g1'" "Ctrl-] detaches vmctl console"
boots=$(tr -d '\r' < "$GLOG" | grep -c "VMD-INIT: start")
"$V" reboot g1 > /dev/null || fail "reboot"
sleep 0.5
[ "$(vm_state g1)" = running ] || fail "after reboot: $(vm_state g1) ($(vm_field g1 reason))"
wait_log_count "VMD-INIT: start" $((boots + 1))
ok "rebooted ($(vm_field g1 reason)): the guest booted again, same worker $(vm_field g1 pid)"
"$V" stop --force g1 > "$TEST_TMP/out" || fail "stop --force"
[ "$(vm_state g1)" = stopped ] || fail "after stop --force: $(vm_state g1)"
proc_alive "$pid" && fail "worker $pid still alive after stop"
ok "stop --force: $(cat "$TEST_TMP/out"); worker gone"
"$V" start g1 > /dev/null || fail "start again"
[ "$(vm_state g1)" = running ] || fail "second start: $(vm_state g1)"
ok "started again (pid $(vm_field g1 pid))"
ready=$(tr -d '\r' < "$GLOG" | grep -c "VMD-GUEST: ticker ready")
wait_log_count "VMD-GUEST: ticker ready" $((ready + 1))
"$V" stop --timeout 60 g1 > "$TEST_TMP/out" || fail "graceful stop"
[ "$(vm_state g1)" = stopped ] || fail "after stop: $(vm_state g1)"
grep -q forced "$TEST_TMP/out" && fail "the graceful stop had to force the guest off: $(cat "$TEST_TMP/out")"
ok "graceful stop (Ctrl-Alt-Del, the guest restarts, which ends the VM): $(cat "$TEST_TMP/out")"
"$V" delete g1 > /dev/null || fail "delete"
[ -e "$STATE/vms/g1" ] && fail "g1's directory is still there"
"$V" list | grep -q "^g1 " && fail "g1 still listed"
ok "deleted"

sleep 0.3
kill "$EVENTS_PID" "$VMCTL_EVENTS_PID" 2>/dev/null
expect_in "$TEST_TMP/vmctl-events" "^g1 paused paused by request" "vmctl events prints the state changes"
for st in running paused stopped deleted; do
    grep -q "^event g1 $st" "$TEST_TMP/events" || { cat "$TEST_TMP/events"; fail "no vm.state_changed $st event"; }
done
ok "events: $(grep -c '^event g1' "$TEST_TMP/events") vm.state_changed notifications (running, paused, stopped, deleted...)"
kill -0 "$VMD_PID" || fail "vmd died"
