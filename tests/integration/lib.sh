# lib.sh: helpers sourced by the integration tests (tests/integration/test_*.sh).
# A test exits 0 (pass), 77 (skip; the last line printed is the reason) or anything else (fail).
set -u
ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
cd "$ROOT"
VMCTL=${VMCTL:-$ROOT/build/bin/vmctl}
GUEST=$ROOT/.cache/guest
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/vmd-itest.XXXXXX")
trap 'rm -rf "$TEST_TMP"' EXIT

skip() { echo "$*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }

need_vmctl() { [ -x "$VMCTL" ] || fail "$VMCTL is not built (run make)"; }
need_guest_assets() { scripts/fetch-guest-assets.sh || fail "scripts/fetch-guest-assets.sh failed"; }

# expect_in FILE PATTERN WHAT: FILE has a line matching the extended regex PATTERN.
expect_in() {
    grep -Eq -- "$2" "$1" || { echo "--- $1:"; tail -n 40 "$1"; fail "$3: no line matching '$2'"; }
    ok "$3"
}
# expect_lines EXPECTED LOG: every line of EXPECTED appears as a whole line in LOG (a guest's
# computed values against the host's); on a miss, shows the guest's line with the same prefix.
expect_lines() {
    local want
    while IFS= read -r want; do
        grep -qxF -- "$want" "$2" ||
            { tail -n 40 "$2"; fail "expected '$want', guest printed '$(grep -F "${want% *}" "$2" | tail -1)'"; }
        ok "$want"
    done < "$1"
}
# free_port [N]: N (default 1) distinct free TCP ports on 127.0.0.1, one a line, all bound at once while
# the kernel picks them (tests run in parallel: never a fixed or random port number).
free_port() {
    python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))' "${1:-1}"
}

# The host side of tests/guest/disk_net.sh (test_virtio_disk_net, test_emu_apic_platform,
# test_worker_sandbox). disk_net_image FILE: an 8 MiB disk whose first 4 KiB the guest reads and
# hashes ("vmd-disk-test" and a pattern); its sector 100 is where the guest writes.
disk_net_image() {
    python3 - "$1" <<'PY' || fail "creating the disk image $1"
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"vmd-disk-test" + bytes((i * 7) & 0xff for i in range(4096 - 13)))
    f.truncate(8 << 20)
PY
}
# disk_net_server BYTES: $TEST_TMP/blob (BYTES random bytes, BLOB_SHA256 its hash) served on loopback
# at http://127.0.0.1:$HOST_PORT/blob, and /done once $TEST_TMP/fetched exists (the guest polls it
# after serving its page); HOST_FWD is another free port for the guest's hostfwd. SERVER_PID is the
# server's pid: the caller's EXIT trap kills it.
disk_net_server() {
    command -v python3 > /dev/null || fail "python3 is needed for the host-side server"
    head -c "$1" /dev/urandom > "$TEST_TMP/blob"
    BLOB_SHA256=$(sha256sum "$TEST_TMP/blob" | cut -d' ' -f1)
    { read -r HOST_PORT; read -r HOST_FWD; } < <(free_port 2)
    python3 - "$TEST_TMP" "$HOST_PORT" > "$TEST_TMP/server.log" 2>&1 <<'PY' &
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
    SERVER_PID=$!
}

# marker FILE NAME: the value after "NAME " on the last line starting with it (guest output has \r\n).
marker() { tr -d '\r' < "$1" | sed -n "s/^$2 //p" | tail -1; }

# The snapshot tests' counting guest (tests/guest/snapshot_counter.sh) prints
# "VMD-GUEST: boot <boot id> count N" twice a second.
# count_at_snapshot LOG: "<boot id> <count>" of the last count LOG shows before "snapshot saved to".
count_at_snapshot() {
    tr -d '\r' < "$1" | sed -n '/snapshot saved to/q;p' | sed -n 's/^VMD-GUEST: boot \(.*\) count \([0-9]*\)$/\1 \2/p' | tail -1
}
# expect_carries_on LOG BOOT LAST MORE WHERE: a restored guest in LOG kept boot BOOT (no fresh
# boot), its first count continues from LAST (within 2) and it counted at least MORE further.
expect_carries_on() {
    local log=$1 boot=$2 last=$3 more=$4 where=$5 counts first final
    grep -q '^VMD-GUEST: counter ready' "$log" && fail "$where: the guest booted afresh instead of carrying on"
    counts=$(sed -n "s/^VMD-GUEST: boot $boot count \([0-9]*\)\$/\1/p" "$log")
    first=$(echo "$counts" | head -1) final=$(echo "$counts" | tail -1)
    [ -n "$first" ] || { tail -30 "$log"; fail "$where: the restored guest printed no count"; }
    [ "$first" -ge "$last" ] && [ "$first" -le $((last + 2)) ] ||
        fail "$where: the restored guest's first count $first does not continue from $last"
    [ "$final" -ge $((first + more)) ] || { tail -30 "$log"; fail "$where: the restored guest stopped counting at $final"; }
    ok "$where: the guest (same boot id) counted on from $first to $final (snapshot at $last)"
}
