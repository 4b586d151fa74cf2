# Guest side of test_emu_compat32 (under the 64-bit kernel: compatibility mode) and
# test_emu_boot32 (under Debian's 32-bit kernel): init and this shell are i386 busybox. Shows that
# the process is 32-bit and what the kernel is, then runs compute.sh's checks.
echo "GUEST32: elf class $(od -An -tu1 -j4 -N1 /bin/busybox | tr -d ' ')"
echo "GUEST32: stack $(awk '/\[stack\]/ { split($1, a, "-"); print length(a[2]) <= 8 ? "below-4G" : "above-4G" }' /proc/self/maps)"
echo "GUEST32: kernel $(uname -m)"
. /compute.sh
