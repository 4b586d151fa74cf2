# test_daemon_metrics: `vmd --metrics` (#22 item 5), read with a Prometheus text parser vmd's authors
# did not write (python3-prometheus-client's text_string_to_metric_families). A guest under the
# emulator keeps its virtio disk and NIC busy (tests/guest/metrics_io.sh); between two scrapes its
# instructions, vCPU time, disk bytes read and written, flushes and transmitted frames grow; its state,
# guest memory, worker RSS and uptime are there; the daemon's RPC calls by method and code, its
# latency histogram and its clients are counted; vm.stats (and vmctl stats) give the same figures.
# The endpoint answers only GET /metrics and stays bounded: 40 idle connections and an oversize
# request neither grow vmd nor stop the API. After a stop the VM shows as stopped without counters.
# timeout: 400
# duration: 29
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
# Debian's python3-prometheus-client is in /usr/bin/python3's path (a python3 earlier in PATH, e.g.
# pyenv's, may not see it)
PROM_PY=
for py in python3 /usr/bin/python3; do
    "$py" -c 'import prometheus_client.parser' 2> /dev/null && { PROM_PY=$py; break; }
done
[ -n "$PROM_PY" ] || skip "python3-prometheus-client is not installed (scripts/deps.sh)"
[ -f "$GUEST/vmlinuz" ] || need_guest_assets
[ -d "$GUEST/modules-cloud" ] || skip "no guest kernel modules in $GUEST/modules-cloud"
initrd=$TEST_TMP/io.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/metrics_io.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_blk virtio_net" > "$TEST_TMP/mkinitramfs.log" 2>&1 ||
    { cat "$TEST_TMP/mkinitramfs.log"; fail "mkinitramfs"; }
disk=$TEST_TMP/disk.img
truncate -s 32M "$disk"
MPORT=$(free_port)
start_vmd --metrics "127.0.0.1:$MPORT"
URL=http://127.0.0.1:$MPORT/metrics

# check.py SCRAPE-FILE EXPRESSION...: parse the scrape with prometheus_client and evaluate each
# expression with v(name, **labels) -> the sample's value (None if absent) and fam(name) -> family.
cat > "$TEST_TMP/check.py" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def v(name, **labels):
    for f in fams.values():
        for s in f.samples:
            if s.name == name and all(s.labels.get(k) == str(x) for k, x in labels.items()):
                return s.value
    return None
def fam(name): return fams.get(name)
for e in sys.argv[2:]:
    r = eval(e)
    if not r:
        print("FAIL: %s" % e)
        sys.exit(1)
PY
scrape() { curl -sf --max-time 5 "$URL" > "$1" || fail "GET $URL"; }
check() { "$PROM_PY" "$TEST_TMP/check.py" "$@" || { head -80 "$1"; fail "metrics check"; }; }
value() { "$PROM_PY" - "$@" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
want = dict(a.split("=", 1) for a in sys.argv[3:])
for f in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in f.samples:
        if s.name == sys.argv[2] and all(s.labels.get(k) == x for k, x in want.items()):
            print(repr(s.value)); sys.exit(0)
print("None")
PY
}

"$VMCTL" create m1 --kernel "$GUEST/vmlinuz" --initrd "$initrd" --accel emu --memory 256 --disk "$disk" \
    --net slirp --cmdline "console=ttyS0 quiet" > /dev/null || fail "vmctl create m1"
sleep 1.5 # the endpoint renders once a second
scrape "$TEST_TMP/m0"
check "$TEST_TMP/m0" 'v("vmd_vm_state", vm="m1", state="defined") == 1' 'v("vmd_vm_state", vm="m1", state="running") == 0' \
    'v("vmd_vm_memory_bytes", vm="m1") == 256 << 20' 'v("vmd_vm_instructions_total", vm="m1", vcpu=0) is None' \
    'v("vmd_rpc_calls_total", method="vm.create", code="ok") == 1' 'fam("vmd_rpc_duration_seconds").type == "histogram"' \
    'v("vmd_rpc_duration_seconds_count", method="vm.create") == 1' 'v("vmd_clients", transport="unix") is not None'
ok "defined VM: state, memory, no counters; vm.create counted with its latency"

need_running_guest m1
for _ in $(seq 240); do grep -q "GUEST: tick 2" "$STATE/vms/m1/console.log" 2>/dev/null && break; sleep 0.5; done
grep -q "GUEST: tick 2" "$STATE/vms/m1/console.log" || { tail -20 "$STATE/vms/m1/console.log"; fail "the guest's I/O loop did not start"; }
sleep 1.5
scrape "$TEST_TMP/m1"
sleep 4
scrape "$TEST_TMP/m2"
for m in "vmd_vm_instructions_total vcpu=0" "vmd_vm_vcpu_seconds_total vcpu=0" "vmd_vm_disk_read_bytes_total disk=0" \
    "vmd_vm_disk_written_bytes_total disk=0" "vmd_vm_disk_flush_ops_total disk=0" "vmd_vm_disk_read_ops_total disk=0" \
    "vmd_vm_net_transmit_packets_total nic=0" "vmd_vm_net_transmit_bytes_total nic=0"; do
    set -- $m
    a=$(value "$TEST_TMP/m1" "$1" vm=m1 "$2") b=$(value "$TEST_TMP/m2" "$1" vm=m1 "$2")
    python3 -c "import sys; a, b = $a, $b; sys.exit(0 if a is not None and b is not None and b > a else 1)" ||
        fail "$1{$2} did not grow between two scrapes 4 s apart: $a -> $b"
    ok "$1{vm=m1,$2}: $a -> $b"
done
check "$TEST_TMP/m2" 'v("vmd_vm_state", vm="m1", state="running") == 1' 'v("vmd_vm_uptime_seconds", vm="m1") >= 1' \
    'v("vmd_vm_worker_rss_bytes", vm="m1") > 16 << 20' 'fam("vmd_vm_instructions").type == "counter"' \
    'v("vmd_vm_exits_total", vm="m1", vcpu=0, reason="io") is None' \
    'v("vmd_rpc_calls_total", method="vm.start", code="ok") == 1' \
    'v("vmd_rpc_calls_total", method="vm.info", code="ok") >= 1'
ok "running VM: state, uptime, worker RSS $(value "$TEST_TMP/m2" vmd_vm_worker_rss_bytes vm=m1) B; vm.start and vm.info counted"

# vm.stats / vmctl stats: the same figures (a little later, so at least as large)
"$VMCTL" --json stats m1 > "$TEST_TMP/stats.json" || fail "vmctl --json stats m1"
python3 - "$TEST_TMP/stats.json" "$(value "$TEST_TMP/m2" vmd_vm_instructions_total vm=m1 vcpu=0)" \
    "$(value "$TEST_TMP/m2" vmd_vm_disk_read_bytes_total vm=m1 disk=0)" <<'PY' || fail "vm.stats"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["state"] == "running" and s["accel"] == "emu" and s["memory_bytes"] == 256 << 20, s
assert s["vcpu_stats"][0]["instructions"] >= float(sys.argv[2]) > 0, s
assert s["disks"][0]["read_bytes"] >= float(sys.argv[3]) > 0 and s["disks"][0]["path"].endswith("disk.img"), s
assert s["nets"][0]["tx_packets"] > 0 and s["worker_rss_bytes"] > 16 << 20 and s["uptime_s"] >= 1, s
print("ok: vm.stats: %d instructions, %d disk bytes read, %d frames sent" % (s["vcpu_stats"][0]["instructions"], s["disks"][0]["read_bytes"], s["nets"][0]["tx_packets"]))
PY
"$VMCTL" stats m1 > "$TEST_TMP/stats.txt" || fail "vmctl stats m1"
expect_in "$TEST_TMP/stats.txt" "^vcpu 0: .* instructions" "vmctl stats shows the instructions"
expect_in "$TEST_TMP/stats.txt" "^disk 0: +read [0-9]+ B" "vmctl stats shows the disk"

# the endpoint: GET /metrics only, bounded
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$URL"); [ "$code" = 405 ] || fail "POST /metrics: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/"); [ "$code" = 404 ] || fail "GET /: $code"
ok "POST is 405, other paths 404"
rss() { awk '/VmRSS/ { print $2 }' "/proc/$VMD_PID/status"; }
before=$(rss)
python3 - "$MPORT" <<'PY' || fail "abusive metrics clients"
import socket, sys, time
port = int(sys.argv[1])
idle = []
for _ in range(40):  # more than the 16 connections the endpoint takes
    try:
        idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
    except OSError:
        pass
# an oversize request: 1 MiB of headers
s = socket.create_connection(("127.0.0.1", port), timeout=5)
try:
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * (1 << 20) + b"\r\n\r\n")
    reply = s.recv(100)
except OSError:
    reply = b""
assert not reply.startswith(b"HTTP/1.1 200"), reply
print("ok: a request with 1 MiB of headers is refused (%r)" % reply[:30])
time.sleep(1)
for c in idle: c.close()
PY
after=$(rss)
[ $((after - before)) -lt 16384 ] || fail "vmd grew by $((after - before)) KiB with abusive metrics clients"
"$VMCTL" info m1 > /dev/null || fail "the API does not answer after the abusive metrics clients"
sleep 0.5
scrape "$TEST_TMP/m3"
ok "40 idle connections and a 1 MiB request: vmd grew $((after - before)) KiB, the API and a new scrape still answer"

"$VMCTL" stop --force m1 > /dev/null || fail "stop m1"
sleep 1.5
scrape "$TEST_TMP/m4"
check "$TEST_TMP/m4" 'v("vmd_vm_state", vm="m1", state="stopped") == 1' 'v("vmd_vm_instructions_total", vm="m1", vcpu=0) is None' \
    'v("vmd_vm_worker_rss_bytes", vm="m1") is None' 'v("vmd_rpc_calls_total", method="vm.stop", code="ok") == 1'
ok "stopped VM: state stopped, no counters"
