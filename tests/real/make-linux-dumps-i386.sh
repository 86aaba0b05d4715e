#!/bin/bash
# make-linux-dumps-i386.sh — boot Debian 12's own i386 kernels (686 = 2-level paging,
# 686-pae = PAE) under qemu-system-i386 (TCG) with the busybox initramfs of
# tests/real/init.sh, and take crash dumps with QEMU's dump-guest-memory. The kernel and
# busybox packages are downloaded with `apt-get download` and unpacked with `dpkg-deb -x`
# into OUTDIR/.debs, never installed. See tests/real/README-i386.md.
#
# usage: make-linux-dumps-i386.sh [--only LIST] [--force] [--boot-timeout SEC] OUTDIR
set -euo pipefail

die() {
    echo "make-linux-dumps-i386: error: $*" >&2
    exit 1
}
note() { echo "make-linux-dumps-i386: $*" >&2; }

HERE=${BASH_SOURCE[0]%/*}
[[ $HERE != "${BASH_SOURCE[0]}" ]] || HERE=.
HERE=$(cd "$HERE" && pwd)
PY=/usr/bin/python3
ALL_BOOTS=(pae nopae pae-novmcoreinfo nopae-novmcoreinfo)

OUTDIR='' ONLY='' FORCE=0 BOOT_TIMEOUT=240
while (($#)); do
    case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --force) FORCE=1; shift ;;
    --boot-timeout) BOOT_TIMEOUT=${2:?}; shift 2 ;;
    -h | --help)
        echo "usage: make-linux-dumps-i386.sh [--only LIST] [--force] [--boot-timeout SEC] OUTDIR"
        echo "boots: ${ALL_BOOTS[*]}"
        exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [[ -z $OUTDIR ]] || die "more than one OUTDIR given"; OUTDIR=$1; shift ;;
    esac
done
[[ -n $OUTDIR ]] || die "OUTDIR missing (usage: make-linux-dumps-i386.sh [options] OUTDIR)"
BOOTS=()
if [[ -n $ONLY ]]; then
    IFS=, read -ra BOOTS <<<"$ONLY"
    for b in "${BOOTS[@]}"; do
        [[ " ${ALL_BOOTS[*]} " == *" $b "* ]] || die "unknown boot '$b' (known: ${ALL_BOOTS[*]})"
    done
else
    BOOTS=("${ALL_BOOTS[@]}")
fi

[[ -d $OUTDIR ]] || mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
MANIFEST=$OUTDIR/manifest.txt
exec 9>"$OUTDIR/.lock"
flock 9 || die "cannot lock $OUTDIR/.lock"

# --------------------------------------------------------------------------
# Host tools (installed like the amd64 generator does) and the i386 packages
# --------------------------------------------------------------------------
HOST_PKGS=(qemu-system-x86 makedumpfile cpio python3)
declare -A PV=()
read_versions() {
    local p st v
    PV=()
    while read -r p st v; do [[ $st != ii ]] || PV[$p]=$v; done < <(dpkg-query -W \
        -f='${Package} ${db:Status-Abbrev}${Version}\n' "${HOST_PKGS[@]}" 2>/dev/null || true)
}
read_versions
missing=()
for p in "${HOST_PKGS[@]}"; do [[ -n ${PV[$p]:-} ]] || missing+=("$p"); done
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}) and not root to install them"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
    read_versions
fi

DEBS=$OUTDIR/.debs
mkdir -p "$DEBS"
# The kernel flavours come from Debian's metapackages linux-image-686{,-pae}:i386, resolved
# once and remembered in $DEBS/resolved (delete it, or --force, to look again).
if ((FORCE)) || [[ ! -s $DEBS/resolved ]]; then
    if ! dpkg --print-foreign-architectures | grep -qx i386; then
        ((EUID == 0)) || die "the i386 architecture is not enabled in dpkg and we are not root"
        dpkg --add-architecture i386
    fi
    if ! apt-cache show busybox-static:i386 >/dev/null 2>&1; then
        # An index that failed to download (mirror sync) only warns; apt-cache says whether it worked.
        apt-get update -q >&2 || true
    fi
    : >"$DEBS/resolved.tmp"
    for flavour in 686-pae 686; do
        pkg=$(apt-cache depends "linux-image-$flavour:i386" 2>/dev/null |
            sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-'"$flavour"'\)\(:i386\)\{0,1\}$/\1/p' | head -n1)
        [[ -n $pkg ]] || die "cannot resolve linux-image-$flavour:i386 to a kernel package (apt-cache depends)"
        ver=$(apt-cache show "$pkg:i386" | sed -n 's/^Version: //p' | head -n1)
        echo "$flavour $pkg $ver" >>"$DEBS/resolved.tmp"
    done
    bbver=$(apt-cache show busybox-static:i386 | sed -n 's/^Version: //p' | head -n1)
    [[ -n $bbver ]] || die "busybox-static:i386 not found (apt-get update after dpkg --add-architecture i386?)"
    echo "busybox busybox-static $bbver" >>"$DEBS/resolved.tmp"
    mv -f "$DEBS/resolved.tmp" "$DEBS/resolved"
fi
declare -A KPKG=() KVER_PKG=() KREL=()
BB_VER=
while read -r what pkg ver; do
    if [[ $what == busybox ]]; then BB_VER=$ver; else KPKG[$what]=$pkg; KVER_PKG[$what]=$ver; KREL[$what]=${pkg#linux-image-}; fi
done <"$DEBS/resolved"

# Unpacks package $1 (version $2) into $DEBS/$1 unless already there.
fetch() {
    local pkg=$1 ver=$2 dir=$DEBS/$1 deb
    [[ -f $dir/.unpacked-$ver ]] && return 0
    rm -rf "$dir" "$DEBS"/"${pkg}"_*.deb
    note "apt-get download $pkg:i386=$ver"
    (cd "$DEBS" && apt-get download -q "$pkg:i386=$ver" >&2) || die "apt-get download $pkg:i386=$ver failed"
    deb=$(ls "$DEBS"/"${pkg}"_*_i386.deb | head -n1)
    mkdir -p "$dir"
    dpkg-deb -x "$deb" "$dir" || die "dpkg-deb -x $deb failed"
    rm -f "$deb"
    # Only the kernel image, its config and System.map placeholder, and qemu_fw_cfg.ko are used.
    [[ ! -d $dir/lib/modules ]] || find "$dir/lib/modules" -type f ! -name 'qemu_fw_cfg.ko*' -delete
    rm -rf "${dir:?}/usr"
    touch "$dir/.unpacked-$ver"
}

# --------------------------------------------------------------------------
# Cache key: scripts, package versions, QEMU
# --------------------------------------------------------------------------
{ read -r h_sh _; read -r h_init _; read -r h_qmp _; } < <(sha256sum "$HERE/make-linux-dumps-i386.sh" "$HERE/init.sh" "$HERE/qmp.py")
read -r KEY _ < <({
    echo "kvmxx-linux-dumps-i386 1"
    echo "scripts $h_sh $h_init $h_qmp"
    for f in 686-pae 686; do echo "kernel ${KPKG[$f]} ${KVER_PKG[$f]}"; done
    echo "busybox $BB_VER"
    for p in "${HOST_PKGS[@]}"; do echo "$p ${PV[$p]}"; done
} | sha256sum)

declare -A OLD_LINES=() OLD_OK=()
if [[ -f $MANIFEST ]] && grep -qx "key $KEY" "$MANIFEST"; then
    old_paths=() old_sizes=() old_boots=()
    while read -r tag b rest; do
        case $tag in
        boot) OLD_OK[$b]=1; OLD_LINES[$b]+="boot $b $rest"$'\n' ;;
        file | convert)
            OLD_LINES[$b]+="$tag $b $rest"$'\n'
            if [[ $tag == file ]]; then
                read -r _fmt path size _sha <<<"$rest"
                if [[ -f $OUTDIR/$path ]]; then
                    old_paths+=("$OUTDIR/$path"); old_sizes+=("$size"); old_boots+=("$b")
                else
                    OLD_OK[$b]=0
                fi
            fi ;;
        esac
    done <"$MANIFEST"
    if ((${#old_paths[@]})); then  # one stat for all files: a cache hit must stay cheap
        i=0
        while read -r size; do
            [[ $size == "${old_sizes[i]}" ]] || OLD_OK[${old_boots[i]}]=0
            i=$((i + 1))
        done < <(stat -c %s "${old_paths[@]}")
    fi
fi
TODO=()
for b in "${BOOTS[@]}"; do
    if ((FORCE)) || [[ ${OLD_OK[$b]:-0} != 1 ]]; then TODO+=("$b"); fi
done
if ((${#TODO[@]} == 0)); then
    note "cache hit: ${BOOTS[*]} up to date in $OUTDIR (key ${KEY:0:16})"
    exit 0
fi

T_START=$(date +%s.%N)
elapsed() { awk -v a="$(date +%s.%N)" -v b="${1:-$T_START}" 'BEGIN { printf "%.2f", a - b }'; }
TMP=$(mktemp -d /tmp/kvmxx-linux-dumps-i386.XXXXXX)
QPID=
cleanup() {
    if [[ -n $QPID ]] && kill -0 "$QPID" 2>/dev/null; then kill "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for f in 686-pae 686; do fetch "${KPKG[$f]}" "${KVER_PKG[$f]}"; done
fetch busybox-static "$BB_VER"

QEMU=$(command -v qemu-system-i386) || die "qemu-system-i386 not found (package qemu-system-x86)"
MDF=$(command -v makedumpfile) || die "makedumpfile not found"
QEMU_VERSION=$("$QEMU" --version | head -n1 | sed 's/^QEMU emulator version //')
MDF_VERSION=$("$MDF" -v 2>&1 | sed -n 's/^makedumpfile: version \([^ ]*\).*/\1/p' | head -n1)

declare -A LINES=()
for b in "${ALL_BOOTS[@]}"; do
    if [[ ${OLD_OK[$b]:-0} == 1 && " ${TODO[*]} " != *" $b "* ]]; then LINES[$b]=${OLD_LINES[$b]}; else rm -rf "${OUTDIR:?}/$b"; fi
done
write_manifest() {
    local b f
    {
        echo "# kvmxx real i386 Linux dumps, written by tests/real/make-linux-dumps-i386.sh"
        echo "# format: see tests/real/README-i386.md; paths are relative to this file's directory"
        echo "manifest 1"
        echo "key $KEY"
        for f in 686-pae 686; do
            echo "kernel_package_$f ${KPKG[$f]} ${KVER_PKG[$f]}"
            echo "kernel_image_$f .debs/${KPKG[$f]}/boot/vmlinuz-${KREL[$f]}"
            echo "kernel_config_$f .debs/${KPKG[$f]}/boot/config-${KREL[$f]}"
        done
        echo "qemu_version $QEMU_VERSION"
        echo "qemu_package ${PV[qemu-system-x86]}"
        echo "makedumpfile_version $MDF_VERSION"
        echo "busybox_package busybox-static:i386 $BB_VER"
        for b in "${ALL_BOOTS[@]}"; do [[ -z ${LINES[$b]:-} ]] || printf '%s' "${LINES[$b]}"; done
    } >"$MANIFEST.tmp"
    mv -f "$MANIFEST.tmp" "$MANIFEST"
}
write_manifest

avail=$(df -Pm "$OUTDIR" | awk 'NR == 2 {print $4}')
((avail >= 350 * ${#TODO[@]})) || die "need about $((350 * ${#TODO[@]})) MB free in $OUTDIR, have $avail MB"

build_initramfs() { # out flavour
    local out=$1 flavour=$2 root fw
    root=$(mktemp -d "$TMP/root.XXXXXX")
    mkdir -p "$root/bin" "$root/dev"
    cp "$DEBS/busybox-static/bin/busybox" "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    cp "$HERE/init.sh" "$root/init"
    chmod 755 "$root/init"
    fw=$(find "$DEBS/${KPKG[$flavour]}/lib/modules" -name 'qemu_fw_cfg.ko*' -print -quit)
    case $fw in
    *.ko) cp "$fw" "$root/qemu_fw_cfg.ko" ;;
    *.ko.xz) xz -dc "$fw" >"$root/qemu_fw_cfg.ko" ;;
    *) die "qemu_fw_cfg.ko not found in ${KPKG[$flavour]}" ;;
    esac
    mknod "$root/dev/console" c 5 1 2>/dev/null || true
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out" || die "building $out failed"
}

fail_boot() {
    echo "make-linux-dumps-i386: error: $2" >&2
    [[ ! -f $1/serial.log ]] || { echo "---- last 30 lines of $1/serial.log ----" >&2; tail -n 30 "$1/serial.log" | tr -d '\r' >&2; }
    [[ ! -s $TMP/qemu.stderr ]] || { echo "---- QEMU stderr ----" >&2; tail -n 30 "$TMP/qemu.stderr" >&2; }
    exit 1
}
wait_line() { # dir file pattern timeout what
    local deadline=$((SECONDS + $4))
    while ! grep -qa "$3" "$2" 2>/dev/null; do
        kill -0 "$QPID" 2>/dev/null || fail_boot "$1" "QEMU exited before $5"
        ((SECONDS < deadline)) || fail_boot "$1" "no $5 within $4 s"
        sleep 0.5
    done
}
wait_qemu_exit() {
    local i
    for ((i = 0; i < 60; i++)); do kill -0 "$QPID" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$QPID" 2>/dev/null && { note "QEMU did not quit; killing pid $QPID"; kill "$QPID" 2>/dev/null || true; }
    wait "$QPID" 2>/dev/null || true
    QPID=
}

for B in "${TODO[@]}"; do
    T_BOOT=$(date +%s.%N)
    DIR=$OUTDIR/$B
    rm -rf "${OUTDIR:?}/$B"
    mkdir -p "$DIR"
    case $B in pae*) flavour=686-pae ;; *) flavour=686 ;; esac
    cmdline="console=ttyS0 rdinit=/init panic=-1 kvmxx_kallsyms_dev=ttyS1"
    vmci=(-device vmcoreinfo)
    dumps=(elf:elf elf-paging:elf:paging kdump-zlib.flat:kdump-zlib)
    case $B in
    *-novmcoreinfo) cmdline+=" nokaslr"; vmci=(); dumps=(elf:elf) ;;
    esac
    initrd=$TMP/initramfs-$flavour.cpio.gz
    [[ -f $initrd ]] || build_initramfs "$initrd" "$flavour"
    kernel=$DEBS/${KPKG[$flavour]}/boot/vmlinuz-${KREL[$flavour]}
    sock=$TMP/qmp-$B.sock
    note "[$B] booting ${KREL[$flavour]}: ${vmci[*]} -append '$cmdline'"
    # -cpu max: PAE and NX for the 686-pae kernel (the 686 kernel ignores them).
    "$QEMU" -accel tcg,thread=multi -cpu max -m 256M -smp 2 -machine pc -nodefaults -no-reboot \
        -kernel "$kernel" -initrd "$initrd" -append "$cmdline" -display none \
        -serial "file:$DIR/serial.log" -serial "file:$DIR/kallsyms-full.raw" \
        -qmp "unix:$sock,server=on,wait=off" "${vmci[@]}" </dev/null >"$TMP/qemu.stderr" 2>&1 &
    QPID=$!
    wait_line "$DIR" "$DIR/serial.log" 'KVMXX-LAB: READY' "$BOOT_TIMEOUT" "READY line"
    note "[$B] READY after $(elapsed "$T_BOOT") s"
    "$PY" "$HERE/qmp.py" dump "$sock" "$DIR" "${dumps[@]}" || fail_boot "$DIR" "taking the dumps over QMP failed"
    wait_qemu_exit

    "$PY" "$HERE/qmp.py" facts "$DIR/serial.log" "$DIR" --boot "$B" --kv "kernel_version=${KREL[$flavour]}" \
        --kv "kernel_package=${KPKG[$flavour]} ${KVER_PKG[$flavour]}" --kv "qemu_cpu=max" \
        --kv "dump_vmcoreinfo_device=$((${#vmci[@]} ? 1 : 0))" || fail_boot "$DIR" "parsing the guest's lines failed"
    tr -d '\r' <"$DIR/kallsyms-full.raw" >"$DIR/kallsyms-full.tmp"
    rm -f "$DIR/kallsyms-full.raw"
    grep -qx KVMXX-KALLSYMS-END "$DIR/kallsyms-full.tmp" || die "[$B] the guest's /proc/kallsyms copy is incomplete"
    grep -vx KVMXX-KALLSYMS-END "$DIR/kallsyms-full.tmp" >"$DIR/kallsyms-full.txt"
    rm -f "$DIR/kallsyms-full.tmp"
    n=$(wc -l <"$DIR/kallsyms-full.txt")
    grep -qx "kallsyms_count $n" "$DIR/facts.txt" || die "[$B] kallsyms-full.txt has $n lines, the guest counted $(grep kallsyms_count "$DIR/facts.txt")"
    grep -q '^vmcoreinfo_line CONFIG_X86_PAE=y$' "$DIR/facts.txt" && pae=1 || pae=0
    [[ $pae == "$([[ $flavour == 686-pae ]] && echo 1 || echo 0)" ]] || die "[$B] CONFIG_X86_PAE in VMCOREINFO does not match $flavour"
    echo "pae $pae" >>"$DIR/facts.txt"

    # makedumpfile: reassembling QEMU's flattened kdump file is architecture-independent;
    # --dump-dmesg on it needs makedumpfile to support the dump's architecture (Debian's
    # amd64 build is x86_64-only: the log shows what it said; a failure is recorded, not fatal).
    CONVERT_LINES=
    if [[ -f $DIR/kdump-zlib.flat ]]; then
        for step in "kdump-zlib.kdump -R kdump-zlib.kdump" "dmesg.txt --dump-dmesg kdump-zlib.kdump dmesg.txt"; do
            read -r out args <<<"$step"
            t0=$(date +%s.%N)
            echo "## makedumpfile $args" >>"$DIR/makedumpfile.log"
            set +e
            if [[ $out == kdump-zlib.kdump ]]; then
                (cd "$DIR" && "$MDF" $args <kdump-zlib.flat) >>"$DIR/makedumpfile.log" 2>&1
            else
                (cd "$DIR" && "$MDF" $args) >>"$DIR/makedumpfile.log" 2>&1
            fi
            rc=$?
            set -e
            echo "## exit status $rc" >>"$DIR/makedumpfile.log"
            CONVERT_LINES+="convert $B $out $rc $(elapsed "$t0")"$'\n'
            ((rc == 0)) || rm -f "$DIR/$out"
            note "[$B] makedumpfile $args: exit status $rc"
        done
    fi

    chmod 0644 "$DIR"/*
    lines="boot $B $KEY"$'\n'
    while read -r sha path; do
        name=${path#"$DIR/"}
        lines+="file $B $name $B/$name $(stat -c %s "$path") $sha"$'\n'
    done < <(find "$DIR" -maxdepth 1 -type f -print0 | sort -z | xargs -0 sha256sum)
    LINES[$B]=$lines$CONVERT_LINES
    write_manifest
    note "[$B] done in $(elapsed "$T_BOOT") s: $(du -sh "$DIR" | cut -f1)"
done
note "all done in $(elapsed) s; manifest: $MANIFEST"
