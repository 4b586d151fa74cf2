# test_virtio_disk_net: Debian's kernel under the emulator with a virtio-blk disk and a slirp NIC.
# The guest reads a disk image whose contents the host knows and writes to it (the host sees the
# write after the VM stops); it gets an address by DHCP, downloads a file from a server this test
# runs on the host's loopback and checks its hash, and serves a page the host fetches through a
# hostfwd port.
# This runs on the emulator's PIC platform (--irqchip pic: i8259 only, virtio on INTx); with
# IRQCHIP=apic (test_emu_apic_platform.sh) on its default APIC platform.
# timeout: 900
# duration: 11
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
disk=$TEST_TMP/disk.img
disk_net_image "$disk"
expected_disk=$(head -c 4096 "$disk" | sha256sum | cut -d' ' -f1)
disk_net_server 3000000 # the host's server on loopback (lib.sh): /blob, and /done once the page was fetched
port=$HOST_PORT fwd=$HOST_FWD expected_blob=$BLOB_SHA256
trap 'kill $SERVER_PID 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
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
