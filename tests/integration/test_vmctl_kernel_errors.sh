# test_vmctl_kernel_errors: `vmctl run` refuses a kernel it cannot boot with a message naming the file
# and the reason, and a non-zero exit: a missing file, a file that is not a bzImage, an empty file.
# duration: 1
. "$(dirname "$0")/lib.sh"
need_vmctl
out=$TEST_TMP/out

# refuse PATTERN ARGS...: vmctl run ARGS fails (non-zero, not a crash) and stderr matches PATTERN.
refuse() {
    local pat=$1; shift
    local rc=0
    timeout 30 "$VMCTL" run --memory 256 "$@" < /dev/null > /dev/null 2> "$out" || rc=$?
    [ $rc -ne 0 ] || fail "vmctl run $*: exit 0, expected an error"
    [ $rc -lt 124 ] || { cat "$out"; fail "vmctl run $*: exit $rc (timeout or signal)"; }
    grep -Eiq -- "$pat" "$out" || { cat "$out"; fail "vmctl run $*: stderr does not match '$pat'"; }
    ok "vmctl run $* -> exit $rc: $(grep -Ei -- "$pat" "$out" | head -1)"
}

accels=emu
# Under kvm the file checks must come before (and not depend on) the backend; test it where KVM opens.
[ -r /dev/kvm ] && [ -w /dev/kvm ] && accels="emu kvm"
for accel in $accels; do
    refuse "/nonexistent/vmlinuz.*(no such file|not found)" --accel $accel --kernel /nonexistent/vmlinuz
    refuse "/etc/passwd.*(bzimage|boot protocol|not a .*kernel|magic)" --accel $accel --kernel /etc/passwd
    : > "$TEST_TMP/empty"
    refuse "empty.*(bzimage|boot protocol|not a .*kernel|too small|magic|empty)" --accel $accel --kernel "$TEST_TMP/empty"
    refuse "initrd.*/nonexistent/initrd.*(no such file|not found)" --accel $accel --kernel "$GUEST/vmlinuz" \
        --initrd /nonexistent/initrd
done
