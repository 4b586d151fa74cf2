# test_worker_seccomp: a sandboxed worker that makes a system call its seccomp filter forbids dies,
# and vmd reports that VM as crashed with the call's number and name (vm.info's reason, vmd's log);
# another VM's worker is untouched. The call is made by a hook compiled only into test builds
# (BUILD=asan, -DVMD_TEST_HOOKS): VMD_TEST_SECCOMP_VIOLATION=NAME makes NAME's worker call keyctl(2)
# a second after its VM started.
# timeout: 300
# duration: 4
. "$(dirname "$0")/lib.sh"
VMD=${VMD:-$ROOT/build/asan/bin/vmd}
. "$(dirname "$0")/daemon_lib.sh"
[ -x "$VMD" ] || skip "$VMD is not built (make BUILD=asan tests): the hook is in test builds only"
[ -x "$(dirname "$VMD")/vmd-worker" ] || skip "$(dirname "$VMD")/vmd-worker is not built"
need_vmctl
command -v python3 > /dev/null || skip "python3 is not installed"
[ "$(id -u)" = 0 ] || skip "the worker sandbox drops privileges only when vmd runs as root"
need_ticker_initrd
VMD_TEST_SECCOMP_VIOLATION=bad start_vmd
for vm in bad good; do
    "$VMCTL" create $vm --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 128 --cmdline "console=ttyS0" \
        > /dev/null || fail "vmctl create $vm"
done
"$VMCTL" start good > /dev/null || fail "vmctl start good"
"$VMCTL" start bad > /dev/null || fail "vmctl start bad"
wait_state bad crashed 30 || fail "bad is $(vm_state bad) ($(vm_field bad reason)), not crashed"
reason=$(vm_field bad reason)
echo "$reason" | grep -Eq "killed by the sandbox: forbidden system call 250 \(keyctl\)" ||
    fail "bad's reason does not name the forbidden call: '$reason'"
ok "bad crashed: $reason"
expect_in "$VMD_LOG" "sandbox: seccomp: forbidden system call 250" "the worker's SIGSYS handler logged the call"
[ "$(vm_state good)" = running ] || fail "good is $(vm_state good) ($(vm_field good reason))"
ok "good still runs"
"$VMCTL" stop --force good > /dev/null || fail "vmctl stop --force good"
wait_state good stopped 30 || fail "good did not stop"
ok "good stopped"
