# test_daemon_conn_limits: no class of peer can exhaust another's connections, driven by
# tests/integration/rogue_client.py. The Unix socket answers within 100 ms while 1000 idle TCP
# peers are connected (and refuses nothing when the TLS listener is full); 300 peers stalled in
# their handshake keep neither the Unix socket nor a valid TLS client (< 1 s) waiting; with the
# default per-address limit (32) the extra ones are refused at accept with rate-limited log lines;
# the handshake deadline frees their slots; idle TLS clients are closed, event listeners are not;
# the Unix socket's own limit does not touch TLS clients.
# timeout: 240
# serial: timing: the Unix socket must answer within 100 ms and a TLS client within 1 s while 1000 peers load vmd
# duration: 17
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
command -v openssl >/dev/null || skip "openssl is not installed"
ulimit -n 4096 2>/dev/null || skip "cannot raise the open files limit to 4096 for 1000 peers"
make_pki
PORT=$(free_port)
TLS="--listen 127.0.0.1:$PORT --tls-cert $PKI/server.crt --tls-key $PKI/server.key --tls-ca $PKI/ca.crt"
restart_vmd() { [ -n "$VMD_PID" ] && stop_vmd_hard; : > "$VMD_LOG"; start_vmd $TLS "$@"; }
py() { python3 - "$SOCK" "$PORT" "$PKI" "$@"; }

# --- 1000 idle TCP peers (25 from each of 40 addresses), the TLS listener full ---
restart_vmd --max-tls-clients 1000 --tls-handshake-timeout 60
py <<'PY' || fail "1000 idle TCP peers"
import sys, time
sys.path.insert(0, "tests/integration")
from rogue_client import *
sock, port, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3]
peers, failed = open_silent_peers(port, 1000, per_source=25)
time.sleep(0.5)
closed = count_closed(peers, 0.3)
if failed or closed:
    print("FAIL: of 1000 idle peers %d could not connect and %d were closed" % (failed, closed)); sys.exit(1)
print("ok: 1000 idle TCP peers connected (none refused)")
worst = unix_latency(sock, 30)
if worst >= 0.1:
    print("FAIL: the Unix socket took %.0f ms with 1000 idle TCP peers" % (worst * 1000)); sys.exit(1)
print("ok: the Unix socket answers in at most %.1f ms (30 connect + vm.list) with 1000 idle TCP peers" % (worst * 1000))
extra, _ = open_silent_peers(port, 1, per_source=1, source_list=["127.0.3.1"])
if count_closed(extra, 2) != 1:
    print("FAIL: peer 1001 was not refused"); sys.exit(1)
print("ok: peer 1001 is refused (the TLS listener is full)")
for p in peers[:10]: p.close()
time.sleep(0.3)
dt, r = tls_call_time(port, pki, source="127.0.3.2")
if "result" not in r or dt >= 1:
    print("FAIL: TLS client after 10 slots freed: %r in %.2f s" % (r, dt)); sys.exit(1)
print("ok: a freed slot serves a TLS client in %.0f ms" % (dt * 1000))
PY
expect_in "$VMD_LOG" "refused: already 1000 clients \(the maximum for the TLS listener\)" "vmd logged the full TLS listener"

# --- 300 peers stalled mid-handshake from one address, per-address limit raised ---
restart_vmd --max-clients-per-address 1000
py <<'PY' || fail "300 stalled handshakes, high per-address limit"
import sys, time
sys.path.insert(0, "tests/integration")
from rogue_client import *
sock, port, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3]
peers, failed = open_silent_peers(port, 300, hello=True)
time.sleep(0.3)
if failed or count_closed(peers, 0.3):
    print("FAIL: stalled peers refused or closed with a per-address limit of 1000"); sys.exit(1)
worst = unix_latency(sock, 20)
dt, r = tls_call_time(port, pki)
if worst >= 0.1 or dt >= 1 or "result" not in r:
    print("FAIL: with 300 stalled handshakes: Unix socket %.0f ms, TLS client %.2f s (%r)" % (worst * 1000, dt, r)); sys.exit(1)
print("ok: 300 peers stalled mid-handshake: Unix socket in at most %.1f ms, a TLS client from the same address in %.0f ms"
      % (worst * 1000, dt * 1000))
PY

# --- the same flood with the default per-address limit (32) and a 2 s handshake deadline ---
restart_vmd --tls-handshake-timeout 2
py <<'PY' || fail "300 stalled handshakes, default per-address limit"
import sys, time
sys.path.insert(0, "tests/integration")
from rogue_client import *
sock, port, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.monotonic()
peers, failed = open_silent_peers(port, 300, hello=True)
closed = count_closed(peers, 1.0)
if closed != 300 - 32:
    print("FAIL: %d of 300 peers from one address were closed at once, expected %d" % (closed, 300 - 32)); sys.exit(1)
print("ok: 268 of 300 peers from one address refused at accept (32 per address)")
worst = unix_latency(sock, 10)
dt, r = tls_call_time(port, pki, source="127.0.0.9")
if worst >= 0.1 or dt >= 1 or "result" not in r:
    print("FAIL: Unix socket %.0f ms, TLS client from another address %.2f s (%r)" % (worst * 1000, dt, r)); sys.exit(1)
print("ok: meanwhile the Unix socket answers in %.1f ms and a TLS client from another address in %.0f ms" % (worst * 1000, dt * 1000))
time.sleep(max(0, t0 + 3.2 - time.monotonic()))
n = count_closed(peers, 0.5)
if n != 300:
    print("FAIL: %d of the 32 stalled peers still open 3 s later (handshake deadline 2 s)" % (300 - n)); sys.exit(1)
dt, r = tls_call_time(port, pki)
if "result" not in r:
    print("FAIL: a TLS client from 127.0.0.1 after the deadline: %r" % r); sys.exit(1)
print("ok: the handshake deadline closed the 32 stalled peers; 127.0.0.1 is served again (%.0f ms)" % (dt * 1000))
PY
n=$(grep -c "refused: already 32 connections from 127.0.0.1" "$VMD_LOG")
[ "$n" -ge 1 ] && [ "$n" -le 15 ] || fail "$n refusal lines for 268 refusals (expected a few: at most 5 a second)"
expect_in "$VMD_LOG" "similar messages suppressed \(connection refusals" "the other refusals are counted in a 'suppressed' line"
ok "268 refusals logged in $n lines"
expect_in "$VMD_LOG" "TLS handshake not finished within 2.0 s" "vmd logged the handshake deadline"

# --- idle TLS clients are closed; event listeners and Unix clients are not; the Unix limit ---
restart_vmd --tls-idle-timeout 2 --max-clients 2
py <<'PY' || fail "idle timeout and the Unix socket's own limit"
import sys, time
sys.path.insert(0, "tests/integration")
from rogue_client import *
sock, port, pki = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tc = lambda: Conn.tls(port, pki + "/ca.crt", pki + "/client.crt", pki + "/client.key", timeout=10)
idle, listener, busy = tc(), tc(), tc()
assert idle.call("vm.list") == []
assert listener.call("events.subscribe") == {"subscribed": True}
u1, u2 = Conn.unix(sock), Conn.unix(sock)
assert u1.call("vm.list") == [] and u2.call("vm.list") == []
u3 = Conn.unix(sock, timeout=5)
try:
    u3.request("vm.list"); print("FAIL: a 3rd Unix client was served with --max-clients 2"); sys.exit(1)
except (EOFError, OSError):
    pass
print("ok: the 3rd Unix client is refused (--max-clients 2) ...")
t = tc(); assert t.call("host.info")["version"]; t.close()
print("ok: ... while TLS clients are still served")
for _ in range(5):  # 5 s: busy keeps sending requests, the others are silent
    time.sleep(1); assert busy.call("vm.list") == []
if count_closed([idle.sock], 0.2) != 1:
    print("FAIL: the idle TLS client is still open after 5 s (idle timeout 2 s)"); sys.exit(1)
print("ok: an idle TLS client is closed after the idle timeout")
assert listener.call("vm.list") == [] and u1.call("vm.list") == []
print("ok: an event subscriber, a TLS client making requests and an idle Unix client are kept")
PY
expect_in "$VMD_LOG" "closed: idle for 2 s" "vmd logged the idle client"
kill -0 "$VMD_PID" || fail "vmd died"
