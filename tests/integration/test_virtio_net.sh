# test_virtio_net: a Linux guest (virtio_pci + virtio_net) under vmctl run --accel kvm (in the nested
# rig) with --net slirp,hostfwd=tcp:127.0.0.1:5555-:80 gets a DHCP lease from slirp (10.0.2.15 via
# 10.0.2.2), downloads 1 MiB over HTTP from the host side intact (same SHA-256 as the host's), and
# answers an HTTP request the host side sends through the port forward.
# timeout: 900
# serial: the nested KVM rig: QEMU TCG with 2 vCPUs, whose hang detection (per-attempt limits) assumes both CPUs
# duration: 18
. "$(dirname "$0")/lib.sh"
need_vmctl
command -v qemu-system-x86_64 > /dev/null || skip "qemu-system-x86_64 is not installed (package qemu-system-x86)"
need_guest_assets
mkdir -p "$TEST_TMP/www"
python3 - "$TEST_TMP/www/blob" > "$TEST_TMP/expected" <<'PY'
import hashlib, sys
blob = "".join(hashlib.sha256(b"vmd-net-%d" % i).hexdigest() + "\n" for i in range(16384)).encode()
open(sys.argv[1], "wb").write(blob)
print("VNET: dhcp 10.0.2.15 router 10.0.2.2 dns 10.0.2.3")
print("VNET: download sha256 %s bytes %d" % (hashlib.sha256(blob).hexdigest(), len(blob)))
print("VNET: served GET /from-outer HTTP/1.1")
print("RIG: hostfwd fetched: hello from the inner guest 42")
print("RIG: vmctl exit 0")
PY
log=$TEST_TMP/rig.log
rc=0
scripts/nested-rig.sh --timeout "${RIG_TIMEOUT:-300}" --hang-retries 1 --inner-script tests/guest/virtio-net.sh \
    --inner-modules "virtio_pci virtio_net" --vmctl-args "--net slirp,hostfwd=tcp:127.0.0.1:5555-:80" \
    --add "$TEST_TMP/www:/rig/www" --add tests/guest/virtio-net-before.sh:/rig/before.sh \
    --add tests/guest/virtio-net-after.sh:/rig/after.sh > "$log" 2>&1 || rc=$?
tr -d '\r' < "$log" > "$log.txt"
while IFS= read -r want; do
    grep -qxF -- "$want" "$log.txt" ||
        { tail -n 40 "$log.txt"; fail "expected '$want', got '$(grep -F "${want%% *}" "$log.txt" | tail -3)'"; }
    ok "$want"
done < "$TEST_TMP/expected"
[ $rc -eq 0 ] || fail "the rig's QEMU exited $rc"
