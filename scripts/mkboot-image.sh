#!/bin/bash
# mkboot-image: build a small partitioned raw disk image that boots through the BIOS with a real
# boot loader from Debian packages, without mounting anything (no loop devices, no root needed):
# an MBR partition table with one bootable FAT32 partition holding the kernel, the initramfs and
# the loader's configuration, written with mtools.
#
# usage: scripts/mkboot-image.sh syslinux|grub OUT.img --kernel FILE --initrd FILE [--cmdline "..."] [--size-mib N]
#
#   syslinux  SYSLINUX (Debian syslinux + syslinux-common): its MBR code, `syslinux --install`
#             onto the FAT partition through mtools, syslinux.cfg
#   grub      GRUB i386-pc (Debian grub-pc-bin): boot.img in the MBR, core.img (grub-mkimage with
#             biosdisk, part_msdos, fat and the prefix on the partition) in the gap after the MBR,
#             grub.cfg
# Both print to the serial console (COM1, 115200) as well as the screen, boot the kernel with
# --cmdline (default "console=ttyS0") and time out after 1 s. Packages: see scripts/deps.sh.
set -euo pipefail

usage() { sed -n '7p' "$0" | sed 's/^# *//' >&2; exit 2; }
die() { echo "mkboot-image: $*" >&2; exit 1; }

[ $# -ge 2 ] || usage
loader=$1 out=$2
shift 2
kernel="" initrd="" cmdline="console=ttyS0" size_mib=64
while [ $# -gt 0 ]; do
    case $1 in
        --kernel) kernel=${2:?}; shift 2 ;;
        --initrd) initrd=${2:?}; shift 2 ;;
        --cmdline) cmdline=${2?}; shift 2 ;;
        --size-mib) size_mib=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
[ -r "$kernel" ] || die "--kernel: cannot read '$kernel'"
[ -r "$initrd" ] || die "--initrd: cannot read '$initrd'"
case $loader in syslinux|grub) ;; *) usage ;; esac
for t in sfdisk mkfs.fat mcopy mmd; do command -v "$t" > /dev/null || die "$t not found (scripts/deps.sh installs it)"; done

part_start=2048 # sectors: 1 MiB, leaving room for GRUB's core.img after the MBR
total=$((size_mib * 2048))
part_sectors=$((total - part_start))
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the FAT32 partition, built as its own file, then placed in the disk image
fat=$tmp/part.img
truncate -s $((part_sectors * 512)) "$fat"
mkfs.fat -F 32 -n VMDBOOT -h $part_start "$fat" > /dev/null
export MTOOLS_SKIP_CHECK=1
mcopy -i "$fat" "$kernel" ::/vmlinuz
mcopy -i "$fat" "$initrd" ::/initrd.img

rm -f "$out"
truncate -s $((total * 512)) "$out"
echo "start=$part_start, size=$part_sectors, type=c, bootable" | sfdisk -q --label dos "$out"

case $loader in
syslinux)
    command -v syslinux > /dev/null || die "syslinux not found (Debian package syslinux)"
    mbr=/usr/lib/syslinux/mbr/mbr.bin
    [ -r $mbr ] || die "$mbr not found (Debian package syslinux-common)"
    cat > "$tmp/syslinux.cfg" <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 10
LABEL linux
  KERNEL /vmlinuz
  INITRD /initrd.img
  APPEND $cmdline
EOF
    mcopy -i "$fat" "$tmp/syslinux.cfg" ::/syslinux.cfg
    syslinux --install "$fat"
    # the MBR's boot code (440 bytes), keeping the partition table
    dd if=$mbr of="$out" bs=440 count=1 conv=notrunc status=none
    ;;
grub)
    command -v grub-mkimage > /dev/null || die "grub-mkimage not found (Debian package grub-pc-bin)"
    gdir=/usr/lib/grub/i386-pc
    [ -r $gdir/boot.img ] || die "$gdir/boot.img not found (Debian package grub-pc-bin)"
    cat > "$tmp/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set default=0
menuentry "linux" {
    linux /vmlinuz $cmdline
    initrd /initrd.img
}
EOF
    mmd -i "$fat" ::/boot ::/boot/grub
    mcopy -i "$fat" "$tmp/grub.cfg" ::/boot/grub/grub.cfg
    grub-mkimage -O i386-pc -o "$tmp/core.img" -p '(hd0,msdos1)/boot/grub' \
        biosdisk part_msdos fat normal linux serial terminal echo test configfile
    core_sectors=$(( ($(stat -c %s "$tmp/core.img") + 511) / 512 ))
    [ $core_sectors -lt $part_start ] || die "core.img ($core_sectors sectors) does not fit before the partition"
    # boot.img: its code, keeping the partition table; it loads core.img from sector 1 (its default)
    dd if=$gdir/boot.img of="$out" bs=440 count=1 conv=notrunc status=none
    dd if="$tmp/core.img" of="$out" bs=512 seek=1 conv=notrunc status=none
    ;;
esac
dd if="$fat" of="$out" bs=512 seek=$part_start conv=notrunc status=none
echo "mkboot-image: $out ($loader, ${size_mib} MiB)"
