# snapshot_fill: guest script for bench/snapshot.sh. Fills N MiB (kernel command line vmd.fill=N)
# of RAM with non-zero data in a tmpfs file, so a snapshot has that much to save, then idles.
# One 64 KiB block is made with a few writes, then copied (cat: large reads and writes).
fill=$(sed -n 's/.*vmd\.fill=\([0-9]*\).*/\1/p' /proc/cmdline)
fill=${fill:-64}
mkdir -p /fill && mount -t tmpfs -o size=2000m tmpfs /fill
s=0123456789abcdef
for _ in 1 2 3 4 5 6 7 8 9 10 11 12; do s=$s$s; done   # 64 KiB
printf '%s' "$s" > /fill/b64k
for _ in $(seq 16); do cat /fill/b64k; done > /fill/b1m
for _ in $(seq "$fill"); do cat /fill/b1m; done > /fill/data
rm -f /fill/b64k /fill/b1m
echo "VMD-GUEST: filled $fill MiB"
while :; do sleep 1; done
