"""rogue_client: misbehaving JSON-RPC peers for vmd's protection tests (test_daemon_conn_limits,
test_daemon_roles, test_daemon_bounded_work), and the measurements that show whether honest
clients are still served. Independent of vmd's own C client."""
import socket
import ssl
import time

from rpc_client import Conn

# A TLS record header announcing a 512-byte handshake message, and the first bytes of a
# ClientHello: the server has to wait for the rest, which never comes.
PARTIAL_CLIENT_HELLO = b"\x16\x03\x01\x02\x00" + b"\x01\x00\x01\xfc\x03\x03" + b"\x00" * 8


def sources(n):
    """n loopback source addresses 127.0.0.2, 127.0.0.3, ... (127.0.0.0/8 is all loopback)."""
    return ["127.0.0.%d" % (2 + i) if i < 250 else "127.0.%d.%d" % (1 + i // 250, 2 + i % 250) for i in range(n)]


def open_silent_peers(port, n, per_source=None, source_list=None, hello=False, host="127.0.0.1"):
    """Open n TCP connections to the TLS port that never complete a handshake: silent, or
    (hello=True) stalled in the middle of a ClientHello. per_source connections come from each
    address of source_list (default: all from 127.0.0.1). Returns (open sockets, number refused
    at connect)."""
    socks, failed = [], 0
    for i in range(n):
        src = None
        if per_source:
            src = (source_list or sources(n // per_source + 1))[i // per_source]
        try:
            s = socket.create_connection((host, port), timeout=10, source_address=(src, 0) if src else None)
            if hello:
                s.sendall(PARTIAL_CLIENT_HELLO)
            socks.append(s)
        except OSError:
            failed += 1
    return socks, failed


def count_closed(socks, wait=0.5):
    """How many of socks the server has closed (EOF or reset) within `wait` seconds."""
    deadline = time.monotonic() + wait
    closed = set()
    while time.monotonic() < deadline and len(closed) < len(socks):
        for i, s in enumerate(socks):
            if i in closed:
                continue
            s.settimeout(0.0)
            try:
                if s.recv(4096) == b"":
                    closed.add(i)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        time.sleep(0.05)
    return len(closed)


def unix_latency(path, samples=20, gap=0.05):
    """Connect to the Unix socket and call vm.list `samples` times; the worst time in seconds."""
    worst = 0.0
    for _ in range(samples):
        t0 = time.monotonic()
        c = Conn.unix(path, timeout=5)
        r = c.call("vm.list")
        assert isinstance(r, list), r
        c.close()
        worst = max(worst, time.monotonic() - t0)
        time.sleep(gap)
    return worst


def tls_call_time(port, pki, method="host.info", source=None, cert="client"):
    """Connect with mutual TLS, call method; (seconds for both, the response)."""
    t0 = time.monotonic()
    c = Conn.tls(port, pki + "/ca.crt", "%s/%s.crt" % (pki, cert), "%s/%s.key" % (pki, cert), timeout=10, source=source)
    r = c.request(method)
    dt = time.monotonic() - t0
    c.close()
    return dt, r


def batch(conn, calls):
    """Send one batch of (method, params) calls; return the parsed answer (a list, or an error object)."""
    import json
    msg = [{"jsonrpc": "2.0", "method": m, "params": p, "id": i} if p is not None else
           {"jsonrpc": "2.0", "method": m, "id": i} for i, (m, p) in enumerate(calls)]
    conn.send_raw(json.dumps(msg) + "\n")
    while True:
        r = conn.read()
        if r is None:
            raise EOFError("connection closed while waiting for a batch answer")
        if isinstance(r, dict) and "method" in r:
            continue
        return r
