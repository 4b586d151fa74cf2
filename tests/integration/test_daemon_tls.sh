# test_daemon_tls: vmd's TCP listener speaks TLS 1.3 by default, TLS 1.2 only with ECDHE + AEAD
# suites (static RSA, CBC and DHE suites are refused), and requires a client certificate signed
# by --tls-ca: a client without a certificate, or with one from another CA, gets no answer;
# plain TCP gets none; TLS 1.1 is refused; a client that never handshakes is closed after 10 s;
# 40 concurrent TLS clients making 25 calls each all succeed; vmctl works over tls://.
# timeout: 180
# duration: 14
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
command -v openssl >/dev/null || skip "openssl is not installed"
make_pki
PORT=$(free_port)
start_vmd --listen 127.0.0.1:$PORT --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.crt"

python3 - "$PORT" "$PKI" <<'PY' || fail "TLS client certificate checks"
import sys, ssl, socket, json
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
port, pki = int(sys.argv[1]), sys.argv[2]
def refused(what, **kw):
    try:
        c = Conn.tls(port, pki + "/ca.crt", timeout=10, **kw)
        r = c.request("vm.list")
    except (ssl.SSLError, ConnectionError, EOFError, OSError) as e:
        print("ok: %s refused (%s)" % (what, type(e).__name__ + ": " + str(e)[:80]))
        return
    print("FAIL: %s was answered: %r" % (what, r)); sys.exit(1)
refused("client without a certificate")
refused("client with another CA's certificate", cert=pki + "/intruder.crt", key=pki + "/intruder.key")
# plain TCP, no TLS at all
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b'{"jsonrpc":"2.0","method":"vm.list","id":1}\n')
try:
    data = s.recv(4096)
except OSError:
    data = b""
if b'"result"' in data:
    print("FAIL: plain TCP got an answer: %r" % data); sys.exit(1)
print("ok: plain TCP gets no answer")
# the right certificate works, and over TLS 1.2 too
c = Conn.tls(port, pki + "/ca.crt", pki + "/client.crt", pki + "/client.key")
assert c.call("vm.list") == []
print("ok: client certificate from the CA accepted (%s)" % c.sock.version())
ctx12 = ssl.create_default_context(cafile=pki + "/ca.crt"); ctx12.load_cert_chain(pki + "/client.crt", pki + "/client.key")
ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
c12 = Conn(ctx12.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1"))
assert c12.call("host.info")["version"]
print("ok: TLS 1.2 accepted")
PY
# TLS 1.1 is below vmd's minimum: the server answers with a protocol_version alert (70). The
# client's own security level is lowered so that the refusal is the server's.
echo | timeout 10 openssl s_client -connect 127.0.0.1:$PORT -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' \
    -cert "$PKI/client.crt" -key "$PKI/client.key" > "$TEST_TMP/tls11" 2>&1
expect_in "$TEST_TMP/tls11" "alert protocol version|alert number 70" "TLS 1.1 refused by vmd"
# TLS policy: 1.3 by default; 1.2 only with ECDHE + AEAD. A static-RSA (no ECDHE) suite, a CBC
# (non-AEAD) suite and finite-field DHE are refused by vmd (handshake failure alert, 40).
SC="timeout 10 openssl s_client -connect 127.0.0.1:$PORT -cert $PKI/client.crt -key $PKI/client.key -CAfile $PKI/ca.crt"
echo | $SC > "$TEST_TMP/tls13" 2>&1
expect_in "$TEST_TMP/tls13" "New, TLSv1.3, Cipher is TLS_" "TLS 1.3 is negotiated by default"
for suite in AES128-SHA AES256-GCM-SHA384 ECDHE-RSA-AES128-SHA DHE-RSA-AES128-GCM-SHA256; do
    echo | $SC -tls1_2 -cipher "$suite:@SECLEVEL=0" > "$TEST_TMP/tls12-$suite" 2>&1
    grep -q "Cipher is $suite" "$TEST_TMP/tls12-$suite" && fail "TLS 1.2 with $suite was accepted"
    expect_in "$TEST_TMP/tls12-$suite" "alert handshake failure|alert number 40|no shared cipher" "TLS 1.2 with $suite refused"
done
for suite in ECDHE-RSA-AES128-GCM-SHA256 ECDHE-RSA-AES256-GCM-SHA384 ECDHE-RSA-CHACHA20-POLY1305; do
    echo | $SC -tls1_2 -cipher "$suite" > "$TEST_TMP/tls12-$suite" 2>&1
    expect_in "$TEST_TMP/tls12-$suite" "Cipher is $suite" "TLS 1.2 with $suite accepted"
done
grep -q "TLS handshake refused" "$VMD_LOG" || fail "vmd did not log the refused handshakes"
ok "vmd logged the refused handshakes"

python3 - "$PORT" "$PKI" <<'PY' || fail "40 concurrent TLS clients x 25 calls"
import sys, threading
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
port, pki = int(sys.argv[1]), sys.argv[2]
N, CALLS = 40, 25
ok = [0] * N; errors = []
barrier = threading.Barrier(N)
def client(i):
    try:
        # from 4 source addresses: 40 from one would exceed vmd's default of 32 per address
        c = Conn.tls(port, pki + "/ca.crt", pki + "/client.crt", pki + "/client.key", timeout=60,
                     source="127.0.0.%d" % (2 + i % 4))
        barrier.wait(timeout=60)  # all 40 connected at once
        for k in range(CALLS):
            r = c.request("vm.list" if k % 2 else "host.info", None, id="c%d-%d" % (i, k))
            if "result" not in r or r["id"] != "c%d-%d" % (i, k):
                errors.append("client %d call %d: %r" % (i, k, r)); return
            ok[i] += 1
        c.close()
    except Exception as e:
        errors.append("client %d: %r" % (i, e))
ts = [threading.Thread(target=client, args=(i,)) for i in range(N)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors:
    print("FAIL: %d errors, first: %s" % (len(errors), errors[0])); sys.exit(1)
print("ok: %d clients x %d calls = %d successful calls, none failed" % (N, CALLS, sum(ok)))
assert sum(ok) == N * CALLS
PY

# a TCP client that never starts its TLS handshake is disconnected (it must not hold a slot)
python3 - "$PORT" <<'PY' || fail "silent TCP client"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
t0 = time.time()
try:
    data = s.recv(100)
except OSError:
    data = b""
if data or time.time() - t0 > 15:
    print("FAIL: silent client not closed in time (%r after %.1f s)" % (data, time.time() - t0)); sys.exit(1)
print("ok: a client that never handshakes is closed after %.1f s" % (time.time() - t0))
PY
grep -q "TLS handshake not finished" "$VMD_LOG" || fail "vmd did not log the handshake timeout"

# vmctl over mutual TLS, and its refusal without a client certificate
T="--connect tls://127.0.0.1:$PORT --ca $PKI/ca.crt"
"$VMCTL" $T --cert "$PKI/client.crt" --key "$PKI/client.key" host > "$TEST_TMP/host" 2>&1 || { cat "$TEST_TMP/host"; fail "vmctl host over TLS"; }
expect_in "$TEST_TMP/host" "^vmd: " "vmctl host over TLS"
if "$VMCTL" $T list > "$TEST_TMP/nocert" 2>&1; then fail "vmctl without a client certificate succeeded"; fi
ok "vmctl without a client certificate fails: $(head -1 "$TEST_TMP/nocert")"
kill -0 "$VMD_PID" || fail "vmd died"
