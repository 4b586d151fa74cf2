# test_daemon_roles: roles from vmd's access file (--access), matched against the TLS client
# certificate's subject. An admin may call everything; a read-only client may call exactly the
# methods rpc/openrpc.json marks "x-role": "read-only" and gets -32010 for the others (also
# inside a batch); a CA-signed client matching no entry is refused after its handshake with a
# logged reason; the Unix socket is admin; SIGHUP reloads the file without dropping connections,
# applies new roles to connected clients and keeps the old rules when the new file is bad;
# without an access file every CA-signed client is admin.
# timeout: 120
# duration: 5
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
command -v openssl >/dev/null || skip "openssl is not installed"
make_pki
make_client_cert ops1 "/O=lab/CN=ops-1"
make_client_cert monitor "/O=lab/CN=monitor"
make_client_cert stranger "/O=elsewhere/CN=stranger"
ACCESS=$TEST_TMP/access.json
echo '{"admin": ["CN=ops-*"], "read-only": ["CN=monitor,O=lab"]}' > "$ACCESS"
PORT=$(free_port)
start_vmd --listen 127.0.0.1:$PORT --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.crt" --access "$ACCESS"
expect_in "$VMD_LOG" "access file .*access.json: 2 subject patterns" "vmd loaded the access file"

python3 - "$SOCK" "$PORT" "$PKI" "$VMD_PID" "$ACCESS" <<'PY' || fail "roles"
import sys, json, os, signal, time
sys.path.insert(0, "tests/integration")
from rogue_client import *
sock, port, pki, vmd_pid, access = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
doc = json.load(open("rpc/openrpc.json"))
roles = {m["name"]: m["x-role"] for m in doc["methods"]}
ro = sorted(n for n, r in roles.items() if r == "read-only")
assert ro == sorted(["vm.list", "vm.info", "vm.log", "events.subscribe", "events.unsubscribe", "host.info", "vm.snapshots", "vm.stats"]), ro
def tls(who):
    return Conn.tls(port, pki + "/ca.crt", "%s/%s.crt" % (pki, who), "%s/%s.key" % (pki, who), timeout=10)
def code(r):
    return r.get("error", {}).get("code")
def fail(msg):
    print("FAIL: " + msg); sys.exit(1)

# admin: no method is forbidden (each gets its own answer: a result, -32602 or -32001 ...)
ops = tls("ops1")
for m in roles:
    r = ops.request(m, {"name": "nosuchvm"} if m not in ("vm.list", "host.info", "events.subscribe", "events.unsubscribe") else None)
    if code(r) == -32010: fail("admin CN=ops-1,O=lab was refused %s: %r" % (m, r))
print("ok: admin (CN=ops-* matches CN=ops-1,O=lab) may call all %d methods" % len(roles))

# read-only: every read-only method answers; every other one is -32010 with a clear message
mon = tls("monitor")
for m in roles:
    r = mon.request(m, {"name": "nosuchvm"} if m not in ("vm.list", "host.info", "events.subscribe", "events.unsubscribe") else None)
    if roles[m] == "read-only":
        if code(r) == -32010: fail("read-only client refused %s: %r" % (m, r))
    else:
        want = "Forbidden: role read-only may not call %s" % m
        if code(r) != -32010 or r["error"]["message"] != want or r["error"].get("data") != {"role": "read-only", "method": m}:
            fail("read-only client calling %s: %r" % (m, r))
print("ok: read-only (CN=monitor,O=lab) may call %s; the other %d methods get -32010 'Forbidden: role read-only may not call ...'"
      % (", ".join(ro), len(roles) - len(ro)))
b = batch(mon, [("vm.list", None), ("vm.start", {"name": "x"}), ("host.info", None), ("vm.delete", {"name": "x"})])
by_id = {r["id"]: r for r in b}
if not ("result" in by_id[0] and code(by_id[1]) == -32010 and "result" in by_id[2] and code(by_id[3]) == -32010):
    fail("mixed batch from a read-only client: %r" % b)
print("ok: in one batch, a read-only client's reads are answered and its writes refused")

# no matching entry: refused right after the handshake, told why
try:
    st = tls("stranger")
    r = st.read()
    if not (isinstance(r, dict) and code(r) == -32010 and "CN=stranger,O=elsewhere" in r["error"]["message"]):
        fail("unknown subject: first message %r" % r)
    if st.read() is not None: fail("unknown subject: connection not closed")
except (ConnectionError, OSError) as e:
    fail("unknown subject: %r instead of a -32010 message and EOF" % e)
print("ok: a CA-signed client matching no entry gets -32010 (%s) and is disconnected" % r["error"]["message"])

# the Unix socket is admin
u = Conn.unix(sock)
r = u.request("vm.start", {"name": "nosuchvm"})
if code(r) != -32001: fail("Unix socket client: %r" % r)
print("ok: the Unix socket is admin")

# SIGHUP: monitor becomes admin, stranger read-only; connections are not dropped
sub = tls("monitor"); assert sub.call("events.subscribe") == {"subscribed": True}
with open(access, "w") as f:
    json.dump({"admin": ["CN=ops-*", "CN=monitor"], "read-only": ["O=elsewhere"]}, f)
os.kill(vmd_pid, signal.SIGHUP); time.sleep(0.5)
r = mon.request("vm.start", {"name": "nosuchvm"})
if code(r) != -32001: fail("after reload, the connected monitor is not admin: %r" % r)
assert ops.call("vm.list") == [] and sub.call("vm.list") == []
print("ok: SIGHUP applied the new file to connected clients (monitor is admin now) and dropped none")
st = tls("stranger")
if code(st.request("vm.list")) is not None or code(st.request("vm.stop", {"name": "x"})) != -32010:
    fail("after reload, stranger is not read-only")
print("ok: after the reload a new client gets its new role (stranger: read-only)")

# a bad file on reload: the old rules stay
with open(access, "w") as f:
    f.write('{"admin": ["CN=ops-*"], "superuser": ["*"]}')
os.kill(vmd_pid, signal.SIGHUP); time.sleep(0.5)
if code(mon.request("vm.start", {"name": "nosuchvm"})) != -32001: fail("a bad file changed the monitor's role")
st2 = tls("stranger")
if code(st2.request("vm.stop", {"name": "x"})) != -32010: fail("a bad file changed the rules for new clients")
print("ok: a bad access file on SIGHUP keeps the rules loaded before")

# a reload that leaves a connected client matching nothing closes it
with open(access, "w") as f:
    json.dump({"admin": ["CN=ops-*"], "read-only": ["CN=monitor"]}, f)
os.kill(vmd_pid, signal.SIGHUP); time.sleep(0.5)
if count_closed([st.sock, st2.sock], 1) != 2: fail("clients that no longer match were not closed")
if code(mon.request("vm.start", {"name": "x"})) != -32010: fail("monitor not read-only again")
assert ops.call("vm.list") == []
print("ok: a reload closes connected clients that no longer match any entry; the others stay")
PY
expect_in "$VMD_LOG" "refused: certificate subject \"CN=stranger,O=elsewhere\" matches no entry of the access file" "vmd logged the refused subject"
expect_in "$VMD_LOG" "unknown role 'superuser'.*keeping the access rules loaded before" "vmd logged why the bad file was not used"
expect_in "$VMD_LOG" "role read-only -> admin" "vmd logged the role change"

# a bad access file at start-up is fatal; no access file: every CA-signed client is admin
stop_vmd_hard
echo '{"admin": "CN=x"}' > "$TEST_TMP/bad.json"
if "$VMD" --state-dir "$STATE" --socket "$SOCK" --access "$TEST_TMP/bad.json" > "$TEST_TMP/bad.log" 2>&1; then fail "vmd started with a bad access file"; fi
expect_in "$TEST_TMP/bad.log" "'admin' must be an array of subject patterns" "a bad access file stops vmd at start-up, naming the problem"
start_vmd --listen 127.0.0.1:$PORT --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.crt"
python3 - "$PORT" "$PKI" <<'PY' || fail "no access file"
import sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
c = Conn.tls(int(sys.argv[1]), sys.argv[2] + "/ca.crt", sys.argv[2] + "/stranger.crt", sys.argv[2] + "/stranger.key")
r = c.request("vm.start", {"name": "nosuchvm"})
assert r["error"]["code"] == -32001, r
print("ok: without an access file a CA-signed client (CN=stranger) is admin")
PY
kill -0 "$VMD_PID" || fail "vmd died"
