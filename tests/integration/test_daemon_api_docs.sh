# test_daemon_api_docs: the API has one source. docs/jsonrpc.md is what scripts/openrpc-to-md.py
# makes of rpc/openrpc.json, daemon/methods.c's handler table names exactly its methods, vmctl
# (cli/) uses no method or notification it lacks (the
# parameter and role table, rpc/vmd_api.c, is held to it by tests/unit/test_vmd_api.c), and every
# method vmd answers is in the document (and vice versa:
# vmd knows every documented method, so none answers -32601).
# timeout: 60
# duration: 1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
python3 scripts/openrpc-to-md.py rpc/openrpc.json > "$TEST_TMP/jsonrpc.md" || fail "openrpc-to-md.py"
diff -u docs/jsonrpc.md "$TEST_TMP/jsonrpc.md" > "$TEST_TMP/diff" ||
    { head -30 "$TEST_TMP/diff"; fail "docs/jsonrpc.md is out of date: run scripts/openrpc-to-md.py > docs/jsonrpc.md"; }
ok "docs/jsonrpc.md matches rpc/openrpc.json"
python3 - <<'PY' || fail "daemon/methods.c's handler table differs from rpc/openrpc.json"
import json, re
spec = {m["name"] for m in json.load(open("rpc/openrpc.json"))["methods"]}
table = set(re.findall(r'^    \{"([a-z.]+)", m_[a-z_]+\},$', open("daemon/methods.c").read(), re.M))
if spec != table:
    print("FAIL: handlers without a spec entry: %s; spec entries without a handler: %s" % (sorted(table - spec), sorted(spec - table)))
    raise SystemExit(1)
print("ok: daemon/methods.c has one handler for each of the %d methods of rpc/openrpc.json" % len(spec))
# vmctl speaks only this API: every method and notification name in cli/ is in the spec
doc = json.load(open("rpc/openrpc.json"))
notes = {n["name"] for n in doc["x-notifications"]}
import glob
used = set()
for f in glob.glob("cli/*.c"):
    used |= set(re.findall(r'"((?:vm|host|events|console)\.[a-z_.]+)"', open(f).read()))
unknown = used - spec - notes
if unknown:
    print("FAIL: vmctl uses names rpc/openrpc.json does not define: %s" % sorted(unknown))
    raise SystemExit(1)
print("ok: the %d method and notification names vmctl uses are all in rpc/openrpc.json" % len(used))
PY
start_vmd
python3 - "$SOCK" <<'PY' || fail "documented methods"
import sys, json
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
doc = json.load(open("rpc/openrpc.json"))
c = Conn.unix(sys.argv[1])
for m in doc["methods"]:
    # empty params: every method either answers or complains about a param, never "not found"
    r = c.request(m["name"], {})
    code = r.get("error", {}).get("code")
    if code == -32601:
        print("FAIL: documented method %s is unknown to vmd" % m["name"]); sys.exit(1)
    required = [p["name"] for p in m["params"] if p.get("required")]
    if required and code != -32602:
        print("FAIL: %s without its required params: %r" % (m["name"], r)); sys.exit(1)
print("ok: vmd knows all %d documented methods and checks their required params" % len(doc["methods"]))
PY
