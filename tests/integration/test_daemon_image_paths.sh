# test_daemon_image_paths: the image path policy. vmd runs with two image directories (IMG and
# IMG2; a sibling IMGX shares IMG's prefix). A rogue client tries, as kernel, initrd or disk:
# /etc/shadow, a relative path, a symlink in IMG pointing outside, /dev/zero, a directory in IMG,
# a file in /var/tmp, a '..' escape, a file in the sibling IMGX, a file in vmd's own state dir
# and a missing file outside: each is refused with -32602 naming the field and the path and saying
# why, and vm.list stays unchanged. A symlink inside IMG to a file in IMG2 is accepted and the
# definition stores the resolved path; if that file is later swapped for a symlink leading outside,
# vm.start refuses (-32002: every start checks the policy again), and for one that stays inside,
# the worker refuses to follow it (the VM does not start, the reason says why). A file in vmd's own vms/ is
# refused even when an image dir encloses the state dir. Without --image-dir the default
# STATE_DIR/images is created; the config file's image_dirs work; a missing --image-dir stops vmd
# with a clear error.
# timeout: 120
# duration: 3
. "$(dirname "$0")/lib.sh"
IMG=$TEST_TMP/imgs IMG2=$TEST_TMP/other IMGX=$TEST_TMP/imgsx
IMAGE_DIRS=("$IMG" "$IMG2")
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
[ -f "$GUEST/vmlinuz" ] || need_guest_assets
mkdir -p "$IMG/sub" "$IMG2" "$IMGX"
cp "$GUEST/vmlinuz" "$IMG/vmlinuz"
scripts/mkinitramfs.sh "$IMG2/ticker.cpio.gz" --script tests/guest/daemon_ticker.sh > "$TEST_TMP/mkinitramfs.log" 2>&1 || fail "mkinitramfs"
truncate -s 1M "$IMG/disk.img" "$IMGX/disk.img" "$IMG2/disk2.img"
ln -s /etc/passwd "$IMG/passwd-link"
ln -s "$IMG2/ticker.cpio.gz" "$IMG/initrd-link"
VARTMP=$(mktemp /var/tmp/vmd-itest-disk.XXXXXX)
trap 'rm -f "$VARTMP"; cleanup_daemon' EXIT
start_vmd
grep -q "image directories: $IMG, $IMG2" "$VMD_LOG" || fail "vmd does not log its image directories"
ok "vmd logs its image directories"

python3 - "$SOCK" "$IMG" "$IMG2" "$IMGX" "$VARTMP" "$STATE" <<'PY' || fail "image path policy"
import json, os, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, img, img2, imgx, vartmp, state = sys.argv[1:7]
c = Conn.unix(sock)

def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail); sys.exit(1)
    print("ok -", what)

good = {"name": "p1", "kernel": img + "/vmlinuz", "accel": "emu", "memory_mib": 96}
outside = "resolves outside the image directories (%s, %s)" % (img, img2)
cases = [
    ("disks", "disk", {"disks": [{"path": "/etc/shadow"}]}, "/etc/shadow", outside),
    ("kernel", "kernel", {"kernel": "imgs/vmlinuz"}, "imgs/vmlinuz", "must be an absolute path"),
    ("initrd", "initrd", {"initrd": img + "/passwd-link"}, img + "/passwd-link", outside),
    ("disks", "disk", {"disks": [{"path": "/dev/zero"}]}, "/dev/zero", outside),
    ("disks", "disk", {"disks": [{"path": img + "/sub"}]}, img + "/sub", "is not a regular file"),
    ("disks", "disk", {"disks": [{"path": vartmp}]}, vartmp, outside),
    ("kernel", "kernel", {"kernel": img + "/../../../../../../etc/passwd"}, img + "/../../../../../../etc/passwd", outside),
    ("disks", "disk", {"disks": [{"path": img + "/disk.img"}, {"path": imgx + "/disk.img"}]}, imgx + "/disk.img", outside),
    ("disks", "disk", {"disks": [{"path": "/root/no/such/file"}]}, "/root/no/such/file", outside),
    ("kernel", "kernel", {"kernel": img + "/nope"}, img + "/nope", "No such file or directory"),
]
before = c.call("vm.list")
for field, what, override, path, why in cases:
    r = c.request("vm.create", dict(good, **override))
    e = r.get("error", {})
    want = "%s '%s': %s" % (what, path, why)
    check(e.get("code") == -32602 and e.get("data", {}).get("field") == field and want in e.get("message", ""),
          "refused: %s" % e.get("message"), json.dumps(r))
check(c.call("vm.list") == before, "vm.list unchanged")
check(not os.path.exists(os.path.join(state, "vms", "p1")), "no directory was created for p1")

# a symlink inside IMG to IMG2 is fine, and the definition keeps the resolved path
r = c.request("vm.create", dict(good, initrd=img + "/initrd-link", disks=[{"path": img + "/disk.img"}, {"path": img2 + "/disk2.img"}]))
check("result" in r, "a symlink from one image dir to another is accepted", json.dumps(r))
d = r["result"]["definition"]
check(d["initrd"] == img2 + "/ticker.cpio.gz", "the definition stores the resolved initrd path: " + d["initrd"])
stored = json.load(open(os.path.join(state, "vms", "p1", "config.json")))
check(stored["initrd"] == img2 + "/ticker.cpio.gz", "config.json holds the resolved path")
r = c.request("vm.start", {"name": "p1"})
check(r.get("result", {}).get("state") == "running", "p1 starts from its image dirs", json.dumps(r))
r = c.request("vm.stop", {"name": "p1", "force": True})
check(r.get("result", {}).get("state") == "stopped", "p1 stopped", json.dumps(r))

# swap the resolved disk for a symlink to a file outside: every start checks the policy again,
# so vmd refuses to start the VM and no worker runs
os.rename(img2 + "/disk2.img", img2 + "/disk2.real")
os.symlink(vartmp, img2 + "/disk2.img")
r = c.request("vm.start", {"name": "p1"})
e = r.get("error", {})
check(e.get("code") == -32002 and "resolves outside the image directories" in e.get("message", "")
      and img2 + "/disk2.img" in e.get("message", ""), "vm.start re-checks the policy: %s" % e.get("message"), json.dumps(r))
check(c.call("vm.info", {"name": "p1"})["state"] == "stopped", "p1 stays stopped")
# a symlink that stays inside the image dirs passes the policy, but the worker opens the stored
# path without following links
os.unlink(img2 + "/disk2.img")
os.symlink(img2 + "/disk2.real", img2 + "/disk2.img")
r = c.request("vm.start", {"name": "p1"})
e = r.get("error", {})
check("symbolic link" in e.get("message", "") and img2 + "/disk2.img" in e.get("message", ""),
      "the swapped-in symlink is not followed: %s" % e.get("message"), json.dumps(r))
info = c.call("vm.info", {"name": "p1"})
check(info["state"] == "crashed" and "symbolic link" in info["reason"], "p1 did not start: " + info["reason"])
PY
ok "image path policy enforced"
cmp -s "$VARTMP" /dev/null || fail "the file behind the swapped symlink was written to"

# state dir inside an image dir: its vms/ stays off limits
stop_vmd_hard
IMAGE_DIRS=("$TEST_TMP")
start_vmd
cp "$GUEST/vmlinuz" "$STATE/vms/p1/kernel-copy"
out=$(python3 -c '
import sys; sys.path.insert(0, "tests/integration")
from rpc_client import Conn
r = Conn.unix(sys.argv[1]).request("vm.create", {"name": "p2", "kernel": sys.argv[2]})
print(r["error"]["code"], r["error"]["message"])' "$SOCK" "$STATE/vms/p1/kernel-copy")
echo "$out" | grep -q "^-32602 .*resolves into vmd's own state directory" || fail "a kernel in the state dir: $out"
ok "a file in vmd's own state dir is refused: $out"

# the default image dir, and a missing one
stop_vmd_hard
IMAGE_DIRS=()
start_vmd
[ -d "$STATE/images" ] || fail "the default image dir was not created"
grep -q "image directories: $STATE/images" "$VMD_LOG" || fail "the default image dir is not logged"
ok "without --image-dir: $STATE/images created and used"
stop_vmd_hard
printf '{"image_dirs": ["%s", "%s"]}\n' "$IMG2" "$IMG" > "$TEST_TMP/vmd.json"
start_vmd --config "$TEST_TMP/vmd.json"
grep -q "image directories: $IMG2, $IMG\$" "$VMD_LOG" || fail "the config file's image_dirs are not used"
ok "the config file's image_dirs are used"
stop_vmd_hard
rc=0; "$VMD" --state-dir "$STATE" --socket "$SOCK" --image-dir "$TEST_TMP/missing" > "$TEST_TMP/err" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "image dir '$TEST_TMP/missing': No such file or directory" "$TEST_TMP/err" ||
    { cat "$TEST_TMP/err"; fail "a missing --image-dir: exit $rc"; }
ok "a missing --image-dir stops vmd: $(grep image "$TEST_TMP/err")"
