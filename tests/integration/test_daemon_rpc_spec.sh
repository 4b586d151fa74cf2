# test_daemon_rpc_spec: vmd answers exactly as JSON-RPC 2.0 says, over the Unix socket and over
# mutual TLS: parse error, invalid request, unknown method, invalid params naming the field,
# batches (mixed, empty, notifications only), notifications (no response), string/number/null
# ids, application errors, split and coalesced messages, and an oversize message.
# timeout: 120
# duration: 5
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
command -v openssl >/dev/null || skip "openssl is not installed"
make_pki
PORT=$(free_port)
start_vmd --listen 127.0.0.1:$PORT --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.crt"
head -c 4096 /dev/urandom > "$TEST_TMP/kernel"

for transport in unix tls; do
python3 - "$transport" "$SOCK" "$PORT" "$PKI" "$TEST_TMP/kernel" <<'PY' || fail "JSON-RPC spec checks over $transport"
import sys, json, time
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
transport, sock, port, pki, kernel = sys.argv[1:6]
def connect():
    if transport == "unix":
        return Conn.unix(sock)
    return Conn.tls(int(port), pki + "/ca.crt", pki + "/client.crt", pki + "/client.key")
c = connect()
checks = 0
def check(cond, what, got=None):
    global checks
    if not cond:
        print("FAIL (%s): %s; got %r" % (transport, what, got))
        sys.exit(1)
    checks += 1
def err(resp, code, what):
    check(isinstance(resp, dict) and resp.get("jsonrpc") == "2.0" and "result" not in resp
          and resp.get("error", {}).get("code") == code and isinstance(resp["error"].get("message"), str), what, resp)

# -32700 parse error, id null
c.send_raw('{"jsonrpc": "2.0", "method": "vm.list", "params": [1, 2\n')
r = c.read(); err(r, -32700, "parse error"); check(r["id"] is None, "parse error id is null", r)
# -32600 invalid request
c.send_raw('{"jsonrpc": "2.0", "method": 1, "params": "bar"}\n')
r = c.read(); err(r, -32600, "method not a string"); check(r["id"] is None, "invalid request id null", r)
c.send_raw('{"jsonrpc": "1.0", "method": "vm.list", "id": 5}\n')
r = c.read(); err(r, -32600, "wrong jsonrpc version"); check(r["id"] == 5, "id kept", r)
c.send_raw('"hello"\n'); err(c.read(), -32600, "not an object")
# -32601 method not found
r = c.request("vm.explode", {}, id="s1"); err(r, -32601, "unknown method"); check(r["id"] == "s1", "string id", r)
# ids: number, string, null
r = c.request("vm.list", None, id=17); check(r.get("result") == [] and r["id"] == 17, "number id", r)
r = c.request("vm.list", None, id=None); check("result" in r and r["id"] is None, "null id", r)
# -32602 naming the field
r = c.request("vm.info", {}); err(r, -32602, "missing name"); check(r["error"]["data"]["field"] == "name" and "name" in r["error"]["message"], "field named", r)
r = c.request("vm.stop", {"name": "x", "force": "yes"}); err(r, -32602, "force not boolean"); check(r["error"]["data"]["field"] == "force", "force named", r)
r = c.request("vm.stop", {"name": "x", "timeout": 0}); err(r, -32602, "timeout out of range"); check(r["error"]["data"]["field"] == "timeout", "timeout named", r)
r = c.request("vm.create", {"name": "v1", "kernel": kernel, "memory_mib": "lots"}); err(r, -32602, "memory_mib type"); check(r["error"]["data"]["field"] == "memory_mib", "memory_mib named", r)
r = c.request("vm.create", {"name": "v1", "kernel": kernel, "accel": "warp"}); err(r, -32602, "accel value"); check(r["error"]["data"]["field"] == "accel", "accel named", r)
r = c.request("vm.create", {"name": "v1", "kernel": "/nonexistent/k"}); err(r, -32602, "kernel missing"); check(r["error"]["data"]["field"] == "kernel", "kernel named", r)
r = c.request("vm.create", {"name": "bad/name", "kernel": kernel}); err(r, -32602, "bad name"); check(r["error"]["data"]["field"] == "name", "name named", r)
r = c.request("vm.create", {"name": "v1", "kernel": kernel, "colour": "red"}); err(r, -32602, "unknown param"); check(r["error"]["data"]["field"] == "colour", "unknown param named", r)
r = c.request("vm.info", ["a", "b"]); err(r, -32602, "too many positional params")
# application errors
name = "spec-" + transport
r = c.request("vm.info", {"name": "nope"}); err(r, -32001, "no such VM")
r = c.request("vm.create", {"name": name, "kernel": kernel, "memory_mib": 64, "accel": "emu"}); check(r.get("result", {}).get("state") == "defined", "create", r)
r = c.request("vm.create", {"name": name, "kernel": kernel}); err(r, -32003, "already exists")
r = c.request("vm.pause", {"name": name}); err(r, -32002, "pause a defined VM: wrong state")
r = c.request("vm.stop", [name]); err(r, -32002, "positional params reach the method (wrong state)")
# notifications: no response at all (a following request is answered first)
c.notify("vm.list"); c.notify("vm.nonexistent"); c.notify("vm.info", {})
r = c.request("vm.list", None, id="after"); check(r["id"] == "after", "notifications got no response", r)
# batches
c.send_raw("[]\n"); r = c.read(); err(r, -32600, "empty batch gives one error"); check(isinstance(r, dict), "not an array", r)
c.send_raw("[1,2,3]\n"); r = c.read(); check(isinstance(r, list) and len(r) == 3 and all(x["error"]["code"] == -32600 for x in r), "batch of invalid", r)
c.send_raw(json.dumps([
    {"jsonrpc": "2.0", "method": "vm.list", "id": "1"},
    {"jsonrpc": "2.0", "method": "vm.list"},
    {"jsonrpc": "2.0", "method": "host.info", "id": 2},
    {"foo": "boo"},
    {"jsonrpc": "2.0", "method": "no.such", "id": "5"},
    {"jsonrpc": "2.0", "method": "vm.info", "params": {"name": name}, "id": 6}]) + "\n")
r = c.read()
check(isinstance(r, list) and len(r) == 5, "mixed batch: 5 responses (the notification has none)", r)
byid = {json.dumps(x["id"]): x for x in r}
check("result" in byid['"1"'] and "result" in byid["2"] and byid['"5"']["error"]["code"] == -32601
      and byid["6"]["result"]["name"] == name and byid["null"]["error"]["code"] == -32600, "mixed batch contents", r)
c.send_raw('[{"jsonrpc":"2.0","method":"vm.list"},{"jsonrpc":"2.0","method":"host.info"}]\n')
r = c.request("vm.list", None, id="after-batch"); check(r["id"] == "after-batch", "all-notification batch: no response", r)
# framing: one message split over several writes, and several messages in one write
msg = json.dumps({"jsonrpc": "2.0", "method": "vm.list", "id": 99}) + "\n"
for i in range(0, len(msg), 7):
    c.send_raw(msg[i:i+7]); time.sleep(0.01)
check(c.read()["id"] == 99, "split message")
c.send_raw("".join(json.dumps({"jsonrpc": "2.0", "method": "vm.list", "id": 100 + i}) + "\n" for i in range(5)))
ids = sorted(c.read()["id"] for _ in range(5)); check(ids == list(range(100, 105)), "coalesced messages", ids)
# cleanup of the VM
check(c.request("vm.delete", {"name": name}).get("result", {}).get("deleted") is True, "delete")
# oversize: > 1 MiB without a newline -> -32600 then the connection is closed
big = connect()
try:
    big.send_raw('{"jsonrpc":"2.0","method":"vm.list","params":["' + "x" * (1100 * 1024))
except OSError:
    pass
r = big.read(); err(r, -32600, "oversize message")
check(big.read() is None, "connection closed after oversize")
# the server is still fine
check(c.request("vm.list")["result"] == [], "server alive after oversize client")
print("ok: %d JSON-RPC checks over %s" % (checks, transport))
PY
done
# a client that sends requests but never reads its answers is dropped once 8 MiB of answers wait
# for it, and meanwhile everyone else is served
python3 - "$SOCK" <<'PY' || fail "slow client"
import sys, json, socket, time, threading
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); slow.connect(sys.argv[1])
slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
batch = (json.dumps([{"jsonrpc": "2.0", "method": "host.info", "id": i} for i in range(128)]) + "\n").encode()  # 128: the batch limit
other = Conn.unix(sys.argv[1], timeout=10)
sent, dropped, t0 = 0, False, time.time()
slow.settimeout(5)
while time.time() - t0 < 60:
    try:
        slow.sendall(batch); sent += 1
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        dropped = True; break
    if sent % 10 == 0:
        t1 = time.time(); assert other.call("vm.list") == []
        assert time.time() - t1 < 2, "another client waited %.1f s" % (time.time() - t1)
if not dropped:
    print("FAIL: the non-reading client was never dropped (%d batches sent)" % sent); sys.exit(1)
assert other.call("vm.list") == []
print("ok: a client that never reads was dropped after %d batches of 128 requests; others kept being served" % sent)
PY
grep -q "peer not reading" "$VMD_LOG" || fail "vmd did not log dropping the slow client"
kill -0 "$VMD_PID" || fail "vmd died"
ok "vmd still running"
