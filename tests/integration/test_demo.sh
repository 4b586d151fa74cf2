# test_demo: `make demo`'s script without a terminal (as in CI) boots the scripted guest under
# vmctl run --accel auto; the guest reports its kernel and a computed value and powers off; exit 0.
# timeout: 900
# duration: 7
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
log=$TEST_TMP/demo.log
rc=0
DEMO_TIMEOUT=${DEMO_TIMEOUT:-600} scripts/demo.sh < /dev/null > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
cat "$log.txt" | grep -E '^(demo|DEMO):'
expect_in "$log.txt" "^DEMO: uname: Linux .* $(sed -n 's/^cloud-kernel //p' "$GUEST/VERSIONS") " "the guest runs the cloud kernel"
expect_in "$log.txt" '^DEMO: 6 \* 7 = 42$' "the guest computed 6*7"
expect_in "$log.txt" '^demo: the guest powered off; vmctl exited 0$' "the demo ended with the guest's poweroff"
[ $rc -eq 0 ] || fail "scripts/demo.sh exited $rc"
