# Outer guest of the nested KVM rig for tests/integration/test_kvm_units_nested.sh: runs every
# unit-test binary copied to /rig/t/ against the outer guest's /dev/kvm and reports each one's
# exit status ("RIG: unit NAME exit N"). Leak checking is off: the suites free what they can, and
# LeakSanitizer's ptrace-based scan does not work in this minimal init.
. /rig/env
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
if [ ! -c /dev/kvm ]; then
    echo "RIG: no /dev/kvm"
    exit 1
fi
echo "RIG: /dev/kvm ok"
mkdir -p /tmp
cd /tmp || exit 1
rc=0
for t in /rig/t/*; do
    ASAN_OPTIONS=detect_leaks=0 "$t"
    r=$?
    echo "RIG: unit $(basename "$t") exit $r"
    [ $r -eq 0 ] || rc=1
done
echo "RIG: vmctl exit $rc"
exit $rc
