"""rpc_client: a raw JSON-RPC 2.0 client for vmd's integration tests (newline-delimited JSON
over a Unix socket or mutual TLS). Deliberately independent of vmd's own C client."""
import json
import socket
import ssl


_AUTO = object()


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.next_id = 1

    @classmethod
    def unix(cls, path, timeout=30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(path)
        return cls(s)

    @classmethod
    def tls(cls, port, ca, cert=None, key=None, timeout=30, host="127.0.0.1", source=None):
        """source: a local address to connect from (e.g. "127.0.0.7": vmd limits connections per
        source address)."""
        ctx = ssl.create_default_context(cafile=ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if cert:
            ctx.load_cert_chain(cert, key)
        raw = socket.create_connection((host, port), timeout=timeout, source_address=(source, 0) if source else None)
        s = ctx.wrap_socket(raw, server_hostname=host)
        return cls(s)

    def send_raw(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def read(self):
        """The next message (parsed), or None at EOF."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, method, params=None, id=_AUTO):
        if id is _AUTO:
            id = self.next_id
            self.next_id += 1
        msg = {"jsonrpc": "2.0", "method": method, "id": id}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg) + "\n")
        while True:
            m = self.read()
            if m is None:
                raise EOFError("connection closed while waiting for " + method)
            if isinstance(m, dict) and "method" in m:
                continue  # a notification
            return m

    def call(self, method, params=None):
        r = self.request(method, params)
        if "error" in r:
            raise RuntimeError("%s: %s" % (method, r["error"]))
        return r["result"]

    def notify(self, method, params=None):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        self.send_raw(json.dumps(msg) + "\n")

    def close(self):
        self.sock.close()
