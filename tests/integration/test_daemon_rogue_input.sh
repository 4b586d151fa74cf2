# test_daemon_rogue_input: strings that would be cut short as C strings and the modes of the
# files vmd writes. A rogue client sends "\u0000" inside a VM name, a kernel path, a disk path
# (nested in the disks array), a snapshot name and console data: each is refused with -32602
# naming the parameter, and nothing is created. Then a VM's definition files (config.json,
# status.json) are 0600 in a 0700 directory, and a snapshot's files (vm.snap, meta.json, the disk
# copy) are 0600, whatever the umask.
# timeout: 120
# duration: 2
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_ticker_initrd
DISK=$TEST_TMP/disk.img
truncate -s 1M "$DISK"
umask 022
start_vmd

python3 - "$SOCK" "$GUEST/vmlinuz" "$INITRD" "$DISK" <<'PY' || fail "NUL in strings"
import json, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, kernel, initrd, disk = sys.argv[1:5]
c = Conn.unix(sock)

def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail); sys.exit(1)
    print("ok -", what)

def raw(method, params_json):
    # json.dumps would escape NUL the same way; written out to show exactly what goes on the wire
    c.send_raw('{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}\n' % (method, params_json))
    return c.read()

good = {"name": "n1", "kernel": kernel, "initrd": initrd, "accel": "emu", "memory_mib": 96}
cases = [
    ("vm.create", dict(good, name="n1\u0000x"), "name"),
    ("vm.create", dict(good, kernel=kernel + "\u0000.bak"), "kernel"),
    ("vm.create", dict(good, initrd="\u0000" + initrd), "initrd"),
    ("vm.create", dict(good, disks=[{"path": disk + "\u0000"}]), "disks"),
    ("vm.start", {"name": "n1\u0000"}, "name"),
    ("vm.snapshot", {"name": "n1", "snapshot": "s\u0000/../x"}, "snapshot"),
    ("console.input", {"name": "n1", "data": "aGk=\u0000"}, "data"),
]
for method, params, field in cases:
    text = json.dumps(params)
    check("\\u0000" in text, "the request really carries \\u0000")
    r = raw(method, text)
    e = r.get("error", {})
    check(e.get("code") == -32602 and e.get("data", {}).get("field") == field and "NUL" in e.get("message", ""),
          "%s with \\u0000 in '%s' refused with -32602 naming it: %s" % (method, field, e.get("message")), str(r))
check(c.call("vm.list") == [], "nothing was created")
# the same definition without the NUL is fine
r = c.request("vm.create", dict(good, disks=[{"path": disk}]))
check(r.get("result", {}).get("state") == "defined", "the clean definition is accepted", str(r))
r = c.request("vm.start", {"name": "n1"})
check(r.get("result", {}).get("state") == "running", "n1 started", str(r))
r = c.request("vm.snapshot", {"name": "n1", "snapshot": "s1"})
check("result" in r, "snapshot s1 taken", str(r))
PY
mode() { stat -c %a "$1"; }
for f in config.json status.json; do
    [ "$(mode "$STATE/vms/n1/$f")" = 600 ] || fail "$f is $(mode "$STATE/vms/n1/$f"), not 600"
done
[ "$(mode "$STATE/vms/n1")" = 700 ] || fail "the VM's directory is $(mode "$STATE/vms/n1"), not 700"
ok "config.json and status.json are 0600 in a 0700 directory (umask 022)"
n=0
for f in "$STATE"/vms/n1/snapshots/s1/*; do
    [ "$(mode "$f")" = 600 ] || fail "snapshot file $(basename "$f") is $(mode "$f"), not 600"
    n=$((n + 1))
done
[ -f "$STATE/vms/n1/snapshots/s1/vm.snap" ] && [ -f "$STATE/vms/n1/snapshots/s1/meta.json" ] && [ $n -ge 3 ] ||
    fail "the snapshot's files: $(ls "$STATE/vms/n1/snapshots/s1")"
ok "the snapshot's $n files are 0600: $(cd "$STATE/vms/n1/snapshots/s1" && echo *)"
"$VMCTL" stop --force n1 > /dev/null || fail "stop n1"
