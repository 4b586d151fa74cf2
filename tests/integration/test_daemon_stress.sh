# test_daemon_stress: the per-VM state machine under load, against the sanitizer build of vmd
# (build/asan/bin/vmd and its vmd-worker; VMD overrides). 6 clients make random lifecycle calls
# (start, stop --force, pause, resume, reboot, snapshot, restore, snapshot delete, delete + create,
# and reads) on 3 VMs for STRESS_SECONDS (default 60), some in batches, some from clients that
# disconnect without reading their answers. Every call must be answered (a result, or one of the
# documented errors that the interleaving explains: -32001, -32002, -32003, -32007); afterwards
# each running or paused VM has exactly one vmd-worker (its pid in vm.info), the others none,
# vm.list agrees with the process table, and neither vmd nor a worker reported a sanitizer error.
# timeout: 120
# duration: 61
. "$(dirname "$0")/lib.sh"
VMD=${VMD:-$ROOT/build/asan/bin/vmd}
. "$(dirname "$0")/daemon_lib.sh"
[ -x "$VMD" ] || skip "$VMD is not built (make BUILD=asan tests)"
need_daemon_bins
need_ticker_initrd
start_vmd
ok "vmd: $VMD"

python3 - "$SOCK" "$STATE" "$GUEST/vmlinuz" "$INITRD" "${STRESS_SECONDS:-60}" <<'PY' || fail "stress"
import json, os, random, sys, threading, time
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, state, kernel, initrd, seconds = sys.argv[1:6]
seconds = float(seconds)
NAMES = ["s1", "s2", "s3"]
DEF = {"kernel": kernel, "initrd": initrd, "accel": "emu", "memory_mib": 96}
ALLOWED = {-32001, -32002, -32003, -32007}

def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail)
        sys.exit(1)
    print("ok -", what)

c = Conn.unix(sock)
for n in NAMES:
    c.call("vm.create", dict(DEF, name=n))

def random_call(rng):
    n = rng.choice(NAMES)
    k = rng.random()
    if k < 0.22: return "vm.start", {"name": n}
    if k < 0.34: return "vm.stop", {"name": n, "force": True}
    if k < 0.44: return "vm.pause", {"name": n}
    if k < 0.54: return "vm.resume", {"name": n}
    if k < 0.60: return "vm.reboot", {"name": n}
    if k < 0.66: return "vm.snapshot", {"name": n, "snapshot": "snap"}
    if k < 0.72: return "vm.restore", {"name": n, "snapshot": "snap"}
    if k < 0.75: return "vm.snapshot.delete", {"name": n, "snapshot": "snap"}
    if k < 0.82: return "vm.delete", {"name": n}
    if k < 0.90: return "vm.create", dict(DEF, name=n)
    if k < 0.95: return "vm.info", {"name": n}
    return "vm.list", {}

lock = threading.Lock()
stats, bad = {}, []
deadline = time.time() + seconds

def record(method, r):
    with lock:
        if "result" in r:
            key = (method, "ok")
        else:
            key = (method, r["error"]["code"])
            if r["error"]["code"] not in ALLOWED:
                bad.append((method, r["error"]))
        stats[key] = stats.get(key, 0) + 1

def client(i):
    rng = random.Random(1000 + i)
    conn = Conn.unix(sock, timeout=200)
    while time.time() < deadline:
        k = rng.random()
        if k < 0.1:  # a batch of calls
            calls = [random_call(rng) for _ in range(rng.randint(2, 6))]
            conn.send_raw(json.dumps([{"jsonrpc": "2.0", "method": m, "params": p, "id": j}
                                      for j, (m, p) in enumerate(calls)]) + "\n")
            resp = conn.read()
            while isinstance(resp, dict) and "method" in resp:  # vm.snapshot_progress of an earlier call
                resp = conn.read()
            if not isinstance(resp, list):
                with lock: bad.append(("batch", resp))
                continue
            for r in resp:
                record(calls[r["id"]][0], r)
        elif k < 0.15:  # a client that goes away before its answer
            m, p = random_call(rng)
            rogue = Conn.unix(sock)
            rogue.send_raw(json.dumps({"jsonrpc": "2.0", "method": m, "params": p, "id": 1}) + "\n")
            rogue.close()
        else:
            m, p = random_call(rng)
            record(m, conn.request(m, p))
        time.sleep(rng.random() * 0.05)
    conn.close()

def client_checked(i):
    try:
        client(i)
    except Exception as e:  # a dropped connection or a response that is not JSON-RPC
        with lock: bad.append(("client %d" % i, repr(e)))

threads = [threading.Thread(target=client_checked, args=(i,)) for i in range(6)]
for t in threads: t.start()
for t in threads: t.join()
total = sum(stats.values())
print("   %d calls answered:" % total, ", ".join("%s %s: %d" % (m, k, v) for (m, k), v in sorted(stats.items(), key=str)))
check(not bad, "every error is one the interleaving explains (-32001/-32002/-32003/-32007)", json.dumps(bad[:10]))
ok_starts = stats.get(("vm.start", "ok"), 0)
check(ok_starts >= 3 and stats.get(("vm.snapshot", "ok"), 0) >= 1, "the run did real work (%d starts, %d snapshots)" %
      (ok_starts, stats.get(("vm.snapshot", "ok"), 0)))

def workers():
    found = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            argv = [a.decode(errors="replace") for a in open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")]
            st = open("/proc/%s/stat" % p).read()
        except OSError:
            continue
        if st.rsplit(")", 1)[1].split()[0] == "Z" or not argv[0].endswith("vmd-worker"): continue
        if "--state-dir" in argv and argv[argv.index("--state-dir") + 1] == state:
            found.setdefault(argv[argv.index("--name") + 1], []).append(int(p))
    return found

# The last operations may still be finishing (a stop waits for its worker's exit): wait until
# the registry and the process table agree, or give up after 30 s and show the difference.
for attempt in range(300):
    vms = {v["name"]: v for v in Conn.unix(sock).call("vm.list")}
    ws = workers()
    expect = {n: [v["pid"]] for n, v in vms.items() if v["state"] in ("running", "paused")}
    if ws == expect:
        break
    time.sleep(0.1)
print("   registry:", {n: (v["state"], v["pid"]) for n, v in vms.items()}, "process table:", ws)
check(ws == expect, "vm.list agrees with the process table: one worker per running/paused VM, none for the others",
      "registry %s, workers %s" % (expect, ws))
crashed = {n: v["reason"] for n, v in vms.items() if v["state"] == "crashed"}
check(not crashed, "no VM crashed", str(crashed))
PY
kill -0 "$VMD_PID" || fail "vmd died"
ok "vmd survived; the sanitizer check runs at exit"
