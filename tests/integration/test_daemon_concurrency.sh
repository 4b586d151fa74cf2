# test_daemon_concurrency: one VM has one state machine in vmd, so concurrent or batched
# transition requests never make a second worker. A rogue client script sends 8 concurrent
# vm.start (8 connections, released together) and then one batch holding 8 vm.start for a stopped
# VM: exactly one call succeeds, the 7 others get -32002 (in the batch: "busy: start in progress"),
# and the process table holds exactly one vmd-worker for the VM, whose pid is in worker.pid and in
# vm.info. The same for 8 concurrent vm.stop --force (none left afterwards) and a batch of
# pause + resume + reboot + snapshot + stop; read-only calls are answered meanwhile.
# timeout: 300
# duration: 2
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_ticker_initrd
start_vmd
"$VMCTL" create c1 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 96 > /dev/null || fail "create c1"
ok "c1 defined"

python3 - "$SOCK" "$STATE" <<'PY' || fail "concurrent and batched transitions"
import json, os, sys, threading, time
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, state = sys.argv[1:3]

def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail)
        sys.exit(1)
    print("ok -", what)

def workers(name):
    """pids of vmd-worker processes serving NAME under this state dir (the process table)."""
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            argv = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
            st = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        if st.rsplit(")", 1)[1].split()[0] == "Z":
            continue
        argv = [a.decode(errors="replace") for a in argv]
        if not argv or not argv[0].endswith("vmd-worker"):
            continue
        if "--state-dir" in argv and argv[argv.index("--state-dir") + 1] == state and \
           "--name" in argv and argv[argv.index("--name") + 1] == name:
            found.append(int(p))
    return sorted(found)

def one_worker(name, what):
    ws = workers(name)
    pidfile = open(os.path.join(state, "vms", name, "worker.pid")).read().strip()
    info = Conn.unix(sock).call("vm.info", {"name": name})
    check(len(ws) == 1 and str(ws[0]) == pidfile and info["pid"] == ws[0],
          "%s: exactly one worker for %s (pid %s = worker.pid = vm.info pid)" % (what, name, ws[0] if ws else None),
          "process table %s, worker.pid %s, vm.info %s" % (ws, pidfile, info))

def no_worker(name, what):
    for _ in range(100):
        if not workers(name):
            break
        time.sleep(0.1)
    check(workers(name) == [], "%s: no worker left for %s" % (what, name), str(workers(name)))

def concurrent(method, params, n=8):
    conns = [Conn.unix(sock, timeout=120) for _ in range(n)]
    barrier = threading.Barrier(n)
    out = [None] * n
    def go(i):
        barrier.wait()
        out[i] = conns[i].request(method, params)
    ts = [threading.Thread(target=go, args=(i,)) for i in range(n)]
    for t in ts: t.start()
    for t in ts: t.join()
    for c in conns: c.close()
    return out

def tally(responses, what):
    ok = [r for r in responses if "result" in r]
    errs = [r["error"] for r in responses if "error" in r]
    check(len(ok) == 1, "%s: exactly one of %d succeeded" % (what, len(responses)), json.dumps(responses))
    check(all(e["code"] == -32002 for e in errs), "%s: the %d others got -32002" % (what, len(errs)), json.dumps(errs))
    return ok[0]["result"], errs

# --- 8 concurrent vm.start ---
res, errs = tally(concurrent("vm.start", {"name": "c1"}), "8 concurrent vm.start")
check(res["state"] == "running", "concurrent start: c1 running", str(res))
print("   e.g.:", errs[0]["message"])
one_worker("c1", "8 concurrent vm.start")

# --- 8 concurrent vm.stop --force ---
res, errs = tally(concurrent("vm.stop", {"name": "c1", "force": True}), "8 concurrent vm.stop --force")
check(res["state"] == "stopped", "concurrent stop: c1 stopped", str(res))
no_worker("c1", "8 concurrent vm.stop --force")

# --- one batch of 8 vm.start ---
c = Conn.unix(sock, timeout=120)
batch = [{"jsonrpc": "2.0", "method": "vm.start", "params": {"name": "c1"}, "id": i} for i in range(8)]
c.send_raw(json.dumps(batch) + "\n")
resp = c.read()
check(isinstance(resp, list) and len(resp) == 8, "the batch is answered with 8 responses", str(resp))
res, errs = tally(resp, "batch of 8 vm.start")
check(all(e["message"] == "VM 'c1' is busy: start in progress" for e in errs),
      "batch: the others were told \"VM 'c1' is busy: start in progress\"", json.dumps(errs))
check(all(e.get("data", {}).get("operation") == "start" for e in errs), "batch: error.data.operation is 'start'")
one_worker("c1", "batch of 8 vm.start")

# --- a batch of different transitions: the first one wins, reads still work ---
batch = [{"jsonrpc": "2.0", "method": m, "params": p, "id": i} for i, (m, p) in enumerate([
    ("vm.pause", {"name": "c1"}), ("vm.resume", {"name": "c1"}), ("vm.reboot", {"name": "c1"}),
    ("vm.snapshot", {"name": "c1", "snapshot": "s1"}), ("vm.stop", {"name": "c1", "force": True}),
    ("vm.delete", {"name": "c1"}), ("vm.info", {"name": "c1"}), ("vm.list", {})])]
c.send_raw(json.dumps(batch) + "\n")
resp = sorted(c.read(), key=lambda r: r["id"])
check("result" in resp[0] and resp[0]["result"]["state"] == "paused", "mixed batch: the pause went through", str(resp[0]))
for r in resp[1:6]:
    check(r.get("error", {}).get("code") == -32002 and "busy: pause in progress" in r["error"]["message"],
          "mixed batch: %s refused while the pause is in flight" % batch[r["id"]]["method"], str(r))
check("result" in resp[6] and "result" in resp[7], "mixed batch: vm.info and vm.list answered meanwhile", str(resp[6:]))
one_worker("c1", "mixed batch")
r = c.request("vm.stop", {"name": "c1", "force": True})
check(r.get("result", {}).get("state") == "stopped", "c1 stopped", str(r))
no_worker("c1", "final stop")
PY
ok "one worker per VM under concurrent and batched transitions"
kill -0 "$VMD_PID" || fail "vmd died"
