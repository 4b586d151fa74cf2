#!/bin/bash
# fetch-guest-assets: the guest kernels, kernel modules and busybox that the demo, the integration
# tests and the nested KVM rig boot, taken from Debian packages with `apt-get download` and unpacked
# (dpkg-deb -x) into .cache/guest/ (git-ignored). Stable paths afterwards:
#   .cache/guest/vmlinuz          linux-image-<abi>-cloud-amd64 kernel (the guest kernel)
#   .cache/guest/modules-cloud/   its lib/modules/<ver> tree (virtio drivers are modules), with modules.dep
#   .cache/guest/vmlinuz-amd64    linux-image-<abi>-amd64 kernel (the nested rig's outer kernel)
#   .cache/guest/modules-amd64/   the KVM modules of that package (kvm, kvm-amd, kvm-intel, ccp,
#                                 irqbypass and what they depend on), with modules.dep
#   .cache/guest/busybox          busybox from busybox-static
#   .cache/guest/VERSIONS         which packages these came from
# Idempotent and quiet: when the cache is complete it does nothing (so it works offline).
# FORCE=1 refetches.
#
# `fetch-guest-assets.sh i386` fetches only the 32-bit guests' files: .cache/guest/busybox-i386
# (busybox-static:i386: a 32-bit userland, under the 64-bit kernel or the 32-bit one) and
# .cache/guest/vmlinuz-686-pae (Debian's i386 kernel, linux-image-686-pae). apt-get reads i386
# package lists of its own (under .cache/guest/apt-i386), so the host's dpkg architectures are
# left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
G=.cache/guest
# One fetch at a time: integration tests run in parallel and each makes sure of the assets (and
# apt-get refuses a second update of the same lists); the others wait, then find the cache complete.
mkdir -p $G
exec 9> $G/.lock
flock 9

fetch_i386() {
    [ "${FORCE:-0}" != 1 ] && [ -x $G/busybox-i386 ] && [ -s $G/vmlinuz-686-pae ] && return 0
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
        { echo "fetch-guest-assets: needs apt-get and dpkg-deb" >&2; return 1; }
    local lists=$G/apt-i386 w opts
    mkdir -p $lists/partial
    opts=(-q=2 -o APT::Architectures::=i386 -o APT::Architecture=i386 -o "Dir::State::Lists=$(pwd)/$lists")
    [ "$(id -u)" -eq 0 ] && opts+=(-o APT::Sandbox::User=root)
    w=$(mktemp -d "${TMPDIR:-/tmp}/vmd-i386.XXXXXX")
    # the kernel package the metapackage names, then both .debs
    kpkg() { apt-cache "${opts[@]}" depends linux-image-686-pae 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-686-pae$/ { print $2; exit }'; }
    get() { local k; k=$(kpkg) && [ -n "$k" ] && (cd "$w" && apt-get "${opts[@]}" download busybox-static:i386 "$k:i386"); }
    if ! { ls $lists/*_Packages* >/dev/null 2>&1 && get; }; then
        echo "fetch-guest-assets: apt-get update (i386 lists)"
        apt-get "${opts[@]}" update && get ||
            { rm -rf "$w"; echo "fetch-guest-assets: busybox-static:i386 / linux-image-686-pae download failed" >&2; return 1; }
    fi
    dpkg-deb -x "$w"/busybox-static_*_i386.deb "$w/bb"
    dpkg-deb --fsys-tarfile "$w"/linux-image-*_i386.deb | tar -x -C "$w" --wildcards './boot/vmlinuz-*'
    mkdir -p $G
    cp "$w/bb/bin/busybox" $G/busybox-i386.tmp && mv $G/busybox-i386.tmp $G/busybox-i386
    cp "$w"/boot/vmlinuz-* $G/vmlinuz-686-pae.tmp && mv $G/vmlinuz-686-pae.tmp $G/vmlinuz-686-pae
    echo "fetch-guest-assets: busybox-static:i386 $(dpkg-deb -f "$w"/busybox-static_*_i386.deb Version) -> $G/busybox-i386"
    echo "fetch-guest-assets: $(dpkg-deb -f "$w"/linux-image-*_i386.deb Package) $(dpkg-deb -f "$w"/linux-image-*_i386.deb Version) -> $G/vmlinuz-686-pae"
    rm -rf "$w"
}
if [ "${1:-}" = i386 ]; then
    fetch_i386
    exit
fi
VERSIONS=$G/VERSIONS
# Modules the nested rig loads into the outer kernel; their dependencies are added automatically.
RIG_MODULES="irqbypass kvm ccp kvm-amd kvm-intel"

complete() {
    [ -s $VERSIONS ] && [ -s $G/vmlinuz ] && [ -s $G/vmlinuz-amd64 ] && [ -x $G/busybox ] &&
        [ -f $G/modules-cloud/modules.dep ] && [ -f $G/modules-amd64/modules.dep ]
}

if [ "${FORCE:-0}" != 1 ] && complete; then
    exit 0
fi

die() { echo "fetch-guest-assets: $*" >&2; exit 1; }
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    die "needs apt-get and dpkg-deb (a Debian or Ubuntu host); cannot fetch the guest kernel"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
apt_update() {
    echo "fetch-guest-assets: apt-get update"
    $SUDO apt-get update -qq || echo "fetch-guest-assets: apt-get update failed (offline?)" >&2
}
# The package lists: refresh when missing or older than a week (old lists name .debs the mirror dropped).
lists=$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mtime -7 2>/dev/null | head -1)
[ -n "$lists" ] || apt_update

# The newest cloud kernel ABI of the running suite: the unversioned metapackage depends on it.
cloud_pkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-cloud-amd64$/ { print $2; exit }'; }
cloud=$(cloud_pkg)
if [ -z "$cloud" ]; then
    apt_update
    cloud=$(cloud_pkg)
fi
[ -n "$cloud" ] || die "apt-cache knows no linux-image-cloud-amd64 (check /etc/apt/sources.list)"
abi=${cloud#linux-image-}
abi=${abi%-cloud-amd64}
amd64=linux-image-$abi-amd64
pkgs="$cloud $amd64 busybox-static"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmd-guest.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt's _apt sandbox user cannot write to a root-owned private temp dir; downloading as root is fine here.
apt_opts=(-q=2)
[ "$(id -u)" -eq 0 ] && apt_opts+=(-o APT::Sandbox::User=root)
download() { (cd "$work" && apt-get "${apt_opts[@]}" download $pkgs); }
if ! download; then
    apt_update
    download || die "apt-get download $pkgs failed"
fi

for deb in "$work"/*.deb; do
    name=$(basename "$deb")
    dpkg-deb -x "$deb" "$work/${name%%_*}"
done

# modules.dep for a lib/modules/<ver> tree: depmod's when available, otherwise derived from each
# module's own "depends=" modinfo field (direct dependencies only; mkinitramfs resolves the order).
make_modules_dep() { # DIR (a lib/modules/<ver> tree)
    local dir=$1 ko rel name deps
    if command -v depmod >/dev/null || [ -x /sbin/depmod ]; then
        local base ver
        ver=$(basename "$dir")
        base=$(mktemp -d "$work/depmod.XXXXXX")
        mkdir -p "$base/lib/modules"
        ln -s "$(cd "$dir" && pwd)" "$base/lib/modules/$ver"
        PATH=$PATH:/sbin depmod -b "$base" "$ver" && return 0
    fi
    declare -A path_of=()
    while IFS= read -r rel; do
        name=${rel##*/}; name=${name%%.ko*}; name=${name//-/_}
        path_of[$name]=$rel
    done < <(cd "$dir" && find kernel -name '*.ko*' | sort)
    # One grep over the uncompressed modules; compressed ones are read one by one.
    declare -A deps_of=()
    local f
    while IFS= read -r line; do
        f=${line%%:depends=*}; name=${f##*/}; name=${name%%.ko*}; name=${name//-/_}
        [ -n "${deps_of[$name]+x}" ] || deps_of[$name]=${line#*:depends=}
    done < <(cd "$dir" && find kernel -name '*.ko' -print0 | sort -z |
             xargs -0 -r grep -a -o -H 'depends=[A-Za-z0-9_,-]*' || true)
    for name in "${!path_of[@]}"; do
        rel=${path_of[$name]}
        case $rel in
            *.ko.xz) deps_of[$name]=$(xz -dc "$dir/$rel" | grep -a -o -m1 'depends=[A-Za-z0-9_,-]*' | head -1) ;;
            *.ko.zst) deps_of[$name]=$(zstd -dcq "$dir/$rel" | grep -a -o -m1 'depends=[A-Za-z0-9_,-]*' | head -1) ;;
            *.ko.gz) deps_of[$name]=$(gzip -dc "$dir/$rel" | grep -a -o -m1 'depends=[A-Za-z0-9_,-]*' | head -1) ;;
            *) continue ;;
        esac
        deps_of[$name]=${deps_of[$name]#depends=}
    done
    for name in $(printf '%s\n' "${!path_of[@]}" | sort); do
        deps=${deps_of[$name]:-}
        line="${path_of[$name]}:"
        for d in ${deps//,/ }; do
            d=${d//-/_}
            [ -n "${path_of[$d]:-}" ] && line="$line ${path_of[$d]}"
        done
        echo "$line"
    done > "$dir/modules.dep"
}

# The amd64 package's modules are 400 MB; keep only what the nested rig loads (and their dependencies).
prune_to() { # DIR MODULE...
    local dir=$1; shift
    declare -A keep=()
    local todo=("$@") m line rel
    while [ ${#todo[@]} -gt 0 ]; do
        m=${todo[0]//-/_}; todo=("${todo[@]:1}")
        [ -n "${keep[$m]:-}" ] && continue
        line=$(awk -v m="$m" -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*/, "", n); gsub(/-/, "_", n);
                                    if (n == m) { print; exit } }' "$dir/modules.dep")
        [ -n "$line" ] || continue
        keep[$m]=${line%%:*}
        for rel in ${line#*:}; do
            rel=$(basename "$rel"); todo+=("${rel%%.ko*}")
        done
    done
    local keep_list=$work/keep.txt
    printf '%s\n' "${keep[@]}" | sort > "$keep_list"
    (cd "$dir" && find kernel -name '*.ko*' | sort | comm -23 - "$keep_list" | xargs -r rm -f)
    find "$dir/kernel" -type d -empty -delete
    awk -F: 'NR == FNR { k[$1] = 1; next } k[$1]' "$keep_list" "$dir/modules.dep" > "$dir/modules.dep.new"
    mv "$dir/modules.dep.new" "$dir/modules.dep"
}

mkdir -p $G
rm -rf $G/modules-cloud $G/modules-amd64 $G/vmlinuz $G/vmlinuz-amd64 $G/busybox $VERSIONS

cloud_ver=$(ls "$work/$cloud/lib/modules")
cp "$work/$cloud/boot/vmlinuz-$cloud_ver" $G/vmlinuz
mv "$work/$cloud/lib/modules/$cloud_ver" $G/modules-cloud
make_modules_dep $G/modules-cloud

amd64_ver=$(ls "$work/$amd64/lib/modules")
cp "$work/$amd64/boot/vmlinuz-$amd64_ver" $G/vmlinuz-amd64
mv "$work/$amd64/lib/modules/$amd64_ver" $G/modules-amd64
make_modules_dep $G/modules-amd64
prune_to $G/modules-amd64 $RIG_MODULES
# depmod's auxiliary indexes describe the full tree; only modules.dep is used, drop the rest.
rm -f $G/modules-amd64/modules.*.bin $G/modules-amd64/modules.{alias,symbols,softdep,devname,order,builtin*}

cp "$work/busybox-static/bin/busybox" $G/busybox

{
    for deb in "$work"/*.deb; do
        echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)"
    done
    echo "cloud-kernel $cloud_ver"
    echo "amd64-kernel $amd64_ver"
} > $VERSIONS.tmp
mv $VERSIONS.tmp $VERSIONS

echo "fetch-guest-assets: fetched into $G:"
sed 's/^/  /' $VERSIONS
echo "  modules-amd64: $(cd $G/modules-amd64 && find kernel -name '*.ko*' -exec basename {} \; | sort | paste -sd' ')"
