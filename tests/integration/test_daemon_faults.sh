# test_daemon_faults: the worker is the unit of failure. kill -9 of one VM's worker makes that
# VM crashed (the reason names the signal) and leaves vmd and the other VM untouched; kill -9
# of vmd leaves the VMs running (their serial logs keep growing), and a restarted vmd re-adopts
# them (same pids, running), can still pause and stop them, and notices when an adopted worker dies.
# timeout: 600
# duration: 18
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
start_vmd
V=$VMCTL
need_ticker_initrd
for n in a b; do
    "$V" create $n --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 96 > /dev/null || fail "create $n"
done
need_running_guest a
"$V" start b > /dev/null || fail "start b"
pa=$(vm_field a pid) pb=$(vm_field b pid)
ok "a, b running (workers $pa, $pb)"

# --- a worker dies ---
kill -9 "$pa"
wait_state a crashed 10 || fail "a is $(vm_state a) after kill -9 of its worker"
reason=$(vm_field a reason)
echo "$reason" | grep -q "signal 9" || fail "a's crash reason does not name the signal: $reason"
ok "a crashed: $reason"
[ "$(vm_state b)" = running ] && [ "$(vm_field b pid)" = "$pb" ] && proc_alive "$pb" || fail "b was disturbed"
kill -0 "$VMD_PID" || fail "vmd died with a's worker"
ok "vmd and b untouched"
grep -q '"state": "crashed"' "$STATE/vms/a/status.json" || fail "a's status.json does not say crashed"
ok "a's crash is persisted"
"$V" start a > /dev/null || fail "restart a after its crash"
pa=$(vm_field a pid)
ok "a restarted (worker $pa)"

# --- vmd dies ---
BLOG=$STATE/vms/b/console.log
for _ in $(seq "${GUEST_BOOT_TIMEOUT:-300}"); do grep -q "VMD-GUEST: tick" "$BLOG" 2>/dev/null && break; sleep 1; done
grep -q "VMD-GUEST: tick" "$BLOG" || fail "b's guest never reached its ticker (console.log: $(tail -c 300 "$BLOG" 2>/dev/null))"
s1=$(stat -c %s "$BLOG")
stop_vmd_hard
sleep 0.5
for p in $pa $pb; do proc_alive "$p" || fail "worker $p died with vmd"; done
ok "kill -9 vmd: workers $pa $pb still running"
start_vmd
for n in a b; do
    st=$(vm_state $n); [ "$st" = running ] || { cat "$VMD_LOG" | tail; "$V" --json info $n; fail "$n is $st after the restart"; }
done
[ "$(vm_field b pid)" = "$pb" ] || fail "b's pid changed: $(vm_field b pid)"
"$V" list > "$TEST_TMP/list"
grep -Eq "^b +running +$pb " "$TEST_TMP/list" || { cat "$TEST_TMP/list"; fail "list after restart"; }
grep -q "re-adopted worker pid $pb" "$VMD_LOG" || fail "vmd did not log the re-adoption"
ok "restarted vmd re-adopted a and b as running (same pids)"
sleep 2.5
s2=$(stat -c %s "$BLOG")
[ "$s2" -gt "$s1" ] || fail "b's serial log stopped growing ($s1 -> $s2 bytes)"
"$V" log b | grep -q "VMD-GUEST: tick" || fail "vmctl log b after the restart"
ok "b's serial log kept growing through the vmd restart ($s1 -> $s2 bytes)"
# the re-adopted workers obey
"$V" pause b > /dev/null && [ "$(vm_state b)" = paused ] || fail "pause re-adopted b"
"$V" resume b > /dev/null && [ "$(vm_state b)" = running ] || fail "resume re-adopted b"
"$V" stop --force a > /dev/null && [ "$(vm_state a)" = stopped ] || fail "stop re-adopted a"
proc_alive "$pa" && fail "a's worker survived its stop"
ok "re-adopted workers obey pause, resume and stop"
# an adopted worker that dies is noticed too
kill -9 "$pb"
wait_state b crashed 10 || fail "b is $(vm_state b) after kill -9 of its adopted worker"
ok "adopted b crashed: $(vm_field b reason)"
[ "$(vm_state a)" = stopped ] || fail "a disturbed by b's crash"
kill -0 "$VMD_PID" || fail "vmd died"
ok "vmd still serving"
