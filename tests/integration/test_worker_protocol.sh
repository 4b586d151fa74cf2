# test_worker_protocol: docs/worker-protocol.md is the one description of the vmd <-> vmd-worker
# protocol. Statically: the methods worker/worker.c serves, the notifications it sends and the
# methods vmd (daemon/) calls on a worker are exactly the ones the page lists. Live: a running
# VM's worker, reached on its worker.sock as a restarted vmd would, answers `status` with the
# documented fields, refuses an undocumented method (-32601) and bad params (-32602).
# timeout: 180
# duration: 4
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
python3 - <<'PY' || fail "docs/worker-protocol.md drifted from the code"
import re, glob, sys
doc = open("docs/worker-protocol.md").read()
def section(title):
    part = doc.split("## " + title, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^### ([a-z_.]+)$", part, re.M))
doc_methods, doc_notes = section("Methods"), section("Notifications")
worker = open("worker/worker.c").read()
served = set(re.findall(r'strcmp\(c->method, "([a-z_.]+)"\)', worker))
sent = set(re.findall(r'(?:broadcast|rpc_conn_notify)\([^"]*"([a-z_.]+)"', worker))
called = set()
for f in glob.glob("daemon/*.c"):
    src = open(f).read()
    # calls on a worker connection: rpc_conn_call(<worker>, "m", ...) and the forwarding helpers
    called |= set(re.findall(r'rpc_conn_call\([^,]*,\s*"([a-z_.]+)"', src))
    called |= set(re.findall(r'forward_(?:and_wait|direct)\(vm, x->call,[^"]*"([a-z_.]+)"', src))
bad = []
if served != doc_methods: bad.append("worker serves %s, the page lists %s" % (sorted(served), sorted(doc_methods)))
if sent != doc_notes: bad.append("worker sends %s, the page lists %s" % (sorted(sent), sorted(doc_notes)))
if not called or not called <= doc_methods: bad.append("vmd calls %s, not all listed (%s)" % (sorted(called), sorted(doc_methods)))
for b in bad: print("FAIL: " + b)
if bad: sys.exit(1)
print("ok: %d methods and %d notifications documented; vmd calls %s" % (len(served), len(sent), ", ".join(sorted(called))))
PY

start_vmd
need_ticker_initrd
"$VMCTL" create w1 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 128 \
    --cmdline "console=ttyS0" > /dev/null || fail "vmctl create w1"
need_running_guest w1
python3 - "$STATE/vms/w1/worker.sock" <<'PY' || fail "worker protocol"
import sys, re
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
doc = open("docs/worker-protocol.md").read()
fields = re.search(r"### status\nNo params\. Result: `\{([a-z_, ]+)\}`", doc).group(1).replace(" ", "").split(",")
c = Conn.unix(sys.argv[1])
st = c.call("status")
assert sorted(st) == sorted(fields), (sorted(st), fields)
assert st["state"] == "running" and st["accel"] == "emu", st
print("ok: status answers the documented fields %s" % ",".join(fields))
r = c.request("vm.start", {})
assert r.get("error", {}).get("code") == -32601, r
print("ok: an undocumented method gets -32601")
r = c.request("console.input", {"data": "not base64!"})
assert r.get("error", {}).get("code") == -32602, r
r = c.request("snapshot", {})
assert r.get("error", {}).get("code") == -32602, r
print("ok: bad params get -32602")
PY
"$VMCTL" stop --force w1 > /dev/null || fail "vmctl stop --force w1"
ok "stopped"
