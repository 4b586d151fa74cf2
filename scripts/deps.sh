#!/bin/sh
# Install the Debian packages vmd's build, tests and demo need. Idempotent: apt runs only if something is missing.
set -eu
PKGS="build-essential pkg-config libuv1-dev libjansson-dev libvncserver-dev libslirp-dev libglib2.0-dev
libssl-dev zlib1g-dev libmicrohttpd-dev libseccomp-dev libcmocka-dev console-setup-linux cpio busybox-static openssl qemu-system-x86 qemu-utils clang llvm libclang-rt-14-dev
python3 python3-prometheus-client curl procps iproute2 bridge-utils acpica-tools systemd
seabios syslinux syslinux-common mtools dosfstools grub-pc-bin fdisk
libisofs-dev genisoimage"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
