# test_vmctl_usage: `vmctl run` rejects bad options with a usage error (exit 2) that names the option.
# duration: 1
. "$(dirname "$0")/lib.sh"
need_vmctl
out=$TEST_TMP/out

# run_expect RC PATTERN ARGS...: vmctl run ARGS exits RC and its stderr matches PATTERN.
run_expect() {
    local want=$1 pat=$2; shift 2
    local rc=0
    "$VMCTL" run "$@" < /dev/null > /dev/null 2> "$out" || rc=$?
    [ "$rc" -eq "$want" ] || { cat "$out"; fail "vmctl run $*: exit $rc, expected $want"; }
    grep -Eq -- "$pat" "$out" || { cat "$out"; fail "vmctl run $*: stderr does not match '$pat'"; }
    ok "vmctl run $* -> exit $rc: $(head -1 "$out")"
}

run_expect 2 "'--bogus'" --bogus --kernel /dev/null
run_expect 2 "--memory" --kernel /dev/null --memory
run_expect 2 "--memory: 'abc'" --kernel /dev/null --memory abc
run_expect 2 "--memory: '0'" --kernel /dev/null --memory 0
run_expect 2 "--accel: 'warp'" --kernel /dev/null --accel warp
run_expect 2 "--cpus: 'many'" --kernel /dev/null --cpus many
run_expect 2 "--kernel" --memory 64
run_expect 2 "unexpected argument 'stray'" --kernel /dev/null stray
run_expect 2 "--net: 'bogus'" --kernel /dev/null --net bogus
run_expect 2 "usage: vmctl run" --no-such-option
run_expect 2 "'--restore'" --kernel /dev/null --restore
run_expect 2 "'--snapshot-on-signal'" --kernel /dev/null --snapshot-on-signal
# --help is not an error: usage on stdout, exit 0
"$VMCTL" run --help > "$out" 2>&1 || fail "vmctl run --help: exit $?"
grep -q -- "--kernel KERNEL" "$out" || fail "vmctl run --help does not describe --kernel"
grep -q -- "--restore PATH" "$out" || fail "vmctl run --help does not describe --restore"
grep -q -- "--snapshot-on-signal PATH" "$out" || fail "vmctl run --help does not describe --snapshot-on-signal"
ok "vmctl run --help"
