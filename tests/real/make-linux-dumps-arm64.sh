#!/bin/bash
# make-linux-dumps-arm64.sh — boot Debian 12's own arm64 kernel under qemu-system-aarch64
# (TCG, -M virt) with the same busybox initramfs /init as the amd64 boots, and take
# crash dumps with QEMU's dump-guest-memory. Written by software kvmxx did not write, for
# kvmxx's aarch64 tests. See tests/real/README.md ("arm64").
#
# The arm64 kernel and busybox are downloaded with `apt-get download` (multiarch arm64
# enabled once with `dpkg --add-architecture arm64`) and unpacked with dpkg-deb -x into
# OUTDIR/pkgs; nothing arm64 is installed on the host.
#
# usage: make-linux-dumps-arm64.sh [options] OUTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: make-linux-dumps-arm64.sh [options] OUTDIR

Boots: nokaslr (-cpu cortex-a57, nokaslr), kaslr (-cpu max, KASLR as Debian ships it).

options:
  --only LIST          comma-separated boots to make (default: all)
  --force              rebuild the selected boots even if the cache is valid
  --boot-timeout SEC   wait at most SEC for the guest's READY line (300)
  -h, --help           this text
EOF
}

die() {
    echo "make-linux-dumps-arm64: error: $*" >&2
    exit 1
}
note() { echo "make-linux-dumps-arm64: $*" >&2; }

HERE=${BASH_SOURCE[0]%/*}
[[ $HERE != "${BASH_SOURCE[0]}" ]] || HERE=.
HERE=$(cd "$HERE" && pwd)
PY=/usr/bin/python3
ALL_BOOTS=(nokaslr kaslr)

OUTDIR=
ONLY=
FORCE=0
BOOT_TIMEOUT=300
while (($#)); do
    case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    --boot-timeout) BOOT_TIMEOUT=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ -z $OUTDIR ]] || die "more than one OUTDIR given"; OUTDIR=$1; shift ;;
    esac
done
[[ -n $OUTDIR ]] || { usage >&2; die "OUTDIR missing"; }

declare -A WANT=()
if [[ -n $ONLY ]]; then
    IFS=, read -ra _list <<<"$ONLY"
    for b in "${_list[@]}"; do
        case $b in nokaslr | kaslr) WANT[$b]=1 ;; *) die "unknown boot '$b' (known: ${ALL_BOOTS[*]})" ;; esac
    done
else
    for b in "${ALL_BOOTS[@]}"; do WANT[$b]=1; done
fi
BOOTS=()
for b in "${ALL_BOOTS[@]}"; do [[ -z ${WANT[$b]:-} ]] || BOOTS+=("$b"); done

[[ -d $OUTDIR ]] || mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
MANIFEST=$OUTDIR/manifest.txt
PKGDIR=$OUTDIR/pkgs
exec 9>"$OUTDIR/.lock"
flock 9 || die "cannot lock $OUTDIR/.lock"

# --------------------------------------------------------------------------
# Host packages and the arm64 packages (downloaded once; a cache hit spawns few
# processes and touches no network)
# --------------------------------------------------------------------------
HOST_PKGS=(qemu-system-arm cpio python3)
declare -A PV=()
read_versions() {
    local p st v
    PV=()
    while read -r p st v; do
        [[ $st != ii ]] || PV[$p]=$v
    done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}${Version}\n' "${HOST_PKGS[@]}" 2>/dev/null || true)
}
read_versions
missing=()
for p in "${HOST_PKGS[@]}"; do [[ -n ${PV[$p]:-} ]] || missing+=("$p"); done
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}) and not root to install them"
    note "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    read_versions
    for p in "${HOST_PKGS[@]}"; do [[ -n ${PV[$p]:-} ]] || die "package $p still not installed"; done
fi

find_debs() { # sets KDEB, BDEB to the downloaded .deb files (empty if absent)
    KDEB= BDEB=
    local f
    for f in "$PKGDIR"/linux-image-*-arm64_*_arm64.deb; do [[ ! -f $f ]] || KDEB=$f; done
    for f in "$PKGDIR"/busybox-static_*_arm64.deb; do [[ ! -f $f ]] || BDEB=$f; done
}
mkdir -p "$PKGDIR"
find_debs
if [[ -z $KDEB || -z $BDEB ]]; then
    ((EUID == 0)) || die "the arm64 packages are not in $PKGDIR and not root to download them"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        note "enabling the arm64 architecture for apt (dpkg --add-architecture arm64)"
        dpkg --add-architecture arm64
        apt-get update -q >&2 || note "apt-get update reported errors (continuing if arm64 lists are there)"
    fi
    # The kernel the linux-image-arm64 metapackage points at.
    kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*-arm64\).*/\1/p' | head -n1)
    if [[ -z $kpkg ]]; then
        apt-get update -q >&2 || true
        kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*-arm64\).*/\1/p' | head -n1)
    fi
    [[ -n $kpkg ]] || die "apt knows no linux-image-arm64:arm64 (is the arm64 architecture enabled?)"
    note "downloading $kpkg:arm64 and busybox-static:arm64 into $PKGDIR"
    rm -f "$PKGDIR"/*.deb
    # apt's _apt user must be able to write there
    chmod 0777 "$PKGDIR"
    (cd "$PKGDIR" && apt-get download -q "$kpkg:arm64" busybox-static:arm64 >&2) ||
        die "apt-get download $kpkg:arm64 busybox-static:arm64 failed"
    chmod 0755 "$PKGDIR"
    find_debs
    [[ -n $KDEB && -n $BDEB ]] || die "the downloaded packages are not in $PKGDIR"
    rm -rf "$PKGDIR/root"
fi
KDEB_NAME=${KDEB##*/}
BDEB_NAME=${BDEB##*/}
# linux-image-6.1.0-50-arm64_6.1.176-1_arm64.deb -> 6.1.0-50-arm64, 6.1.176-1
KVER=${KDEB_NAME#linux-image-}; KVER=${KVER%%_*}
KPKG_VER=${KDEB_NAME#*_}; KPKG_VER=${KPKG_VER%_arm64.deb}
BB_VER=${BDEB_NAME#*_}; BB_VER=${BB_VER%_arm64.deb}; BB_VER=${BB_VER//%3a/:}
KPKG_VER=${KPKG_VER//%3a/:}

hash_inputs=("$HERE/make-linux-dumps-arm64.sh" "$HERE/init.sh" "$HERE/qmp.py")
{ read -r h_sh _; read -r h_init _; read -r h_qmp _; } < <(sha256sum "${hash_inputs[@]}")
read -r COMMON_KEY _ < <({
    echo "kvmxx-linux-dumps-arm64 1"
    echo "scripts $h_sh $h_init $h_qmp"
    echo "kernel $KDEB_NAME"
    echo "busybox $BDEB_NAME"
    for p in "${HOST_PKGS[@]}"; do echo "$p ${PV[$p]}"; done
} | sha256sum)

# Old manifest: per boot its key and whether its files are intact.
declare -A OLD_COMMON=() OLD_LINES=() OLD_OK=()
if [[ -f $MANIFEST ]]; then
    while read -r tag b rest; do
        case $tag in
        boot) read -r c _ <<<"$rest"; OLD_COMMON[$b]=$c; OLD_OK[$b]=1; OLD_LINES[$b]+="boot $b $rest"$'\n' ;;
        file)
            OLD_LINES[$b]+="file $b $rest"$'\n'
            read -r _fmt path size _sha <<<"$rest"
            if [[ ! -f $OUTDIR/$path ]] || [[ $(stat -c %s "$OUTDIR/$path") != "$size" ]]; then OLD_OK[$b]=0; fi
            ;;
        esac
    done <"$MANIFEST"
fi
TODO=()
for b in "${BOOTS[@]}"; do
    if ((FORCE)) || [[ ${OLD_OK[$b]:-0} != 1 || ${OLD_COMMON[$b]:-} != "$COMMON_KEY" ]]; then TODO+=("$b"); fi
done
if ((${#TODO[@]} == 0)); then
    note "cache hit: ${BOOTS[*]} up to date in $OUTDIR (key ${COMMON_KEY:0:16})"
    exit 0
fi

# --------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------
T_START=$(date +%s.%N)
elapsed() { awk -v a="$(date +%s.%N)" -v b="${1:-$T_START}" 'BEGIN { printf "%.2f", a - b }'; }

XROOT=$PKGDIR/root
if [[ ! -d $XROOT/boot ]]; then
    rm -rf "$XROOT"
    mkdir -p "$XROOT"
    dpkg-deb -x "$KDEB" "$XROOT" || die "dpkg-deb -x $KDEB failed"
    dpkg-deb -x "$BDEB" "$XROOT" || die "dpkg-deb -x $BDEB failed"
    # Only the kernel image, its config, busybox and qemu_fw_cfg.ko are used: drop the
    # other modules (about 320 MB).
    find "$XROOT/lib/modules" -type f ! -name 'qemu_fw_cfg.ko*' -delete
fi
VMLINUZ=$XROOT/boot/vmlinuz-$KVER
[[ -r $VMLINUZ ]] || die "$VMLINUZ missing after unpacking $KDEB_NAME"
BUSYBOX=$XROOT/bin/busybox
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing after unpacking $BDEB_NAME"
FWCFG=$(find "$XROOT/lib/modules/$KVER" -name 'qemu_fw_cfg.ko*' -print -quit)
[[ -n $FWCFG ]] || die "qemu_fw_cfg module not found under $XROOT/lib/modules/$KVER"
# QEMU 7.2 boots an arm64 Image directly; Debian's arm64 vmlinuz has been one (check it,
# and decompress a gzip one should a later package compress it).
KERNEL=$VMLINUZ
if [[ $(od -A n -t x1 -N 2 "$VMLINUZ" | tr -d ' ') == 1f8b ]]; then
    KERNEL=$XROOT/boot/Image-$KVER
    [[ -s $KERNEL ]] || gzip -dc "$VMLINUZ" >"$KERNEL" || die "cannot decompress $VMLINUZ"
fi

TMP=$(mktemp -d /tmp/kvmxx-linux-dumps-arm64.XXXXXX)
QPID=
cleanup() {
    if [[ -n $QPID ]] && kill -0 "$QPID" 2>/dev/null; then
        kill "$QPID" 2>/dev/null || true
        wait "$QPID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

QEMU=$(command -v qemu-system-aarch64) || die "qemu-system-aarch64 not found"
QEMU_VERSION=$("$QEMU" --version | head -n1 | sed 's/^QEMU emulator version //')

declare -A LINES=()
for b in "${ALL_BOOTS[@]}"; do
    [[ -n ${OLD_LINES[$b]:-} ]] || continue
    if [[ ${OLD_COMMON[$b]:-} == "$COMMON_KEY" && ${OLD_OK[$b]:-0} == 1 ]]; then
        LINES[$b]=${OLD_LINES[$b]}
    elif [[ -z ${WANT[$b]:-} ]]; then
        note "removing stale boot $b (made from other inputs)"
        rm -rf "${OUTDIR:?}/$b"
    fi
done
for b in "${TODO[@]}"; do unset "LINES[$b]"; done

write_manifest() {
    local b
    {
        echo "# kvmxx real Linux arm64 dumps, written by tests/real/make-linux-dumps-arm64.sh"
        echo "# format: see tests/real/README.md; paths are relative to this file's directory"
        echo "manifest 1"
        echo "key $COMMON_KEY"
        echo "kernel_version $KVER"
        echo "kernel_package linux-image-$KVER $KPKG_VER"
        echo "kernel_image pkgs/root/boot/vmlinuz-$KVER"
        echo "kernel_config pkgs/root/boot/config-$KVER"
        echo "qemu_version $QEMU_VERSION"
        echo "qemu_package ${PV[qemu-system-arm]}"
        echo "busybox_package $BB_VER"
        for b in "${ALL_BOOTS[@]}"; do
            [[ -z ${LINES[$b]:-} ]] || printf '%s' "${LINES[$b]}"
        done
    } >"$MANIFEST.tmp"
    mv -f "$MANIFEST.tmp" "$MANIFEST"
}
write_manifest

need=$((${#TODO[@]} * 300))
avail=$(df -Pm "$OUTDIR" | awk 'NR == 2 {print $4}')
((avail >= need)) || die "need about $need MB free in $OUTDIR, have $avail MB"

# --- initramfs (the amd64 boots' /init, arm64 busybox and qemu_fw_cfg.ko) ----------
INITRD=$TMP/initramfs.cpio.gz
root=$TMP/root
mkdir -p "$root/bin" "$root/dev"
cp "$BUSYBOX" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$HERE/init.sh" "$root/init"
chmod 755 "$root/init"
case $FWCFG in
*.ko) cp "$FWCFG" "$root/qemu_fw_cfg.ko" ;;
*.ko.xz) xz -dc "$FWCFG" >"$root/qemu_fw_cfg.ko" ;;
*.ko.zst) zstd -dc "$FWCFG" >"$root/qemu_fw_cfg.ko" ;;
*) die "unknown module compression: $FWCFG" ;;
esac
mknod "$root/dev/console" c 5 1 2>/dev/null || true
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$INITRD" ||
    die "building $INITRD failed"
note "kernel $KVER ($KPKG_VER), busybox $BB_VER, QEMU $QEMU_VERSION; boots to make: ${TODO[*]}"

fail_boot() { # dir message
    local dir=$1
    shift
    echo "make-linux-dumps-arm64: error: $*" >&2
    if [[ -f $dir/serial.log ]]; then
        echo "---- last 30 lines of $dir/serial.log ----" >&2
        tail -n 30 "$dir/serial.log" | tr -d '\r' >&2
    fi
    [[ ! -s $TMP/qemu.stderr ]] || { echo "---- QEMU stderr ----" >&2; tail -n 30 "$TMP/qemu.stderr" >&2; }
    exit 1
}

format_name() {
    case $1 in
    elf) echo qemu-elf ;;
    kdump-zlib.flat) echo qemu-kdump-zlib-flat ;;
    serial.log) echo serial-log ;;
    registers.txt) echo qemu-registers ;;
    qmp.json) echo qmp-json ;;
    facts.txt) echo facts ;;
    kallsyms.txt) echo kallsyms ;;
    *) echo other ;;
    esac
}

for B in "${TODO[@]}"; do
    T_BOOT=$(date +%s.%N)
    DIR=$OUTDIR/$B
    rm -rf "${OUTDIR:?}/$B"
    mkdir -p "$DIR"
    cmdline="console=ttyAMA0 rdinit=/init panic=-1"
    case $B in
    nokaslr) cmdline+=" nokaslr"; cpu=cortex-a57 ;;
    kaslr) cpu=max,pauth-impdef=on ;;  # impdef: QEMU's fast PAC hash instead of QARMA
    esac
    sock=$TMP/qmp-$B.sock
    rm -f "$sock"
    note "[$B] booting: -cpu $cpu -append '$cmdline'"
    # timeout bounds a hung guest even if this script is killed without its trap
    timeout $((BOOT_TIMEOUT + 120)) "$QEMU" -M virt -accel tcg,thread=multi -cpu "$cpu" -m 256M -smp 2 \
        -nodefaults -no-reboot \
        -kernel "$KERNEL" -initrd "$INITRD" -append "$cmdline" \
        -display none -serial "file:$DIR/serial.log" \
        -qmp "unix:$sock,server=on,wait=off" \
        -device vmcoreinfo </dev/null >"$TMP/qemu.stderr" 2>&1 &
    QPID=$!
    deadline=$((SECONDS + BOOT_TIMEOUT))
    while ! grep -q 'KVMXX-LAB: READY' "$DIR/serial.log" 2>/dev/null; do
        kill -0 "$QPID" 2>/dev/null || fail_boot "$DIR" "QEMU exited before the READY line"
        ((SECONDS < deadline)) || fail_boot "$DIR" "no READY line within $BOOT_TIMEOUT s"
        sleep 1
    done
    note "[$B] READY after $(elapsed "$T_BOOT") s"
    # QEMU 7.2 for aarch64 offers elf and kdump-zlib (qmp.json lists what it offered);
    # qmp.py skips, with a warning, any format not offered.
    "$PY" "$HERE/qmp.py" dump "$sock" "$DIR" elf:elf kdump-zlib.flat:kdump-zlib kdump-lzo.flat:kdump-lzo \
        kdump-snappy.flat:kdump-snappy || fail_boot "$DIR" "taking the dumps over QMP failed"
    for ((i = 0; i < 60; i++)); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.5; done
    kill "$QPID" 2>/dev/null || true
    wait "$QPID" 2>/dev/null || true
    QPID=
    "$PY" "$HERE/qmp.py" facts "$DIR/serial.log" "$DIR" --boot "$B" --arch arm64 \
        --kv "kernel_version=$KVER" --kv "qemu_cpu=$cpu" --kv "dump_vmcoreinfo_device=1" ||
        fail_boot "$DIR" "parsing the guest's lines failed"
    if [[ $B == nokaslr ]] && ! grep -qx 'kerneloffset 0x0' "$DIR/facts.txt"; then
        die "[$B] KERNELOFFSET is not 0 despite nokaslr"
    fi
    chmod 0644 "$DIR"/*
    lines="boot $B $COMMON_KEY"$'\n'
    while read -r sha path; do
        name=${path#"$DIR/"}
        lines+="file $B $(format_name "$name") $B/$name $(stat -c %s "$path") $sha"$'\n'
    done < <(find "$DIR" -maxdepth 1 -type f -print0 | sort -z | xargs -0 sha256sum)
    LINES[$B]=$lines
    write_manifest
    note "[$B] done in $(elapsed "$T_BOOT") s: $(du -sh "$DIR" | cut -f1)"
done

note "all done in $(elapsed) s; manifest: $MANIFEST"
