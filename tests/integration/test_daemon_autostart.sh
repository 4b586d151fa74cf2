# test_daemon_autostart: autostart and host shutdown (#22 item 3). VMs created with autostart (or
# switched with vmctl autostart) start when vmd starts, the others do not; on SIGTERM vmd asks its
# running VMs to shut down through the guest (ACPI power button, Ctrl-Alt-Del) and exits once they
# have, refusing changes meanwhile; a guest that ignores the request is forced off after
# --shutdown-timeout; with --keep-running-on-exit vmd exits at once, the worker runs on and the
# next vmd re-adopts it (the same pid, not a second worker). Guests: the busybox ticker (shuts down
# on Ctrl-Alt-Del) and tests/guest/deaf.sh, under the emulator.
# timeout: 400
# duration: 21
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_ticker_initrd
DEAF=$TEST_TMP/deaf.cpio.gz
scripts/mkinitramfs.sh "$DEAF" --script tests/guest/deaf.sh > "$TEST_TMP/mkinitramfs.log" 2>&1 ||
    { cat "$TEST_TMP/mkinitramfs.log"; fail "mkinitramfs deaf"; }
K=$GUEST/vmlinuz
V=$VMCTL

stop_vmd_term() { # SIGTERM vmd and wait (at most $1 s) for it to exit; prints the seconds it took
    local t0 t1
    t0=$(date +%s.%N)
    kill -TERM "$VMD_PID"
    for _ in $(seq $(($1 * 10))); do proc_alive "$VMD_PID" || break; sleep 0.1; done
    proc_alive "$VMD_PID" && { tail -20 "$VMD_LOG"; fail "vmd did not exit within $1 s of SIGTERM"; }
    t1=$(date +%s.%N)
    VMD_PID=
    python3 -c "print('%.1f' % ($t1 - $t0))"
}
wait_console() { # NAME PATTERN SECONDS
    for _ in $(seq $(($3 * 10))); do grep -q "$2" "$STATE/vms/$1/console.log" 2>/dev/null && return 0; sleep 0.1; done
    tail -5 "$STATE/vms/$1/console.log"; fail "$1: no '$2' on its console within $3 s"
}

start_vmd --shutdown-timeout 20
"$V" create a1 --kernel "$K" --initrd "$INITRD" --accel emu --memory 128 --cmdline "console=ttyS0 quiet" --autostart > /dev/null || fail "create a1 --autostart"
"$V" create a2 --kernel "$K" --initrd "$DEAF" --accel emu --memory 128 --cmdline "console=ttyS0 quiet" > /dev/null || fail "create a2"
"$V" create a3 --kernel "$K" --initrd "$INITRD" --accel emu --memory 128 --autostart > /dev/null || fail "create a3"
"$V" autostart a3 off > "$TEST_TMP/out" || fail "vmctl autostart a3 off"
expect_in "$TEST_TMP/out" "VM 'a3': autostart off" "vmctl autostart"
[ "$(vm_field a1 autostart)" = True ] && [ "$(vm_field a2 autostart)" = False ] && [ "$(vm_field a3 autostart)" = False ] ||
    fail "vm.info autostart: a1 $(vm_field a1 autostart) a2 $(vm_field a2 autostart) a3 $(vm_field a3 autostart)"
"$V" info a1 | grep -q "^autostart: on" || fail "vmctl info shows no autostart"
ok "autostart: a1 on (vm.create), a2 off, a3 switched off (vm.autostart)"

# a restart of vmd starts a1 only (no VM runs: SIGTERM ends vmd at once)
took=$(stop_vmd_term 10)
ok "SIGTERM with no VM running: vmd exited in $took s"
start_vmd --shutdown-timeout 5
wait_state a1 running 90 || fail "a1 did not autostart: $(vm_state a1) ($(vm_field a1 reason))"
sleep 1
[ "$(vm_state a2)" = defined ] && [ "$(vm_state a3)" = defined ] || fail "a2/a3 started: $(vm_state a2) $(vm_state a3)"
ok "vmd started a1 (autostart) and left a2, a3 defined"

# SIGTERM: the ticker guest (a1) shuts down on request, the deaf one (a2) is forced off after
# --shutdown-timeout 5; vmd exits after both and refuses changes meanwhile
"$V" start a2 > /dev/null || fail "start a2"
wait_console a1 "ticker ready" 150
wait_console a2 "deaf ready" 150
pid1=$(vm_field a1 pid) pid2=$(vm_field a2 pid)
t0=$(date +%s)
kill -TERM "$VMD_PID"
sleep 0.3
rc=0; "$V" start a3 > /dev/null 2> "$TEST_TMP/err" || rc=$?
[ $rc -ne 0 ] && grep -q "shutting down" "$TEST_TMP/err" || fail "vm.start during the shutdown: exit $rc, $(cat "$TEST_TMP/err")"
ok "vm.start during the shutdown: $(cat "$TEST_TMP/err")"
for _ in $(seq 300); do proc_alive "$VMD_PID" || break; sleep 0.1; done
proc_alive "$VMD_PID" && { tail -20 "$VMD_LOG"; fail "vmd did not exit within 30 s of SIGTERM"; }
VMD_PID=
took=$(($(date +%s) - t0))
proc_alive "$pid1" && fail "a1's worker $pid1 still runs after vmd exited"
proc_alive "$pid2" && fail "a2's worker $pid2 still runs after vmd exited"
python3 - "$STATE/vms" <<'PY' || fail "the VMs' status after the host shutdown"
import json, sys
a1 = json.load(open(sys.argv[1] + "/a1/status.json"))
a2 = json.load(open(sys.argv[1] + "/a2/status.json"))
a3 = json.load(open(sys.argv[1] + "/a3/status.json"))
assert a1["state"] == "stopped" and "guest shut down" in a1["reason"], a1
assert a2["state"] == "stopped" and "did not shut down within 5 s, forced off" in a2["reason"], a2
assert a3["state"] == "defined", a3
print("ok: a1 (ticker) %s: %s" % (a1["state"], a1["reason"]))
print("ok: a2 (deaf) %s: %s" % (a2["state"], a2["reason"]))
PY
expect_in "$VMD_LOG" "asking 2 running VM.s. to shut down" "vmd logs the shutdown request"
expect_in "$VMD_LOG" "every VM is stopped: vmd exits" "vmd exits after its VMs"
[ "$took" -ge 4 ] && [ "$took" -le 20 ] || fail "vmd took $took s to exit (the timeout is 5 s)"
ok "SIGTERM: vmd exited after its VMs in about $took s"

# --keep-running-on-exit: vmd exits, the worker runs on and is re-adopted
start_vmd --keep-running-on-exit
wait_state a1 running 90 || fail "a1 did not autostart (keep-running vmd)"
pid1=$(vm_field a1 pid)
took=$(stop_vmd_term 10)
proc_alive "$pid1" || fail "a1's worker $pid1 died with vmd despite --keep-running-on-exit"
expect_in "$VMD_LOG" "running VMs keep running" "vmd says the VMs keep running"
ok "--keep-running-on-exit: vmd exited in $took s, a1's worker $pid1 runs on"
start_vmd --shutdown-timeout 20
wait_state a1 running 10 || fail "a1 is $(vm_state a1) after the restart"
[ "$(vm_field a1 pid)" = "$pid1" ] || fail "a1 has worker $(vm_field a1 pid), not the re-adopted $pid1"
# (this state dir's workers only: other tests may run VMs named a1 at the same time)
[ "$(pgrep -f -- "--state-dir $STATE --name a1 " | wc -l)" = 1 ] ||
    fail "more than one worker for a1: $(pgrep -af -- "--state-dir $STATE --name a1 ")"
expect_in "$VMD_LOG" "a1: re-adopted worker pid $pid1" "the next vmd re-adopts a1"
ok "the next vmd re-adopted a1 (pid $pid1) instead of autostarting a second worker"
"$V" stop --force a1 > /dev/null || fail "stop a1"
