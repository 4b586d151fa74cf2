# Guest side of test_emu_boot: compute values the host checks independently. Exercises the CPU's integer
# arithmetic (shell), a long interpreted loop (ash), awk's floating point, memory copies and SHA-256.
read up _ < /proc/uptime
echo "GUEST: userspace at ${up}s"
echo "GUEST: kernel $(uname -r) $(uname -m)"
echo "GUEST: arith $(( (123456789 * 987654321) % 1000000007 )) $(( (1 << 62) / 3 )) $(( -7 / 2 )) $(( 0x7fffffff ^ 0x12345678 ))"
i=0 s=0
while [ $i -lt 20000 ]; do
    s=$(( (s * 31 + i * i) % 1000003 ))
    i=$((i + 1))
done
echo "GUEST: loop $s"
# 8192 words of a linear congruential generator, 73728 bytes (modulo 2^31: exact in doubles, and
# busybox awk prints %x through a C int)...
awk 'BEGIN { x = 20261121; for (i = 0; i < 8192; i++) { x = (x * 69069 + 1) % 2147483648; printf "%08x\n", x } }' > /tmp/block
# ...repeated 64 times with a header per block: 4.5 MiB.
i=0
while [ $i -lt 64 ]; do
    echo "block $i"
    cat /tmp/block
    i=$((i + 1))
done > /tmp/data
echo "GUEST: bytes $(wc -c < /tmp/data)"
set -- $(sha256sum /tmp/data)
echo "GUEST: sha256 $1"
read up _ < /proc/uptime
echo "GUEST: done at ${up}s"
