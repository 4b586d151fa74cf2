# test_cloud_init_seed: cloud-init NoCloud seeds (vm.create's cloud_init, vmctl --cloud-init).
# vmd refuses bad cloud_init params with -32602 naming the field (not an object, user_data
# missing or not a string, an unknown field, a NUL, more than 64 KiB) and defines nothing; a good
# one gives STATE_DIR/vms/NAME/cidata.iso (vmd's, 0600), and vm.info shows the seed with the
# files' sizes but not their texts. The seed is rewritten at start (a damaged one is replaced).
# The guest (Debian kernel, busybox initramfs running tests/guest/cloud_init_seed.sh, emulator)
# finds a read-only disk with serial vmd-cidata after its own disk, whose ISO 9660 volume label is
# cidata; mounted (isofs module), it holds user-data, meta-data (vmd's default) and
# network-config with exactly the bytes given, under Rock Ridge and Joliet names. vm.delete
# removes the seed. `vmctl run --cloud-init` gives a guest the same kind of seed.
# timeout: 300
# duration: 20
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
[ -f "$GUEST/vmlinuz" ] || need_guest_assets
[ -f "$GUEST/modules-cloud/modules.dep" ] || need_guest_assets
INITRD=$TEST_TMP/cidata.cpio.gz
scripts/mkinitramfs.sh "$INITRD" --script tests/guest/cloud_init_seed.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_blk isofs" > "$TEST_TMP/mkinitramfs.log" 2>&1 || { cat "$TEST_TMP/mkinitramfs.log"; fail "mkinitramfs"; }
truncate -s 4M "$TEST_TMP/data.img"
U=$TEST_TMP/user-data N=$TEST_TMP/network-config M=$TEST_TMP/meta-data
printf '#cloud-config\nhostname: ci1\nssh_authorized_keys:\n  - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIvmdtest vmd@test\nwrite_files:\n  - path: /etc/motd\n    content: "caf\xc3\xa9 \xe2\x9c\x93 $HOME \\n"\n' > "$U"
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n' > "$N"
printf 'instance-id: iid-ci2-7\nlocal-hostname: ci2\n' > "$M"
start_vmd

python3 - "$SOCK" "$GUEST/vmlinuz" "$INITRD" "$TEST_TMP/data.img" "$U" "$N" "$STATE" <<'PY' || fail "vm.create with cloud_init"
import json, os, stat, sys
sys.path.insert(0, "tests/integration")
from rpc_client import Conn
sock, kernel, initrd, disk, u, n, state = sys.argv[1:8]
c = Conn.unix(sock)
def check(cond, what, detail=""):
    if not cond:
        print("FAIL:", what, detail); sys.exit(1)
    print("ok -", what)
vm = {"kernel": kernel, "initrd": initrd, "accel": "emu", "memory_mib": 128, "cmdline": "console=ttyS0 quiet",
      "disks": [{"path": disk}]}
user, net = open(u, encoding="utf-8").read(), open(n).read()
bad = [
    ("#cloud-config", "cloud_init", "must be an object"),
    ({}, "cloud_init.user_data", "cloud_init.user_data: required"),
    ({"meta_data": "instance-id: x\n"}, "cloud_init.user_data", "required"),
    ({"user_data": 42}, "cloud_init", "must be a string"),
    ({"user_data": user, "network_config": ["v2"]}, "cloud_init.network_config", "must be a string"),
    ({"user_data": user, "vendor_data": ""}, "cloud_init", "cloud_init.vendor_data: unknown field"),
    ({"user_data": "a\u0000b"}, "cloud_init", "NUL"),
    ({"user_data": "#" * 65537}, "cloud_init.user_data", "65537 bytes, more than the 65536 allowed"),
    ({"user_data": user, "meta_data": "m" * 70000}, "cloud_init.meta_data", "70000 bytes, more than the 65536 allowed"),
]
for ci, field, msg in bad:
    r = c.request("vm.create", dict(vm, name="bad", cloud_init=ci))
    e = r.get("error", {})
    got = e.get("data", {}).get("field", "")
    check(e.get("code") == -32602 and got.startswith(field) and msg in e.get("message", ""),
          "refused: %s" % e.get("message", "")[:110], json.dumps(r)[:300])
check(c.call("vm.list") == [], "no VM was defined by a refused vm.create")
check(not os.path.exists(state + "/vms/bad"), "no directory was left for a refused vm.create")

r = c.request("vm.create", dict(vm, name="ci1", cloud_init={"user_data": user, "network_config": net}))
res = r.get("result")
check(res is not None, "vm.create with cloud_init", json.dumps(r)[:300])
seed = state + "/vms/ci1/cidata.iso"
ci = res.get("cloud_init") or {}
check(ci.get("seed") == seed and ci.get("volume_id") == "cidata" and ci.get("meta_data_default") is True,
      "vm.create's answer shows the seed", json.dumps(ci))
meta = 'instance-id: "ci1"\nlocal-hostname: "ci1"\n'
check(ci.get("files") == {"user-data": len(user.encode()), "meta-data": len(meta), "network-config": len(net)},
      "and its files' sizes", json.dumps(ci))
info = c.call("vm.info", {"name": "ci1"})
check(info.get("cloud_init") == ci, "vm.info shows the same seed")
check("cloud_init" not in info["definition"] and "ssh-ed25519" not in json.dumps(info),
      "vm.info does not show cloud_init's texts")
st = os.lstat(seed)
check(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid(),
      "the seed is a regular file of vmd's, mode 0600 (%o)" % stat.S_IMODE(st.st_mode))
PY
ok "vm.create: bad cloud_init refused with the field named; the seed made and shown"

SEED=$STATE/vms/ci1/cidata.iso
if command -v isoinfo > /dev/null; then
    isoinfo -d -i "$SEED" | grep -qx "Volume id: cidata" || fail "isoinfo: the seed's volume id is not cidata"
    ok "isoinfo: the seed's volume id is cidata"
fi
"$VMCTL" info ci1 | grep -q "^cloud-init: $SEED (volume cidata" || { "$VMCTL" info ci1; fail "vmctl info does not show the seed"; }
ok "vmctl info shows the seed"
# what a compromised worker could leave behind: vmd writes the seed again before every start
printf 'not an ISO' > "$SEED"
"$VMCTL" start ci1 > /dev/null 2>&1 || fail "ci1 did not start: $(vm_field ci1 reason)"
[ "$(stat -c %s "$SEED")" -gt 32768 ] || fail "the damaged seed was not rewritten at start"
ok "vm.start rewrote the damaged seed"
LOG=$STATE/vms/ci1/console.log
limit=${GUEST_BOOT_TIMEOUT:-240}
for _ in $(seq "$limit"); do grep -q "VMD-INIT: poweroff" "$LOG" 2>/dev/null && break; sleep 1; done
tr -d '\r' < "$LOG" > "$TEST_TMP/ci1.txt"
grep -q "CIDATA: done" "$TEST_TMP/ci1.txt" || { tail -30 "$TEST_TMP/ci1.txt"; fail "the guest did not finish reading its seed within ${limit}s"; }
wait_state ci1 stopped 20 || fail "ci1 did not stop after the guest powered off ($(vm_state ci1))"

sha() { sha256sum | cut -d' ' -f1; }
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: disk vda serial vmd-disk0$" "the VM's own disk comes first (vda)"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: seed vdb ro 1$" "the seed is the next disk, read-only (vdb)"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: write refused$" "the guest cannot write the seed"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: pvd label 'cidata'$" "the seed's volume label is cidata"
grep -q "^CIDATA: blkid" "$TEST_TMP/ci1.txt" && expect_in "$TEST_TMP/ci1.txt" '^CIDATA: blkid .*LABEL="cidata"' "blkid in the guest says LABEL=cidata"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: files meta-data network-config user-data $" "the mounted seed holds user-data, meta-data, network-config"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: joliet files meta-data network-config user-data $" "the same names through Joliet"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: user-data size $(wc -c < "$U") sha256 $(sha < "$U")$" "user-data is byte for byte what was given"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: network-config size $(wc -c < "$N") sha256 $(sha < "$N")$" "network-config is what was given"
printf 'instance-id: "ci1"\nlocal-hostname: "ci1"\n' > "$TEST_TMP/meta1"
expect_in "$TEST_TMP/ci1.txt" "^CIDATA: meta-data size $(wc -c < "$TEST_TMP/meta1") sha256 $(sha < "$TEST_TMP/meta1")$" "meta-data is vmd's default (instance-id and local-hostname: ci1)"
expect_in "$TEST_TMP/ci1.txt" '^CIDATA: user-data\| hostname: ci1$' "the guest reads user-data's text"
expect_in "$TEST_TMP/ci1.txt" '^CIDATA: meta-data\| local-hostname: "ci1"$' "the guest reads meta-data's text"

# vmctl create reads the files; meta-data given; bad files refused before anything is sent
"$VMCTL" create ci2 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --accel emu --cloud-init "$U" --cloud-init-meta "$M" > /dev/null ||
    fail "vmctl create --cloud-init --cloud-init-meta"
"$VMCTL" --json info ci2 | python3 -c '
import json, sys
ci = json.load(sys.stdin)["cloud_init"]
sys.exit(0 if ci["meta_data_default"] is False and ci["files"]["meta-data"] == int(sys.argv[1]) and "network-config" not in ci["files"] else 1)' "$(wc -c < "$M")" ||
    fail "vm.info of ci2: $("$VMCTL" --json info ci2)"
ok "vmctl create --cloud-init FILE --cloud-init-meta FILE"
head -c 70000 /dev/zero | tr '\0' 'x' > "$TEST_TMP/big"
out=$("$VMCTL" create ci3 --kernel "$GUEST/vmlinuz" --cloud-init "$TEST_TMP/big" 2>&1) && fail "a 70000-byte user-data was accepted"
echo "$out" | grep -q "larger than the 65536 bytes allowed" || fail "vmctl create with a big file: '$out'"
ok "vmctl create refuses a user-data file over 64 KiB: $out"
out=$("$VMCTL" create ci3 --kernel "$GUEST/vmlinuz" --cloud-init "$TEST_TMP/none" 2>&1) && fail "a missing user-data file was accepted"
echo "$out" | grep -q "No such file or directory" || fail "vmctl create with a missing file: '$out'"
out=$("$VMCTL" create ci3 --kernel "$GUEST/vmlinuz" --cloud-init-meta "$M" 2>&1) && fail "meta-data without user-data was accepted"
ok "vmctl create: a missing file or meta-data without user-data is refused"

"$VMCTL" delete ci1 > /dev/null || fail "delete ci1"
[ ! -e "$SEED" ] && [ ! -e "$STATE/vms/ci1" ] || fail "vm.delete left the seed behind"
ok "vm.delete removed the seed"

# vmctl run --cloud-init: the same seed for a foreground VM, removed at exit
mkdir -p "$TEST_TMP/runtmp"
TMPDIR=$TEST_TMP/runtmp "$VMCTL" run --accel emu --memory 128 --kernel "$GUEST/vmlinuz" --initrd "$INITRD" --cmdline "console=ttyS0 quiet" \
    --name run1 --cloud-init "$U" --cloud-init-network "$N" < /dev/null > "$TEST_TMP/run.log" 2>&1 || { tail -20 "$TEST_TMP/run.log"; fail "vmctl run --cloud-init"; }
tr -d '\r' < "$TEST_TMP/run.log" > "$TEST_TMP/run.txt"
expect_in "$TEST_TMP/run.txt" "^CIDATA: seed vda ro 1$" "vmctl run: the seed is the (only) disk, read-only"
expect_in "$TEST_TMP/run.txt" "^CIDATA: pvd label 'cidata'$" "vmctl run: volume label cidata"
expect_in "$TEST_TMP/run.txt" "^CIDATA: user-data size $(wc -c < "$U") sha256 $(sha < "$U")$" "vmctl run: user-data as given"
printf 'instance-id: "run1"\nlocal-hostname: "run1"\n' > "$TEST_TMP/meta2"
expect_in "$TEST_TMP/run.txt" "^CIDATA: meta-data size $(wc -c < "$TEST_TMP/meta2") sha256 $(sha < "$TEST_TMP/meta2")$" \
    "vmctl run: the default meta-data names the VM"
[ -z "$(ls -A "$TEST_TMP/runtmp")" ] || fail "vmctl run left its seed behind: $(ls -A "$TEST_TMP/runtmp")"
ok "vmctl run removed its seed"
