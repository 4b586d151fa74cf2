# daemon_lib.sh: helpers for the vmd integration tests (sourced after lib.sh).
# start_vmd [ARGS...] starts vmd on a fresh state dir in $TEST_TMP and waits for its socket;
# make_pki creates a CA, a server certificate for localhost/127.0.0.1, a client certificate,
# and a second, unrelated CA with its own client certificate; make_client_cert issues more
# client certificates with chosen subjects. Everything is cleaned up at exit.
VMD=${VMD:-$ROOT/build/bin/vmd}
STATE=$TEST_TMP/state
SOCK=$TEST_TMP/vmd.sock
VMD_LOG=$TEST_TMP/vmd.log
PKI=$TEST_TMP/pki
VMD_PID=
export VMD_SOCKET=unix:$SOCK
RPC_PY=$ROOT/tests/integration/rpc_client.py

cleanup_daemon() {
    # the VMs first (their workers outlive vmd by design), then vmd
    if [ -d "$STATE/vms" ]; then
        for p in "$STATE"/vms/*/worker.pid; do
            [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
        done
    fi
    [ -n "$VMD_PID" ] && kill -9 "$VMD_PID" 2>/dev/null
    wait 2>/dev/null
    # sanitizer builds (VMD=build/asan/bin/vmd) report into vmd's log, workers' reports included
    if grep -q "AddressSanitizer\|runtime error:\|LeakSanitizer" "$VMD_LOG" 2>/dev/null; then
        grep -A 30 "AddressSanitizer\|runtime error:\|LeakSanitizer" "$VMD_LOG" | head -60
        echo "FAIL: sanitizer report in vmd's log"
        rm -rf "$TEST_TMP"
        exit 1
    fi
    rm -rf "$TEST_TMP"
}
trap cleanup_daemon EXIT

need_daemon_bins() {
    [ -x "$VMD" ] || fail "$VMD is not built (run make)"
    [ -x "$ROOT/build/bin/vmd-worker" ] || fail "vmd-worker is not built (run make)"
    need_vmctl
    command -v python3 >/dev/null || skip "python3 is not installed"
}

# vmd as root runs its workers sandboxed as the system user "vmd" (docs/security.md), which
# `make install` creates; a test machine may not have it yet.
ensure_worker_user() {
    [ "$(id -u)" = 0 ] || return 0
    getent passwd vmd > /dev/null && return 0
    # under a lock: tests running in parallel would otherwise race for /etc/passwd
    flock /run/lock/vmd-itest-useradd.lock sh -c \
        'getent passwd vmd > /dev/null || useradd --system --no-create-home --shell /usr/sbin/nologin vmd' 2> /dev/null
    getent passwd vmd > /dev/null || fail "cannot create the worker user 'vmd' (useradd)"
}
ensure_worker_user

# The image directories the tests' VMs use (vm.create refuses files elsewhere): the guest cache
# and $TEST_TMP, where tests build their initramfs and disk images. A test may set IMAGE_DIRS.
if [ -z "${IMAGE_DIRS+set}" ]; then
    mkdir -p "$GUEST" # vmd wants the image dirs it is given to exist; the assets may come later
    IMAGE_DIRS=("$TEST_TMP" "$GUEST")
fi

start_vmd() {
    local before d dirs=()
    before=$(cat "$VMD_LOG" 2>/dev/null | grep -c "ready")
    for d in "${IMAGE_DIRS[@]}"; do dirs+=(--image-dir "$d"); done
    "$VMD" --state-dir "$STATE" --socket "$SOCK" "${dirs[@]}" "$@" >> "$VMD_LOG" 2>&1 &
    VMD_PID=$!
    disown "$VMD_PID" # no "Killed" job messages when a test kills it
    for _ in $(seq 400); do # up to 20 s: other tests may be keeping the CPUs busy
        [ -S "$SOCK" ] && [ "$(grep -c "ready" "$VMD_LOG")" -gt "$before" ] && return 0
        kill -0 "$VMD_PID" 2>/dev/null || { cat "$VMD_LOG"; fail "vmd exited at start-up"; }
        sleep 0.05
    done
    cat "$VMD_LOG"
    fail "vmd did not become ready"
}

stop_vmd_hard() {
    kill -9 "$VMD_PID"
    for _ in $(seq 100); do proc_alive "$VMD_PID" || break; sleep 0.05; done
    VMD_PID=
}

make_pki() {
    mkdir -p "$PKI"
    (
        cd "$PKI" || exit 1
        for ca in ca otherca; do
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=vmd test $ca" \
                -keyout $ca.key -out $ca.crt 2>/dev/null || exit 1
        done
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > san.ext
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null &&
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile san.ext -out server.crt 2>/dev/null || exit 1
        for who in client:ca intruder:otherca; do
            n=${who%%:*} ca=${who##*:}
            openssl req -newkey rsa:2048 -nodes -subj "/CN=$n" -keyout $n.key -out $n.csr 2>/dev/null &&
                openssl x509 -req -in $n.csr -CA $ca.crt -CAkey $ca.key -CAcreateserial -days 2 -out $n.crt 2>/dev/null || exit 1
        done
    ) || fail "openssl could not create the test certificates"
}

# make_client_cert NAME SUBJECT: after make_pki, a client certificate $PKI/NAME.{crt,key} signed
# by the test CA with the given subject in openssl's -subj form ("/O=lab/CN=ops-1", which vmd
# sees in RFC 2253 form as "CN=ops-1,O=lab").
make_client_cert() {
    (
        cd "$PKI" || exit 1
        openssl req -newkey rsa:2048 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null &&
            openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out "$1.crt" 2>/dev/null
    ) || fail "openssl could not create the certificate $1 ($2)"
}


# vm_state NAME: the VM's state as vmctl reports it.
vm_state() { "$VMCTL" --json info "$1" 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null; }
vm_field() { "$VMCTL" --json info "$1" 2>/dev/null | python3 -c "import json,sys; v=json.load(sys.stdin)[\"$2\"]; print('' if v is None else v)" 2>/dev/null; }

# wait_state NAME STATE [SECONDS]
wait_state() {
    local i
    for i in $(seq $((${3:-10} * 10))); do
        [ "$(vm_state "$1")" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# need_running_guest NAME: start NAME; skip the test if the machine cannot run yet (emulator or
# boot loader still missing), with the worker's reason.
need_running_guest() {
    local out
    out=$("$VMCTL" start "$1" 2>&1) || {
        case $out in
            *"not built yet"*|*"Function not implemented"*|*"machine:"*|*"backend"*)
                skip "the VM cannot run yet on this build: $(echo "$out" | tail -1)" ;;
        esac
        fail "vmctl start $1: $out"
    }
    sleep 1
    local st
    st=$(vm_state "$1")
    if [ "$st" != running ]; then
        skip "the guest does not keep running yet on this build ($1 is $st: $(vm_field "$1" reason))"
    fi
}

# proc_alive PID: the process exists and is not a zombie (orphaned workers may wait unreaped).
proc_alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; }

# need_ticker_initrd: INITRD becomes a busybox initramfs whose guest prints a tick a second
# (tests/guest/daemon_ticker.sh), the guest kernel fetched first if need be.
need_ticker_initrd() {
    [ -f "$GUEST/vmlinuz" ] || need_guest_assets
    [ -f "$GUEST/vmlinuz" ] || skip "no guest kernel at $GUEST/vmlinuz"
    INITRD=$TEST_TMP/ticker.cpio.gz
    scripts/mkinitramfs.sh "$INITRD" --script tests/guest/daemon_ticker.sh > "$TEST_TMP/mkinitramfs.log" 2>&1 ||
        { cat "$TEST_TMP/mkinitramfs.log"; fail "mkinitramfs"; }
}
