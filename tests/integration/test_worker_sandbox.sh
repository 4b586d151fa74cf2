# test_worker_sandbox: a VM's worker under vmd (as root) is confined (docs/security.md): its
# /proc/PID/status shows the vmd user and group, no supplementary groups, no capabilities in any
# set (bounding and ambient included), no_new_privs and a seccomp filter; it has its own mount, IPC and UTS
# namespaces, and its root is an empty tmpfs holding only its VM's directory (/vm: no /etc, no
# /etc/shadow); it has neither vmd's TLS key nor its path; its VM's directory is the worker user's. The guest still works confined: Debian's kernel under
# the emulator reads and writes its virtio disk, downloads a file from the host through slirp and
# serves a page the host fetches through a hostfwd port. vmd --no-sandbox runs the worker
# unconfined (debugging only).
# timeout: 600
# duration: 17
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
[ "$(id -u)" = 0 ] || skip "the worker sandbox drops privileges only when vmd runs as root"
need_guest_assets
command -v openssl > /dev/null || skip "openssl is not installed"
make_pki
tls_port=$(free_port)
start_vmd --listen "127.0.0.1:$tls_port" --tls-cert "$PKI/server.crt" --tls-key "$PKI/server.key" --tls-ca "$PKI/ca.crt"
expect_in "$VMD_LOG" "workers run sandboxed as vmd \(uid [1-9][0-9]* gid [1-9][0-9]*\)" "vmd runs its workers as the vmd user"
vmd_uid=$(id -u vmd) vmd_gid=$(id -g vmd)

# --- the guest: virtio disk + slirp (tests/guest/disk_net.sh) ---
disk=$TEST_TMP/disk.img
disk_net_image "$disk"
disk_net_server 300000 # the host's server on loopback (lib.sh), as in test_virtio_disk_net
port=$HOST_PORT fwd=$HOST_FWD expected_blob=$BLOB_SHA256
trap 'kill $SERVER_PID 2>/dev/null; cleanup_daemon' EXIT
initrd=$TEST_TMP/disknet.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/disk_net.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_blk virtio_net virtio-rng" > "$TEST_TMP/mkinitramfs.log" 2>&1 || fail "mkinitramfs"
"$VMCTL" create sb --accel emu --irqchip pic --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$initrd" --disk "$disk" \
    --net "slirp,hostfwd=tcp:127.0.0.1:$fwd-:80" --cmdline "console=ttyS0 quiet vmd.hostport=$port" \
    --vnc 127.0.0.1:0 > /dev/null || fail "vmctl create"
need_running_guest sb
pid=$(vm_field sb pid)
[ -n "$pid" ] && proc_alive "$pid" || fail "no running worker for sb (pid '$pid')"

# --- the worker's credentials ---
st=/proc/$pid/status
field() { sed -n "s/^$1:[[:space:]]*//p" "$st" | tr -s '\t ' ' '; }
[ "$(field Uid)" = "$vmd_uid $vmd_uid $vmd_uid $vmd_uid" ] || fail "worker Uid: $(field Uid) (want vmd, $vmd_uid)"
[ "$(field Gid)" = "$vmd_gid $vmd_gid $vmd_gid $vmd_gid" ] || fail "worker Gid: $(field Gid) (want $vmd_gid)"
ok "worker pid $pid runs as uid $vmd_uid gid $vmd_gid (real, effective, saved, filesystem)"
[ -z "$(field Groups)" ] || fail "worker has supplementary groups: $(field Groups)"
ok "no supplementary groups"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
    [ "$(field $c)" = 0000000000000000 ] || fail "worker $c is $(field $c)"
done
ok "CapInh, CapPrm, CapEff, CapBnd and CapAmb are all 0"
[ "$(field NoNewPrivs)" = 1 ] || fail "worker NoNewPrivs: $(field NoNewPrivs)"
ok "NoNewPrivs 1"
[ "$(field Seccomp)" = 2 ] || fail "worker Seccomp: $(field Seccomp) (want 2, a filter)"
ok "Seccomp 2 (filter mode)"
if tr '\0' '\n' < "/proc/$pid/cmdline" | grep -q "server.key\|server.crt\|$PKI" ||
    tr '\0' '\n' < "/proc/$pid/environ" | grep -q "server.key\|$PKI"; then
    fail "the worker's arguments or environment name vmd's TLS material: $(tr '\0' ' ' < "/proc/$pid/cmdline")"
fi
ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$PKI" && fail "the worker holds an fd of vmd's TLS material"
ok "no TLS key, certificate or their paths in the worker (arguments, environment, fds)"
# --- its own namespaces, its root an empty tmpfs holding only the VM's directory ---
for ns in mnt ipc uts; do
    [ "$(readlink "/proc/$pid/ns/$ns")" != "$(readlink "/proc/self/ns/$ns")" ] || fail "the worker shares the host's $ns namespace"
done
ok "own mount, IPC and UTS namespaces"
[ -e "/proc/$pid/root/etc/shadow" ] && fail "/etc/shadow is reachable from the worker's root"
[ -e "/proc/$pid/root/etc" ] && fail "/etc exists in the worker's root"
[ "$(ls -A "/proc/$pid/root")" = vm ] || fail "the worker's root holds: $(ls -A "/proc/$pid/root" | tr '\n' ' ')"
[ -f "/proc/$pid/root/vm/config.json" ] || fail "the VM's directory is not the worker's /vm"
ok "the worker's root holds only /vm (its VM's directory): no /etc, no /etc/shadow"
[ "$(readlink "/proc/$pid/cwd")" = /vm ] || fail "the worker's cwd is $(readlink "/proc/$pid/cwd")"
[ "$(stat -c %u "$STATE/vms/sb")" = "$vmd_uid" ] || fail "the VM's directory is not the worker user's"
[ "$(stat -c %u "$STATE/vms/sb/config.json")" = 0 ] || fail "config.json was handed to the worker user"
ok "the VM's directory is the worker user's; its definition stays vmd's"

# --- the guest works confined ---
log=$STATE/vms/sb/console.log
for _ in $(seq 300); do grep -q "GUEST: serving" "$log" 2>/dev/null && break; proc_alive "$pid" || break; sleep 1; done
page=$(curl -s --max-time 30 "http://127.0.0.1:$fwd/") || true
touch "$TEST_TMP/fetched"
wait_state sb stopped 120 || { tail -20 "$log"; fail "the guest did not power off (state $(vm_state sb): $(vm_field sb reason))"; }
tr -d '\r' < "$log" > "$TEST_TMP/console.txt"
expect_in "$TEST_TMP/console.txt" "^GUEST: disk head vmd-disk-test$" "the confined guest read its disk"
expect_in "$TEST_TMP/console.txt" "^GUEST: download sha256 $expected_blob$" "it downloaded a file from the host through slirp"
[ "$page" = "hello from the guest 42" ] || fail "page fetched through hostfwd was '$page'"
ok "the host fetched the guest's page through hostfwd"
[ "$(dd if="$disk" bs=512 skip=100 count=1 2>/dev/null | head -c 16)" = "written-by-guest" ] ||
    fail "the guest's write is not in the image"
ok "the guest's write reached the disk image"
grep -q "forbidden system call" "$VMD_LOG" && fail "the seccomp filter stopped something: $(grep "forbidden system call" "$VMD_LOG")"
[ "$(vm_field sb reason)" = "guest powered off" ] || fail "sb's reason: $(vm_field sb reason)"
ok "sb stopped: guest powered off"

# --- vmd --no-sandbox (debugging only): the worker runs unconfined, and vmd says so ---
stop_vmd_hard
start_vmd --no-sandbox
expect_in "$VMD_LOG" "--no-sandbox: workers run unconfined" "vmd --no-sandbox warns that workers run unconfined"
"$VMCTL" start sb > /dev/null || fail "vmctl start sb (--no-sandbox)"
pid=$(vm_field sb pid)
[ -n "$pid" ] && proc_alive "$pid" || fail "no running worker for sb (--no-sandbox)"
st=/proc/$pid/status
[ "$(field Uid)" = "0 0 0 0" ] && [ "$(field Seccomp)" = 0 ] && [ "$(field NoNewPrivs)" = 0 ] ||
    fail "--no-sandbox worker: Uid $(field Uid), Seccomp $(field Seccomp), NoNewPrivs $(field NoNewPrivs)"
[ "$(readlink "/proc/$pid/ns/mnt")" = "$(readlink "/proc/self/ns/mnt")" ] || fail "--no-sandbox worker has its own mount namespace"
ok "--no-sandbox: the worker runs as root, without seccomp or namespaces"
"$VMCTL" stop --force sb > /dev/null || fail "vmctl stop --force sb"
wait_state sb stopped 30 || fail "sb did not stop"
