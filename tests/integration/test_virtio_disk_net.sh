# test_virtio_disk_net: Debian's kernel under the emulator with a virtio-blk disk and a slirp NIC.
# The guest reads a disk image whose contents the host knows and writes to it (the host sees the
# write after the VM stops); it gets an address by DHCP, downloads a file from a server this test
# runs on the host's loopback and checks its hash, and serves a page the host fetches through a
# hostfwd port.
# This runs on the emulator's PIC platform (--irqchip pic: i8259 only, virtio on INTx); with
# IRQCHIP=apic (test_emu_apic_platform.sh) on its default APIC platform.
# timeout: 900
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
command -v python3 > /dev/null || fail "python3 is needed for the host-side server"
disk=$TEST_TMP/disk.img
python3 - "$disk" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    head = b"vmd-disk-test" + bytes((i * 7) & 0xff for i in range(4096 - 13))
    f.write(head)
    f.truncate(8 << 20)
PY
expected_disk=$(head -c 4096 "$disk" | sha256sum | cut -d' ' -f1)
head -c 3000000 /dev/urandom > "$TEST_TMP/blob"
expected_blob=$(sha256sum "$TEST_TMP/blob" | cut -d' ' -f1)
# Host server on loopback: serves /blob, and /done once the page was fetched through hostfwd.
port=$((30000 + RANDOM % 10000))
fwd=$((port + 1))
python3 - "$TEST_TMP" "$port" > "$TEST_TMP/server.log" 2>&1 <<'PY' &
import http.server, os, sys
root, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/blob":
            body = open(os.path.join(root, "blob"), "rb").read()
        elif self.path == "/done" and os.path.exists(os.path.join(root, "fetched")):
            body = b"done\n"
        else:
            self.send_response(404); self.end_headers(); return
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
initrd=$TEST_TMP/disknet.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/disk_net.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_blk virtio_net virtio-rng" || fail "mkinitramfs"
log=$TEST_TMP/console.log
"$VMCTL" run --accel emu --irqchip "${IRQCHIP:-pic}" --memory 256 --kernel "$GUEST/vmlinuz" --initrd "$initrd" --disk "$disk" \
    --net "slirp,hostfwd=tcp:127.0.0.1:$fwd-:80" --cmdline "console=ttyS0 quiet vmd.hostport=$port" \
    < /dev/null > "$log" 2>&1 &
vm=$!
for _ in $(seq 600); do grep -q "GUEST: serving" "$log" && break; kill -0 $vm 2>/dev/null || break; sleep 1; done
page=$(curl -s --max-time 30 "http://127.0.0.1:$fwd/") || true
touch "$TEST_TMP/fetched"
wait $vm
rc=$?
tr -d '\r' < "$log" > "$log.txt"
expect_in "$log.txt" "^GUEST: disk head vmd-disk-test$" "guest read the disk's first bytes"
expect_in "$log.txt" "^GUEST: disk sha256 $expected_disk$" "guest's hash of the first 4 KiB matches the host's"
expect_in "$log.txt" "^GUEST: disk size 16384$" "guest sees 8 MiB (16384 sectors)"
expect_in "$log.txt" "^GUEST: ip 10\.0\.2\.15/24$" "guest got 10.0.2.15 by DHCP"
expect_in "$log.txt" "^GUEST: download sha256 $expected_blob$" "downloaded file's hash matches"
[ "$page" = "hello from the guest 42" ] || fail "page fetched through hostfwd was '$page'"
ok "host fetched the guest's page through hostfwd"
[ "$(dd if="$disk" bs=512 skip=100 count=1 2>/dev/null | head -c 16)" = "written-by-guest" ] ||
    fail "the guest's write is not in the image"
ok "the guest's write reached the disk image"
[ $rc -eq 0 ] || fail "vmctl exited $rc"
ok "vmctl exit 0"
if [ "$(id -u)" = 0 ]; then # vmctl run as root confines itself (docs/security.md)
    expect_in "$log.txt" "sandbox: uid [1-9][0-9]* gid [1-9][0-9]*, no capabilities, no_new_privs, seccomp" \
        "vmctl run as root ran the VM unprivileged, with no_new_privs and seccomp"
fi
irqs=$(sed -n 's/^GUEST: irqs //p' "$log.txt")
ok "guest interrupts: $irqs"
set -- $irqs
if [ "${IRQCHIP:-pic}" = apic ]; then
    [ "$4" -gt 0 ] && [ "$6" -gt 0 ] && [ "${8:-0}" -gt 0 ] ||
        fail "the guest did not use the IOAPIC, MSI-X and the local APIC timer ($irqs)"
    ok "the guest ran on the IOAPIC, MSI-X and its local APIC timer"
else
    [ "$2" -gt 0 ] && [ "$6" -eq 0 ] || fail "the guest did not run on the i8259 ($irqs)"
fi
