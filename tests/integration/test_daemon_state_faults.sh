# test_daemon_state_faults: faults in vmd's state directory. (1) With one VM's config.json
# truncated, another's valid JSON but not a valid definition, and orphans lying around (a file and
# a dot-directory in vms/, a VM directory without config.json, a stray temp file), vmd starts: the
# good VM loads, the two bad ones are listed "broken" with the reason, every lifecycle call on a
# broken VM gets -32002 saying so, vm.delete removes it and the name can be reused; the orphans are
# logged and ignored. (2) ENOSPC (the state dir on a small tmpfs, filled up): vm.create fails with
# -32005, leaves no directory behind and the other definition intact (also when only the VM's
# cloud-init seed does not fit), and works again once space is freed. (3) Corrupt snapshots (truncated, a section's CRC wrong, a section length past the end,
# a bad header, a missing disk copy, a truncated meta.json) are refused with -32008 both on a
# running VM (which runs on, same worker) and on a stopped one (which stays stopped, no worker).
# timeout: 240
# duration: 36
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
need_ticker_initrd
DISK=$TEST_TMP/disk.img
truncate -s 2M "$DISK"
V=$VMCTL
rpc() { # rpc METHOD JSON-PARAMS: prints "CODE MESSAGE" for an error, "ok STATE" for a result
    python3 - "$SOCK" "$1" "$2" <<'PY'
import json, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
r = Conn.unix(sys.argv[1], timeout=120).request(sys.argv[2], json.loads(sys.argv[3]))
if "error" in r: print(r["error"]["code"], r["error"]["message"])
else: print("ok", r["result"].get("state", "") if isinstance(r["result"], dict) else "")
PY
}
expect_rpc() { # expect_rpc PATTERN WHAT METHOD PARAMS
    local out; out=$(rpc "$3" "$4")
    echo "$out" | grep -Eq -- "$1" || fail "$2: got '$out'"
    ok "$2: $out"
}

# ---- 1. broken definitions and orphans ----
start_vmd
for n in good trunc invalid; do
    "$V" create $n --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 96 > /dev/null || fail "create $n"
done
stop_vmd_hard
head -c 25 "$STATE/vms/trunc/config.json" > "$TEST_TMP/t" && cp "$TEST_TMP/t" "$STATE/vms/trunc/config.json"
echo '{"name": "invalid", "memory_mib": "lots"}' > "$STATE/vms/invalid/config.json"
echo junk > "$STATE/vms/junk.txt"
mkdir -p "$STATE/vms/.trash" "$STATE/vms/orphan"
echo '{"partial' > "$STATE/vms/good/config.json.tmp.4242"
start_vmd
kill -0 "$VMD_PID" || fail "vmd did not survive the bad definitions"
[ "$(vm_state good)" = defined ] || fail "good is $(vm_state good)"
for n in trunc invalid; do
    [ "$(vm_state $n)" = broken ] || fail "$n is $(vm_state $n), not broken"
done
vm_field trunc reason | grep -q "config.json: .*line" || fail "trunc's reason: $(vm_field trunc reason)"
vm_field invalid reason | grep -q "config.json: .*memory_mib" || fail "invalid's reason: $(vm_field invalid reason)"
ok "good loads; trunc is broken ($(vm_field trunc reason)); invalid is broken ($(vm_field invalid reason))"
"$V" list > "$TEST_TMP/list"
grep -Eq "^trunc +broken" "$TEST_TMP/list" && ! grep -q "orphan\|junk\|trash" "$TEST_TMP/list" ||
    { cat "$TEST_TMP/list"; fail "vmctl list"; }
grep -q "ignoring '$STATE/vms/junk.txt': not a VM directory" "$VMD_LOG" &&
    grep -q "ignoring '$STATE/vms/orphan': no config.json" "$VMD_LOG" &&
    grep -q "ignoring '$STATE/vms/.trash'" "$VMD_LOG" || { grep -i "ignor\|broken" "$VMD_LOG"; fail "orphans not logged"; }
ok "orphans are logged and ignored; vmctl list shows broken VMs"
for m in vm.start vm.stop vm.pause vm.resume vm.reboot; do
    expect_rpc "^-32002 VM 'trunc' is broken \(config.json: .*only vm.delete applies" "$m on a broken VM" $m '{"name": "trunc"}'
done
expect_rpc "^-32002 VM 'trunc' is broken" "vm.snapshot on a broken VM" vm.snapshot '{"name": "trunc", "snapshot": "s"}'
expect_rpc "^-32002 VM 'trunc' is broken" "vm.restore on a broken VM" vm.restore '{"name": "trunc", "snapshot": "s"}'
"$V" info trunc > /dev/null || fail "vmctl info of a broken VM"
"$V" delete trunc > /dev/null || fail "delete of a broken VM"
[ -e "$STATE/vms/trunc" ] && fail "trunc's directory is still there"
"$V" create trunc --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 96 > /dev/null || fail "re-create trunc"
[ "$(vm_state trunc)" = defined ] || fail "re-created trunc is $(vm_state trunc)"
ok "vm.delete removes a broken VM and its name can be used again"
expect_rpc "^ok defined" "the orphan directory's name can be used" vm.create \
    "{\"name\": \"orphan\", \"kernel\": \"$GUEST/vmlinuz\", \"accel\": \"emu\", \"memory_mib\": 96}"

# ---- 3. corrupt snapshots (before the tmpfs part, which restarts vmd elsewhere) ----
"$V" create snapvm --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --memory 96 --disk "$DISK" > /dev/null ||
    fail "create snapvm"
need_running_guest snapvm
"$V" snapshot snapvm good > /dev/null 2>&1 || fail "snapshot good"
SD=$STATE/vms/snapvm/snapshots
mkcorrupt() { # mkcorrupt NAME PYTHON-EXPR-ON-b (b: bytearray of vm.snap; the result is written back)
    cp -a "$SD/good" "$SD/$1"
    python3 - "$SD/$1/vm.snap" "$2" <<'PY'
import struct, sys
p, expr = sys.argv[1], sys.argv[2]
b = bytearray(open(p, "rb").read())
b = eval(expr)
open(p, "wb").write(bytes(b))
PY
}
mkcorrupt trunc 'b[:len(b) // 2]'
mkcorrupt crc 'b[:-100] + bytes([b[-100] ^ 0x5a]) + b[-99:]'
mkcorrupt seclen 'b[:68] + struct.pack("<Q", 1 << 62) + b[76:]'
mkcorrupt header 'b"NOTASNAP" + b[8:]'
mkcorrupt empty 'b""'
cp -a "$SD/good" "$SD/nodisk" && rm "$SD/nodisk/disk0.img"
cp -a "$SD/good" "$SD/badmeta" && head -c 30 "$SD/good/meta.json" > "$SD/badmeta/meta.json"
CORRUPT="trunc crc seclen header empty nodisk badmeta"
pid=$(vm_field snapvm pid)
for s in $CORRUPT; do
    expect_rpc "^-32008 " "restore of the running VM from '$s'" vm.restore "{\"name\": \"snapvm\", \"snapshot\": \"$s\"}"
    [ "$(vm_state snapvm)" = running ] && [ "$(vm_field snapvm pid)" = "$pid" ] && proc_alive "$pid" ||
        fail "snapvm after the refused '$s': $(vm_state snapvm), pid $(vm_field snapvm pid) (was $pid)"
done
ok "every corrupt snapshot is refused with -32008; snapvm runs on in worker $pid"
"$V" stop --force snapvm > /dev/null || fail "stop snapvm"
for s in $CORRUPT; do
    expect_rpc "^-32008 " "restore of the stopped VM from '$s'" vm.restore "{\"name\": \"snapvm\", \"snapshot\": \"$s\"}"
    [ "$(vm_state snapvm)" = stopped ] || fail "snapvm is $(vm_state snapvm) after the refused '$s'"
    [ -e "$STATE/vms/snapvm/restore-from" ] && fail "a restore-from file was left behind by '$s'"
done
pgrep -f "vmd-worker --state-dir $STATE --name snapvm" > /dev/null && fail "a worker runs for the stopped snapvm"
ok "the stopped VM stays stopped, with no worker, after each refused restore"
expect_rpc "^ok running" "the good snapshot still restores" vm.restore '{"name": "snapvm", "snapshot": "good"}'
"$V" stop --force snapvm > /dev/null || fail "stop snapvm"

# ---- 2. ENOSPC ----
stop_vmd_hard
for p in "$STATE"/vms/*/worker.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
STATE=$TEST_TMP/small-state
mkdir -p "$STATE"
if ! mount -t tmpfs -o size=1m vmd-itest "$STATE" 2> "$TEST_TMP/mount.err"; then
    skip "the ENOSPC part needs a tmpfs mount: $(cat "$TEST_TMP/mount.err")"
fi
trap '[ -n "$VMD_PID" ] && kill -9 "$VMD_PID" 2>/dev/null; sleep 0.2; umount "$TEST_TMP/small-state"; cleanup_daemon' EXIT
start_vmd
"$V" create keep --kernel "$GUEST/vmlinuz" --accel emu --memory 96 > /dev/null || fail "create keep on the tmpfs"
cp "$STATE/vms/keep/config.json" "$TEST_TMP/keep.json"
dd if=/dev/zero of="$STATE/filler" bs=4k 2> /dev/null # until the tmpfs is full
expect_rpc "^-32005 .*No space left on device" "vm.create on a full state dir" vm.create \
    "{\"name\": \"full\", \"kernel\": \"$GUEST/vmlinuz\", \"accel\": \"emu\", \"memory_mib\": 96}"
[ -e "$STATE/vms/full" ] && fail "a directory was left behind for 'full': $(ls -la "$STATE/vms/full")"
cmp -s "$STATE/vms/keep/config.json" "$TEST_TMP/keep.json" || fail "keep's definition changed"
ls "$STATE/vms/keep" | grep -q tmp && fail "a temporary file was left behind: $(ls "$STATE/vms/keep")"
"$V" list | grep -q "^full" && fail "'full' is listed"
ok "ENOSPC: -32005, nothing created, keep's definition intact"
# room for a definition (a few 4 KiB pages) but not for its cloud-init seed (~70 KiB)
truncate -s -32K "$STATE/filler"
expect_rpc "^-32005 cloud-init seed .*cidata.iso': writing: No space left on device" "vm.create whose seed does not fit" vm.create \
    "{\"name\": \"seedless\", \"kernel\": \"$GUEST/vmlinuz\", \"accel\": \"emu\", \"cloud_init\": {\"user_data\": \"#cloud-config\\n\"}}"
[ -e "$STATE/vms/seedless" ] && fail "a directory was left behind for 'seedless': $(ls -la "$STATE/vms/seedless")"
"$V" list | grep -q "^seedless" && fail "'seedless' is listed"
ok "ENOSPC while writing the cloud-init seed: -32005 naming the seed, nothing created"
rm "$STATE/filler"
expect_rpc "^ok defined" "vm.create once space is freed" vm.create \
    "{\"name\": \"full\", \"kernel\": \"$GUEST/vmlinuz\", \"accel\": \"emu\", \"memory_mib\": 96}"
stop_vmd_hard
start_vmd
[ "$(vm_state keep)" = defined ] && [ "$(vm_state full)" = defined ] || fail "after a restart: keep $(vm_state keep), full $(vm_state full)"
ok "both definitions load after a restart"
