#!/bin/bash
# fetch-system-map.sh — put the real System.map of the kernel the real Linux dumps were
# made from (tests/real/make-linux-dumps.sh; its manifest names the kernel) into OUTDIR,
# and print its path. Debian's /boot/System.map-<version> is a one-line placeholder; the
# real one is in the linux-image-<version>-dbg package, which is large (about 860 MB), so
# only that one file is extracted and the package is not installed. Cached: nothing is
# fetched when OUTDIR already holds the file. The kallsyms real-dump test reads it through
# KVMXX_SYSTEM_MAP (tests/unit/os/kallsyms_real_test.cpp) and skips, saying so, without it.
#
# usage: fetch-system-map.sh DUMPS_DIR [OUTDIR]   (OUTDIR: /var/tmp/kvmxx-system-map)
set -euo pipefail
die() {
    echo "fetch-system-map: error: $*" >&2
    exit 1
}
dumps=${1:?usage: fetch-system-map.sh DUMPS_DIR [OUTDIR]}
out=${2:-/var/tmp/kvmxx-system-map}
[[ -f $dumps/manifest.txt ]] || die "$dumps/manifest.txt is missing"
ver=$(awk '$1 == "kernel_version" { print $2; exit }' "$dumps/manifest.txt")
pkgver=$(awk '$1 == "kernel_package" { print $3; exit }' "$dumps/manifest.txt")
[[ -n $ver && -n $pkgver ]] || die "$dumps/manifest.txt names no kernel_version / kernel_package"
map=$out/System.map-$ver-$pkgver
if [[ -s $map ]]; then
    echo "$map"
    exit 0
fi
mkdir -p "$out"
tmp=$(mktemp -d "$out/.fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
pkg=linux-image-$ver-dbg
if ! (cd "$tmp" && apt-get download -q "$pkg=$pkgver") >&2; then
    apt-get update -q >&2 || die "apt-get update failed"
    (cd "$tmp" && apt-get download -q "$pkg=$pkgver") >&2 || die "apt-get download $pkg=$pkgver failed"
fi
deb=$(find "$tmp" -maxdepth 1 -name '*.deb' -print -quit)
[[ -n $deb ]] || die "apt-get download left no .deb"
member=./usr/lib/debug/boot/System.map-$ver
# tar stops after the first match; dpkg-deb then dies of SIGPIPE, which is expected.
dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | tar -x -C "$tmp" --occurrence=1 "$member" || true
[[ -s $tmp/$member ]] || die "$pkg $pkgver has no $member"
mv "$tmp/$member" "$map.part"
mv "$map.part" "$map"
echo "$map"
