# test_vnc_tls: the VNC console offers TLS when given a certificate (vmd hands its own to its
# workers): a client completes a TLS handshake that verifies the server's certificate, upgrades
# to a websocket (libvncserver's secure transport, as noVNC uses it) and receives the RFB
# protocol version; the certificate presented is the configured one (a client trusting only
# another CA rejects it).
# timeout: 300
# duration: 1
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
command -v openssl > /dev/null || skip "openssl is not installed"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$TEST_TMP/key.pem" -out "$TEST_TMP/cert.pem" 2> /dev/null || fail "openssl req"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other" \
    -keyout "$TEST_TMP/other-key.pem" -out "$TEST_TMP/other.pem" 2> /dev/null || fail "openssl req"
log=$TEST_TMP/vmctl.log
# VNC over TLS needs an unconfined process (libvncserver opens the certificate by path at each
# connection; docs/security.md): as root, vmctl run refuses it in its sandbox, so --no-sandbox here.
nosb=()
if [ "$(id -u)" = 0 ]; then
    "$VMCTL" run --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --cmdline "console=ttyS0 quiet" \
        --vnc "127.0.0.1:0,tls-cert=$TEST_TMP/cert.pem,tls-key=$TEST_TMP/key.pem" < /dev/null > "$log" 2>&1 &&
        fail "vmctl run as root accepted VNC TLS in its sandbox"
    expect_in "$log" "tls-cert/tls-key are read by libvncserver at each connection" "the sandbox refuses VNC TLS, saying why"
    nosb=(--no-sandbox)
fi
"$VMCTL" run "${nosb[@]}" --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --cmdline "console=ttyS0 quiet" \
    --vnc "127.0.0.1:0,tls-cert=$TEST_TMP/cert.pem,tls-key=$TEST_TMP/key.pem" < /dev/null > "$log" 2>&1 &
vm=$!
trap 'kill $vm 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
for _ in $(seq 150); do grep -q "vnc: listening on" "$log" && break; sleep 0.2; done
addr=$(sed -n 's/.*vnc: listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log" | head -1)
[ -n "$addr" ] || { cat "$log"; fail "vmctl did not report its VNC address"; }
expect_in "$log" "vnc: listening on $addr .*TLS" "VNC listens with TLS on $addr"
python3 - "${addr##*:}" "$TEST_TMP/cert.pem" "$TEST_TMP/other.pem" <<'PY' || fail "TLS websocket VNC session"
import base64, os, socket, ssl, sys
port, cert, other = int(sys.argv[1]), sys.argv[2], sys.argv[3]

def session(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="127.0.0.1")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: binary\r\n"
               "Origin: https://127.0.0.1\r\n\r\n" % key).encode())
    resp = b""
    while b"\r\n\r\n" not in resp:
        chunk = s.recv(4096)
        if not chunk: raise SystemExit("connection closed during the websocket upgrade: %r" % resp)
        resp += chunk
    head, rest = resp.split(b"\r\n\r\n", 1)
    if b" 101 " not in head.split(b"\r\n")[0]: raise SystemExit("no websocket upgrade: %r" % head)
    while len(rest) < 2: rest += s.recv(4096)
    n = rest[1] & 0x7f
    while len(rest) < 2 + n: rest += s.recv(4096)
    payload = rest[2:2 + n]
    if not payload.startswith(b"RFB 003.00"): raise SystemExit("expected the RFB version, got %r" % payload)
    print("ok: TLS (%s) websocket session, server sent %r" % (s.version(), payload.strip().decode()))
    s.close()

session(cert)
try:
    session(other)
    raise SystemExit("a client that does not trust the certificate got through")
except ssl.SSLCertVerificationError:
    print("ok: a client with another CA refuses the server's certificate")
PY
kill $vm
