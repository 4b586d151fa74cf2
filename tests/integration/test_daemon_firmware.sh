# test_daemon_firmware: a firmware VM through vmd. vm.create with `firmware` (a mode-test ROM from
# build/roms/ in an image directory) stores the resolved path and no kernel; a ROM of a bad size,
# firmware together with a kernel, and firmware with accel kvm are refused with -32602 naming the
# field; the VM starts (auto picks the emulator), its ROM runs from the reset vector to its marker
# line, which `vmctl log` shows, and it stops and is deleted. `vmctl create --firmware` does the
# same from the command line.
# timeout: 90
# duration: 3
. "$(dirname "$0")/lib.sh"
IMG=$TEST_TMP/imgs
IMAGE_DIRS=("$IMG")
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
[ -f build/roms/realmode.rom ] || fail "build/roms/realmode.rom is not built (run make)"
mkdir -p "$IMG"
cp build/roms/realmode.rom "$IMG/bios.rom"
head -c 100000 /dev/zero > "$IMG/short.rom"
touch "$IMG/vmlinuz"
trap cleanup_daemon EXIT
start_vmd

python3 - "$SOCK" "$IMG" <<'PY' || fail "vm.create with firmware"
import json, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, img = sys.argv[1:3]
c = Conn.unix(sock)

def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail); sys.exit(1)
    print("ok -", what)

def refused(params, field, text):
    r = c.request("vm.create", dict({"name": "fw"}, **params))
    e = r.get("error", {})
    check(e.get("code") == -32602 and e.get("data", {}).get("field") == field and text in e.get("message", ""),
          "refused (%s): %s" % (field, e.get("message")), json.dumps(r))

refused({"firmware": img + "/short.rom"}, "firmware",
        "firmware '%s/short.rom' is 100000 bytes: a ROM image must be a non-zero multiple of 64 KiB" % img)
refused({"firmware": img + "/bios.rom", "kernel": img + "/vmlinuz"}, "firmware", "not both")
refused({"firmware": img + "/bios.rom", "accel": "kvm"}, "firmware", "runs under the emulator only")
refused({}, "kernel", "--kernel: required (or --firmware)")
r = c.request("vm.create", {"name": "fw", "firmware": img + "/bios.rom", "memory_mib": 32})
check("result" in r, "vm.create with firmware", json.dumps(r))
d = r["result"]["definition"]
check(d.get("firmware") == img + "/bios.rom" and "kernel" not in d, "the definition holds the firmware and no kernel", json.dumps(d))
r = c.request("vm.start", {"name": "fw"})
check(r.get("result", {}).get("state") == "running", "the firmware VM starts", json.dumps(r))
PY

for _ in $(seq 100); do
    "$VMCTL" log fw 2> /dev/null | tr -d '\r' | grep -qx '=== mode test done ===' && break
    sleep 0.2
done
"$VMCTL" log fw | tr -d '\r' > "$TEST_TMP/log"
expect_in "$TEST_TMP/log" '^reset: edx=00060fb1 cr0=60000010 cs=f000$' "the ROM started at the reset vector in the reset state"
expect_in "$TEST_TMP/log" '^=== mode test done ===$' "the ROM ran to its marker under vmd"
[ "$(vm_field fw accel)" = emu ] || [ "$("$VMCTL" --json info fw | grep -c '"emu"')" -gt 0 ] || fail "the VM does not run on the emulator"
"$VMCTL" stop --force fw > /dev/null || fail "vmctl stop --force fw"
wait_state fw stopped || fail "fw did not stop"
"$VMCTL" delete fw > /dev/null || fail "vmctl delete fw"
ok "the firmware VM stopped and was deleted"
# the same through vmctl: a relative path is made absolute, vmctl info shows the firmware
(cd "$IMG" && "$VMCTL" create fw2 --firmware bios.rom --accel emu > /dev/null) || fail "vmctl create --firmware"
"$VMCTL" info fw2 > "$TEST_TMP/info" || fail "vmctl info fw2"
expect_in "$TEST_TMP/info" "^firmware: $IMG/bios.rom\$" "vmctl create --firmware, and vmctl info shows it"
"$VMCTL" delete fw2 > /dev/null || fail "vmctl delete fw2"
