# test_daemon_limits: vmd protects itself. --max-clients N refuses connection N+1 (the others keep
# working, and a slot frees when a client leaves); a second vmd on the same state dir refuses to
# start; the API socket is mode 0660, so another user cannot connect.
# timeout: 60
# duration: 1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
start_vmd --max-clients 3
python3 - "$SOCK" <<'PY' || fail "client limit"
import sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
cs = [Conn.unix(sys.argv[1], timeout=5) for _ in range(3)]
for c in cs: assert c.call("vm.list") == []
extra = Conn.unix(sys.argv[1], timeout=5)
try:
    r = extra.request("vm.list")
    print("FAIL: connection 4 of 3 was served: %r" % r); sys.exit(1)
except (EOFError, ConnectionError, OSError):
    pass
print("ok: the 4th client is refused")
for c in cs: assert c.call("vm.list") == []
print("ok: the first 3 still work")
cs[0].close()
import time; time.sleep(0.3)
late = Conn.unix(sys.argv[1], timeout=5)
assert late.call("host.info")["version"]
print("ok: a slot freed by a leaving client is reusable")
PY
grep -q "refused: already 3 clients" "$VMD_LOG" || fail "vmd did not log the refusal"
ok "vmd logged the refusal"

if "$VMD" --state-dir "$STATE" --socket "$TEST_TMP/second.sock" > "$TEST_TMP/second.log" 2>&1; then
    fail "a second vmd started on the same state dir"
fi
expect_in "$TEST_TMP/second.log" "another vmd is already using it" "a second vmd on the same state dir refuses to start"
"$VMCTL" list > /dev/null || fail "the first vmd stopped answering"

[ "$(stat -c %a "$SOCK")" = 660 ] || fail "socket mode $(stat -c %a "$SOCK"), expected 660"
ok "socket mode 0660"
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
    chmod 0755 "$TEST_TMP"
    if setpriv --reuid=65534 --regid=65534 --clear-groups "$VMCTL" --connect "unix:$SOCK" list > "$TEST_TMP/nobody" 2>&1; then
        fail "user nobody could use the API"
    fi
    expect_in "$TEST_TMP/nobody" "Permission denied" "user nobody cannot connect"
else
    echo "note: not root (or no setpriv): the other-user check is not run"
fi
kill -0 "$VMD_PID" || fail "vmd died"
