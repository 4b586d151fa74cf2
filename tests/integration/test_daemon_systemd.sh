# test_daemon_systemd: `make install` into a temporary prefix gives the binaries, the default
# config and a unit that `systemd-analyze verify` accepts (Type=notify, KillMode=process, the
# hardening and device rules); vmd started the way the unit starts it (--config FILE) sends
# READY=1 over $NOTIFY_SOCKET. (Starting the unit under a real systemd is not possible in
# this container: systemd is not PID 1 here.)
# timeout: 120
# duration: 1
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/daemon_lib.sh"
need_daemon_bins
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (apt-get install systemd)"
P=$TEST_TMP/prefix
make -s install PREFIX="$P/usr" UNITDIR="$P/units" SYSCONFDIR="$P/etc" > "$TEST_TMP/install.log" 2>&1 ||
    { cat "$TEST_TMP/install.log"; fail "make install"; }
for f in usr/bin/vmd usr/bin/vmd-worker usr/bin/vmctl units/vmd.service etc/vmd/vmd.json usr/share/doc/vmd/jsonrpc.md; do
    [ -e "$P/$f" ] || fail "make install did not install $f"
done
ok "make install: binaries, unit, config, docs"
U=$P/units/vmd.service
grep -q "^ExecStart=$P/usr/bin/vmd --config $P/etc/vmd/vmd.json" "$U" || fail "ExecStart not rewritten for PREFIX"
for line in "Type=notify" "KillMode=process" "Restart=on-failure" "DeviceAllow=/dev/kvm rw" "DeviceAllow=/dev/net/tun rw"; do
    grep -qx "$line" "$U" || fail "unit lacks '$line'"
done
grep -q "^CapabilityBoundingSet=.*CAP_NET_ADMIN" "$U" || fail "unit lacks CAP_NET_ADMIN"
ok "unit: Type=notify, KillMode=process, Restart=on-failure, /dev/kvm and /dev/net/tun, CAP_NET_ADMIN"
systemd-analyze verify "$U" > "$TEST_TMP/verify" 2>&1 || { cat "$TEST_TMP/verify"; fail "systemd-analyze verify"; }
ok "systemd-analyze verify $U"

# sd_notify: vmd --config FILE tells $NOTIFY_SOCKET it is ready
cat > "$TEST_TMP/vmd.json" <<JSON
{"state_dir": "$STATE", "socket": "$SOCK", "max_clients": 8}
JSON
python3 - "$TEST_TMP/notify.sock" > "$TEST_TMP/notify" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(20)
print("bound", flush=True)
try:
    print(s.recv(4096).decode(), flush=True)
except socket.timeout:
    print("timeout", flush=True)
PY
for _ in $(seq 50); do grep -q bound "$TEST_TMP/notify" 2>/dev/null && break; sleep 0.1; done
NOTIFY_SOCKET=$TEST_TMP/notify.sock "$P/usr/bin/vmd" --config "$TEST_TMP/vmd.json" >> "$VMD_LOG" 2>&1 &
VMD_PID=$!
disown "$VMD_PID"
wait %1 2>/dev/null
expect_in "$TEST_TMP/notify" "^READY=1" "vmd sent READY=1 to \$NOTIFY_SOCKET"
"$VMCTL" list > /dev/null || fail "vmd from --config does not answer on $SOCK"
ok "vmd configured by --config serves $SOCK"
echo '{"stat_dir": "/x"}' > "$TEST_TMP/bad.json"
if "$P/usr/bin/vmd" --config "$TEST_TMP/bad.json" > "$TEST_TMP/bad.out" 2>&1; then fail "vmd accepted an unknown config key"; fi
expect_in "$TEST_TMP/bad.out" "unknown key 'stat_dir'" "a config typo is refused, naming the key"
