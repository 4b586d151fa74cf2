# test_tap_bridge: two VMs with `--net tap:BRIDGE` on one Linux bridge, inside a network namespace
# this test creates, ping each other. Skips where network namespaces or tap devices can't be made.
# timeout: 900
# duration: 27
. "$(dirname "$0")/lib.sh"
need_vmctl
need_guest_assets
ns=vmdtest$$
ip netns add "$ns" 2> /dev/null || skip "cannot create a network namespace (needs CAP_SYS_ADMIN and iproute2)"
trap 'ip netns del "$ns" 2>/dev/null; rm -rf "$TEST_TMP"' EXIT
ip netns exec "$ns" ip link add vmdbr0 type bridge || skip "cannot create a bridge in a namespace"
ip netns exec "$ns" ip link set vmdbr0 up
ip netns exec "$ns" sh -c 'exec 3<>/dev/net/tun' 2> /dev/null || skip "no /dev/net/tun"
initrd=$TEST_TMP/ping.cpio.gz
scripts/mkinitramfs.sh "$initrd" --script tests/guest/bridge_ping.sh --modules-dir "$GUEST/modules-cloud" \
    --modules "virtio_pci virtio_net" || fail "mkinitramfs"
run_vm() { # NAME IP PEER LOG
    ip netns exec "$ns" "$VMCTL" run --accel emu --name "$1" --memory 192 --kernel "$GUEST/vmlinuz" \
        --initrd "$initrd" --net tap:vmdbr0 --cmdline "console=ttyS0 quiet vmd.ip=$2 vmd.peer=$3" \
        < /dev/null > "$4" 2>&1
}
run_vm a 192.168.77.1 192.168.77.2 "$TEST_TMP/a.log" &
a=$!
run_vm b 192.168.77.2 192.168.77.1 "$TEST_TMP/b.log" &
b=$!
wait $a; ra=$?
wait $b; rb=$?
for v in a b; do tr -d '\r' < "$TEST_TMP/$v.log" > "$TEST_TMP/$v.txt"; done
expect_in "$TEST_TMP/a.txt" "^GUEST: ping 192\.168\.77\.2 ok$" "VM a reached VM b over the bridge"
expect_in "$TEST_TMP/b.txt" "^GUEST: ping 192\.168\.77\.1 ok$" "VM b reached VM a over the bridge"
[ $ra -eq 0 ] && [ $rb -eq 0 ] || fail "vmctl exited $ra / $rb"
ok "both VMs powered off cleanly"
