# What tests/guest/compute.sh prints, computed on the host (test_emu_boot, test_emu_compat32).
import hashlib
x, block = 20261121, []
for _ in range(8192):
    x = (x * 69069 + 1) % 2147483648
    block.append("%08x\n" % x)
block = "".join(block)
data = "".join("block %d\n%s" % (i, block) for i in range(64)).encode()
s = 0
for i in range(20000):
    s = (s * 31 + i * i) % 1000003
c_div = lambda a, b: -(-a // b) if (a < 0) != (b < 0) else a // b  # C/shell division truncates
print("GUEST: arith %d %d %d %d" % ((123456789 * 987654321) % 1000000007, (1 << 62) // 3, c_div(-7, 2),
                                    0x7fffffff ^ 0x12345678))
print("GUEST: loop %d" % s)
print("GUEST: bytes %d" % len(data))
print("GUEST: sha256 %s" % hashlib.sha256(data).hexdigest())
