# snapshot_fill: guest script for bench/snapshot.sh. Fills FILL_MIB MiB (from the kernel command
# line, vmd.fill=N) of RAM with non-zero data in a tmpfs file, so a snapshot has that much to
# save, then reports and idles.
fill=$(sed -n 's/.*vmd\.fill=\([0-9]*\).*/\1/p' /proc/cmdline)
mkdir -p /fill && mount -t tmpfs -o size=2000m tmpfs /fill
yes 0123456789abcdef | head -c "${fill:-64}m" > /fill/data
echo "VMD-GUEST: filled ${fill:-64} MiB"
while :; do sleep 1; done
