# test_daemon_idempotent: calls a script can retry (#22). vm.create with a request_id answers the
# VM it created when retried with the same params, also after a vmd restart (options.json keeps the
# request); the same id with other params is -32012 naming that VM, and creates nothing; a create
# without request_id still gets -32003 for a taken name. vm.start with if_not_running succeeds on a
# running VM (vmctl start --if-not-running too) where a plain vm.start gets -32002. The guest is the
# busybox ticker on the emu backend.
# timeout: 300
# duration: 12
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_ticker_initrd
start_vmd
KERNEL=$GUEST/vmlinuz

rpc() { # rpc METHOD JSON-PARAMS: print the whole response
    python3 - "$SOCK" "$1" "$2" <<'PY'
import json, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
c = Conn.unix(sys.argv[1])
print(json.dumps(c.request(sys.argv[2], json.loads(sys.argv[3]))))
PY
}
field() { python3 -c "import json,sys; r=json.load(sys.stdin); v=r$1; print(json.dumps(v) if not isinstance(v, str) else v)"; }

P='{"name":"idem1","kernel":"'$KERNEL'","initrd":"'$INITRD'","accel":"emu","memory_mib":128,"request_id":"req-42"}'
first=$(rpc vm.create "$P")
[ "$(echo "$first" | field '["result"]["state"]')" = defined ] || fail "first vm.create: $first"
[ "$(echo "$first" | field '["result"]["request_id"]')" = req-42 ] || fail "vm.create result has no request_id: $first"
[ "$(stat -c %a "$STATE/vms/idem1/options.json")" = 600 ] || fail "options.json is not 0600"
ok "vm.create with request_id req-42 defined idem1"

again=$(rpc vm.create "$P")
[ "$(echo "$again" | field '["result"]["name"]')" = idem1 ] || fail "retried vm.create: $again"
[ "$(echo "$again" | field '["result"]["definition"]')" = "$(echo "$first" | field '["result"]["definition"]')" ] ||
    fail "the retry answers another definition: $again"
ok "the retried vm.create answers the same VM"

# the same id with other params: -32012 naming the VM, nothing created
P2='{"name":"idem2","kernel":"'$KERNEL'","initrd":"'$INITRD'","accel":"emu","memory_mib":128,"request_id":"req-42"}'
r=$(rpc vm.create "$P2")
[ "$(echo "$r" | field '["error"]["code"]')" = -32012 ] || fail "same request_id, other params: $r"
echo "$r" | field '["error"]["message"]' | grep -q "req-42.*idem1.*different params" || fail "-32012 message: $r"
[ "$(echo "$r" | field '["error"]["data"]')" = '{"request_id": "req-42", "name": "idem1"}' ] || fail "-32012 data: $r"
[ ! -e "$STATE/vms/idem2" ] || fail "the conflicting request created idem2"
ok "same request_id, other params: $(echo "$r" | field '["error"]["message"]')"
# without a request_id a taken name is still -32003
r=$(rpc vm.create '{"name":"idem1","kernel":"'$KERNEL'"}')
[ "$(echo "$r" | field '["error"]["code"]')" = -32003 ] || fail "create without request_id of a taken name: $r"
ok "without request_id: -32003 as before"

# across a restart of vmd
stop_vmd_hard
start_vmd
again=$(rpc vm.create "$P")
[ "$(echo "$again" | field '["result"]["name"]')" = idem1 ] || fail "retried vm.create after a restart: $again"
r=$(rpc vm.create "$P2")
[ "$(echo "$r" | field '["error"]["code"]')" = -32012 ] || fail "conflict after a restart: $r"
ok "after a vmd restart: the retry answers idem1, the conflicting request -32012"

# vmctl create --request-id: a retry exits 0
"$VMCTL" create idem3 --kernel "$KERNEL" --initrd "$INITRD" --accel emu --memory 128 --request-id cli-1 > /dev/null ||
    fail "vmctl create --request-id"
"$VMCTL" create idem3 --kernel "$KERNEL" --initrd "$INITRD" --accel emu --memory 128 --request-id cli-1 > /dev/null ||
    fail "vmctl create --request-id retried"
if "$VMCTL" create idem3 --kernel "$KERNEL" --initrd "$INITRD" --accel emu --memory 256 --request-id cli-1 \
    > /dev/null 2> "$TEST_TMP/err"; then fail "vmctl create with a reused request id and other options succeeded"; fi
expect_in "$TEST_TMP/err" "different params" "vmctl names the conflict"
ok "vmctl create --request-id: retry succeeds, conflict fails"

# deleting the VM forgets the id
"$VMCTL" delete idem3 > /dev/null || fail "delete idem3"
"$VMCTL" create idem4 --kernel "$KERNEL" --initrd "$INITRD" --accel emu --request-id cli-1 > /dev/null ||
    fail "a request id of a deleted VM is not free again"
ok "a deleted VM's request_id can be used again"

# vm.start if_not_running
need_running_guest idem1
r=$(rpc vm.start '{"name":"idem1"}')
[ "$(echo "$r" | field '["error"]["code"]')" = -32002 ] || fail "plain vm.start of a running VM: $r"
r=$(rpc vm.start '{"name":"idem1","if_not_running":true}')
[ "$(echo "$r" | field '["result"]["state"]')" = running ] || fail "vm.start if_not_running of a running VM: $r"
ok "vm.start: plain -32002, if_not_running answers running"
"$VMCTL" start idem1 --if-not-running > "$TEST_TMP/out" || fail "vmctl start --if-not-running on a running VM"
expect_in "$TEST_TMP/out" "VM 'idem1' is running" "vmctl start --if-not-running"
"$VMCTL" stop --force idem1 > /dev/null || fail "stop idem1"
# on a stopped VM it starts it; a retry racing the start answers with the start's outcome
python3 - "$SOCK" <<'PY' || fail "two concurrent vm.start if_not_running"
import sys, json
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
a, b = Conn.unix(sys.argv[1], timeout=90), Conn.unix(sys.argv[1], timeout=90)
for c in (a, b):
    c.send_raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "vm.start", "params": {"name": "idem1", "if_not_running": True}}) + "\n")
for c in (a, b):
    r = c.read()
    assert r.get("result", {}).get("state") == "running", r
print("ok: two concurrent vm.start if_not_running both answer running")
PY
"$VMCTL" stop --force idem1 > /dev/null || fail "stop idem1"
