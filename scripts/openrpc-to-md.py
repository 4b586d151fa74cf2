#!/usr/bin/env python3
"""openrpc-to-md: write docs/jsonrpc.md from rpc/openrpc.json (the API's one source).
usage: scripts/openrpc-to-md.py [rpc/openrpc.json] > docs/jsonrpc.md"""
import json
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "rpc/openrpc.json"
doc = json.load(open(src))
errors = doc["components"]["errors"]
out = []
w = out.append


def schema_text(s):
    if "$ref" in s:
        return s["$ref"].split("/")[-1]
    t = s.get("type", "")
    if isinstance(t, list):
        t = " or ".join(t)
    extra = []
    if "enum" in s:
        extra.append("one of " + ", ".join('`%s`' % e for e in s["enum"]))
    for lo, hi, unit in (("minimum", "maximum", ""), ("minLength", "maxLength", " chars"), ("minItems", "maxItems", " items")):
        if lo in s or hi in s:
            extra.append("%s..%s%s" % (s.get(lo, ""), s.get(hi, ""), unit))
    if t == "array" and "items" in s:
        t = "array of " + schema_text(s["items"])
    return t + (" (" + "; ".join(extra) + ")" if extra else "")


w("# vmd JSON-RPC API reference")
w("")
w("<!-- Generated from rpc/openrpc.json by scripts/openrpc-to-md.py; edit the JSON, then regenerate. -->")
w("")
w(doc["info"]["description"])
w("")
w("## Transport and framing")
w("")
w("- **Unix socket** (default `/run/vmd/vmd.sock`, mode 0660, group `--socket-group`): vmd reads the peer's")
w("  credentials (`SO_PEERCRED`), logs them, and accepts root, its own user and members of the socket's group.")
w("- **TLS over TCP** (`--listen ADDR:PORT`): TLS 1.3 preferred; TLS 1.2 only with ECDHE key exchange and an AEAD")
w("  suite (AES-GCM, ChaCha20-Poly1305); nothing older. The client must present a certificate signed by")
w("  `--tls-ca`. A client without a certificate, or with one from another CA, fails the handshake,")
w("  and a client that has not finished its handshake after 10 s (`--tls-handshake-timeout`) is disconnected.")
w("- **Framing**: newline-delimited JSON. Each message (a request, a notification, or a batch array) is one line")
w("  of UTF-8 JSON ending in `\\n` (JSON text never contains a raw newline, so no escaping is needed). Messages")
w("  may be split across reads or several may share one read. A message longer than 1 MiB gets a -32600 error")
w("  (id null) and the connection is closed. Blank lines are ignored.")
w("- **Connection limits**: each listener has its own: at most `--max-clients` on the Unix socket (default 128),")
w("  `--max-tls-clients` on TLS (default 1024) and `--max-clients-per-address` from one source address (default 32).")
w("  A connection over a limit is closed at accept, before any TLS. A TLS client that sends no request for")
w("  `--tls-idle-timeout` seconds (default 300) is closed unless it waits for an answer, is subscribed to events or is")
w("  attached to a console. A client whose unread responses exceed 8 MiB is disconnected so that one slow reader")
w("  never blocks the daemon.")
w("- **Roles**: a Unix-socket client is admin. A TLS client's role comes from vmd's access file (`--access`),")
w("  which maps certificate subjects to `admin` or `read-only`; without one, every CA-signed client is admin. A")
w("  `read-only` client may call the methods marked read-only below (inspection, logs, events); every other method")
w("  gets -32010 Forbidden. A TLS client whose subject matches no entry gets one -32010 error (id null) and is")
w("  disconnected right after its handshake. See docs/operations.md for the file's format.")
w("- **Params** are accepted by name (object) or by position (array, in the order listed below). Unknown names")
w("  are rejected with -32602.")
w("- **Console bytes** (vm.log, console.*) travel base64-encoded, since serial output need not be UTF-8.")
w("")
w("## Errors")
w("")
w("| code | message | meaning |")
w("|---:|---|---|")
for name, e in sorted(errors.items(), key=lambda kv: kv[1]["code"]):
    w("| %d | %s | %s |" % (e["code"], e["message"], e.get("data", "")))
w("")
w("Every -32602 error carries `error.data.field`, the parameter at fault, and names it in the message:")
w("")
w("```json")
w('{"jsonrpc":"2.0","error":{"code":-32602,"message":"Invalid params: \'timeout\' must be between 1 and 3600 (got 0)","data":{"field":"timeout"}},"id":7}')
w("```")
w("")
w("## Methods")
w("")
for m in doc["methods"]:
    w("### %s" % m["name"])
    w("")
    w(m["summary"])
    w("")
    w("**Role**: %s" % ("read-only (every client)" if m["x-role"] == "read-only" else "admin"))
    if m.get("description"):
        w("")
        w(m["description"])
    w("")
    if m["params"]:
        w("| param | type | required | description |")
        w("|---|---|---|---|")
        for p in m["params"]:
            w("| `%s` | %s | %s | %s |" % (p["name"], schema_text(p["schema"]), "yes" if p.get("required") else "no", p.get("description", "")))
    else:
        w("No params.")
    w("")
    w("**Result**: %s" % schema_text(m["result"]["schema"]))
    w("")
    if m["errors"]:
        codes = [errors[e["$ref"].split("/")[-1]] for e in m["errors"]]
        w("**Errors**: " + ", ".join("%d %s" % (e["code"], e["message"]) for e in codes))
        w("")
    for ex in m.get("examples", []):
        params = {p["name"]: p["value"] for p in ex["params"]}
        req = {"jsonrpc": "2.0", "method": m["name"], "id": 1}
        if params:
            req["params"] = params
        w("Example (%s):" % ex["name"])
        w("")
        w("```json")
        w("--> " + json.dumps(req))
        w("<-- " + json.dumps({"jsonrpc": "2.0", "result": ex["result"]["value"], "id": 1}))
        w("```")
        w("")
w("## Notifications from vmd")
w("")
for n in doc.get("x-notifications", []):
    w("### %s" % n["name"])
    w("")
    w(n["summary"])
    w("")
    w("| param | type | description |")
    w("|---|---|---|")
    for p in n["params"]:
        w("| `%s` | %s | %s |" % (p["name"], schema_text(p["schema"]), p.get("description", "")))
    w("")
    w("```json")
    w("<-- " + json.dumps(n["example"]))
    w("```")
    w("")
w("## Schemas")
w("")
for name, s in doc["components"]["schemas"].items():
    w("### %s" % name)
    w("")
    if "properties" in s:
        w("| field | type | description |")
        w("|---|---|---|")
        for k, v in s["properties"].items():
            w("| `%s` | %s | %s |" % (k, schema_text(v), v.get("description", "")))
    elif "oneOf" in s:
        for alt in s["oneOf"]:
            w("- `" + json.dumps({k: (v.get("const", v.get("type"))) for k, v in alt["properties"].items()}) + "`")
    w("")
w("## Batches and notifications (JSON-RPC 2.0 rules as vmd applies them)")
w("")
w("- A request without `id` is a notification: it is executed and never answered, not even with an error.")
w("- A batch is an array of requests; the answer is an array with one response per request that has an id,")
w("  in any order. A batch of only notifications gets no answer. An empty array gets one -32600 error object.")
w("- A batch holds at most 128 requests. A longer one is refused as a whole: one -32600 error object (id null,")
w("  `error.data.max_batch` = 128) and none of its requests runs. Send more batches instead.")
w("- An invalid element of a batch gets its own -32600 response (id null if its id cannot be read).")
w("- A batch's answer is sent when all its calls have finished (vm.start, vm.stop... wait for the VM).")
print("\n".join(out))
