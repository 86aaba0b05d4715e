#!/bin/bash
# make-linux-dumps.sh — boot Debian's own kernel under QEMU (TCG) with a tiny
# busybox initramfs, take crash dumps with QEMU's dump-guest-memory and convert
# them with makedumpfile. The outputs are written by software kvmxx did not
# write, for kvmxx's tests. See tests/real/README.md (outputs, manifest format,
# timings, caching) and shared/specs/real-linux-dumps.md (the recipe).
#
# usage: make-linux-dumps.sh [options] OUTDIR
set -euo pipefail

usage() {
    cat <<'EOF'
usage: make-linux-dumps.sh [options] OUTDIR

Boots: nokaslr, kaslr, novmcoreinfo, la57 (and live, with --live-binary).

options:
  --only LIST          comma-separated boots to make (default: all)
  --force              rebuild the selected boots even if the cache is valid
  --keep-fixed         keep the elf-fixed copies (makedumpfile's input)
  --live-binary PATH   static binary run in the guest of the 'live' boot as
                       /kvmxx-live-test; its output goes to OUTDIR/live/live.log
  --boot-timeout SEC   wait at most SEC for the guest's READY line (180)
  --live-timeout SEC   wait at most SEC for the live test to finish (300)
  -h, --help           this text
EOF
}

die() {
    echo "make-linux-dumps: error: $*" >&2
    exit 1
}
note() { echo "make-linux-dumps: $*" >&2; }

HERE=${BASH_SOURCE[0]%/*}
[[ $HERE != "${BASH_SOURCE[0]}" ]] || HERE=.
HERE=$(cd "$HERE" && pwd)
PY=/usr/bin/python3
ALL_BOOTS=(nokaslr kaslr novmcoreinfo la57 live)

OUTDIR=
ONLY=
FORCE=0
KEEP_FIXED=0
LIVE_BIN=
BOOT_TIMEOUT=180
LIVE_TIMEOUT=300
while (($#)); do
    case $1 in
    --only) ONLY=${2:?--only needs a list}; shift 2 ;;
    --only=*) ONLY=${1#*=}; shift ;;
    --force) FORCE=1; shift ;;
    --keep-fixed) KEEP_FIXED=1; shift ;;
    --live-binary) LIVE_BIN=${2:?--live-binary needs a path}; shift 2 ;;
    --live-binary=*) LIVE_BIN=${1#*=}; shift ;;
    --boot-timeout) BOOT_TIMEOUT=${2:?}; shift 2 ;;
    --live-timeout) LIVE_TIMEOUT=${2:?}; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; die "unknown option $1" ;;
    *) [[ -z $OUTDIR ]] || die "more than one OUTDIR given"; OUTDIR=$1; shift ;;
    esac
done
[[ -n $OUTDIR ]] || { usage >&2; die "OUTDIR missing"; }

if [[ -n $LIVE_BIN ]]; then
    [[ -f $LIVE_BIN ]] || die "--live-binary $LIVE_BIN: no such file"
    LIVE_BIN=$(cd "$(dirname "$LIVE_BIN")" && pwd)/$(basename "$LIVE_BIN")
fi

# Boots requested, in canonical order.
declare -A WANT=()
if [[ -n $ONLY ]]; then
    IFS=, read -ra _list <<<"$ONLY"
    for b in "${_list[@]}"; do
        case $b in
        nokaslr | kaslr | novmcoreinfo | la57) WANT[$b]=1 ;;
        live) [[ -n $LIVE_BIN ]] || die "boot 'live' needs --live-binary"; WANT[$b]=1 ;;
        *) die "unknown boot '$b' (known: ${ALL_BOOTS[*]})" ;;
        esac
    done
else
    for b in nokaslr kaslr novmcoreinfo la57; do WANT[$b]=1; done
    [[ -z $LIVE_BIN ]] || WANT[live]=1
fi
BOOTS=()
for b in "${ALL_BOOTS[@]}"; do [[ -z ${WANT[$b]:-} ]] || BOOTS+=("$b"); done

# --------------------------------------------------------------------------
# Packages (this part and the cache check avoid spawning processes: a cache
# hit must cost well under a second)
# --------------------------------------------------------------------------
PKGS=(qemu-system-x86 busybox-static makedumpfile cpio python3)

newest_kernel() { # sets KVER: newest /boot/vmlinuz-<ver> that has /lib/modules/<ver>
    local v vs=()
    KVER=
    for v in /boot/vmlinuz-*; do
        v=${v#/boot/vmlinuz-}
        [[ $v == '*' || ! -d /lib/modules/$v ]] || vs+=("$v")
    done
    case ${#vs[@]} in
    0) ;;
    1) KVER=${vs[0]} ;;
    *) KVER=$(printf '%s\n' "${vs[@]}" | sort -V | tail -n1) ;;
    esac
}

declare -A PV=()
read_versions() { # fills PV[package]=version for the installed ones
    local p st v
    PV=()
    while read -r p st v; do
        [[ $st != ii ]] || PV[$p]=$v
    done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}${Version}\n' \
        "${PKGS[@]}" ${KVER:+"linux-image-$KVER"} 2>/dev/null || true)
}

newest_kernel
read_versions
missing=()
for p in "${PKGS[@]}"; do [[ -n ${PV[$p]:-} ]] || missing+=("$p"); done
[[ -x $PY ]] || missing+=(python3)
[[ -n $KVER ]] || missing+=(linux-image-amd64)
if ((${#missing[@]})); then
    ((EUID == 0)) || die "missing packages (${missing[*]}) and not root to install them"
    note "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
    newest_kernel
    [[ -n $KVER ]] || die "no /boot/vmlinuz-<ver> with /lib/modules/<ver> after installing linux-image-amd64"
    read_versions
    for p in "${PKGS[@]}"; do [[ -n ${PV[$p]:-} ]] || die "package $p still not installed"; done
fi
VMLINUZ=/boot/vmlinuz-$KVER
[[ -r $VMLINUZ ]] || die "$VMLINUZ is not readable"
FWCFG=
for f in "/lib/modules/$KVER/kernel/drivers/firmware/qemu_fw_cfg".ko{,.xz,.zst,.gz}; do
    [[ ! -f $f ]] || { FWCFG=$f; break; }
done
[[ -n $FWCFG ]] || FWCFG=$(find "/lib/modules/$KVER" -name 'qemu_fw_cfg.ko*' -print -quit)
[[ -n $FWCFG ]] || die "qemu_fw_cfg module not found under /lib/modules/$KVER"
KPKG=linux-image-$KVER
KPKG_VER=${PV[$KPKG]:-unknown}

# --------------------------------------------------------------------------
# Cache keys. COMMON_KEY covers everything that goes into every boot; a boot's
# VARIANT adds what only that boot depends on.
# --------------------------------------------------------------------------
LIVE_SHA=none
hash_inputs=("$HERE/make-linux-dumps.sh" "$HERE/init.sh" "$HERE/qmp.py")
[[ -z $LIVE_BIN ]] || hash_inputs+=("$LIVE_BIN")
{
    read -r h_sh _; read -r h_init _; read -r h_qmp _
    [[ -z $LIVE_BIN ]] || read -r LIVE_SHA _
} < <(sha256sum "${hash_inputs[@]}")
read -r COMMON_KEY _ < <({
    echo "kvmxx-linux-dumps 1"
    echo "scripts $h_sh $h_init $h_qmp"
    echo "kernel $KVER $KPKG_VER"
    stat -c '%n %s %Y' "$VMLINUZ" "$FWCFG"
    for p in "${PKGS[@]}"; do echo "$p ${PV[$p]}"; done
} | sha256sum)

variant() {
    if [[ $1 == live ]]; then echo "live-sha256=$LIVE_SHA"; else echo "keep-fixed=$KEEP_FIXED"; fi
}

[[ -d $OUTDIR ]] || mkdir -p "$OUTDIR" || die "cannot create $OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
MANIFEST=$OUTDIR/manifest.txt
exec 9>"$OUTDIR/.lock"
flock 9 || die "cannot lock $OUTDIR/.lock"

# Old manifest: per boot its key, variant, lines, and whether its files are intact.
declare -A OLD_COMMON=() OLD_VARIANT=() OLD_LINES=() OLD_OK=()
if [[ -f $MANIFEST ]]; then
    old_paths=() old_sizes=() old_boots=()
    while read -r tag b rest; do
        case $tag in
        boot)
            read -r c v _ <<<"$rest"
            OLD_COMMON[$b]=$c; OLD_VARIANT[$b]=$v; OLD_OK[$b]=1
            OLD_LINES[$b]+="boot $b $rest"$'\n'
            ;;
        file | convert)
            OLD_LINES[$b]+="$tag $b $rest"$'\n'
            if [[ $tag == file ]]; then
                read -r _fmt path size _sha <<<"$rest"
                if [[ -f $OUTDIR/$path ]]; then
                    old_paths+=("$OUTDIR/$path"); old_sizes+=("$size"); old_boots+=("$b")
                else
                    OLD_OK[$b]=0
                fi
            fi
            ;;
        esac
    done <"$MANIFEST"
    if ((${#old_paths[@]})); then
        i=0
        while read -r size; do
            [[ $size == "${old_sizes[i]}" ]] || OLD_OK[${old_boots[i]}]=0
            i=$((i + 1))
        done < <(stat -c %s "${old_paths[@]}")
    fi
fi

cached() { # boot -> 0 if its outputs are valid for the current inputs
    [[ ${OLD_OK[$1]:-0} == 1 && ${OLD_COMMON[$1]:-} == "$COMMON_KEY" &&
        ${OLD_VARIANT[$1]:-} == "$(variant "$1")" ]]
}

TODO=()
for b in "${BOOTS[@]}"; do
    if ((FORCE)) || ! cached "$b"; then TODO+=("$b"); fi
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

TMP=$(mktemp -d /tmp/kvmxx-linux-dumps.XXXXXX)
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

QEMU=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 not found"
MDF=$(command -v makedumpfile) || die "makedumpfile not found"
QEMU_VERSION=$("$QEMU" --version | head -n1 | sed 's/^QEMU emulator version //')
MDF_VERSION=$("$MDF" -v 2>&1 | sed -n 's/^makedumpfile: version \([^ ]*\).*/\1/p' | head -n1)

# Boots kept from the old manifest: same common key, files intact, not rebuilt.
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
        echo "# kvmxx real Linux dumps, written by tests/real/make-linux-dumps.sh"
        echo "# format: see tests/real/README.md; paths are relative to this file's directory"
        echo "manifest 1"
        echo "key $COMMON_KEY"
        echo "kernel_version $KVER"
        echo "kernel_package $KPKG $KPKG_VER"
        echo "kernel_image $VMLINUZ"
        echo "qemu_version $QEMU_VERSION"
        echo "qemu_package ${PV[qemu-system-x86]}"
        echo "makedumpfile_version $MDF_VERSION"
        echo "makedumpfile_package ${PV[makedumpfile]}"
        echo "busybox_package ${PV[busybox-static]}"
        for b in "${ALL_BOOTS[@]}"; do
            [[ -z ${LINES[$b]:-} ]] || printf '%s' "${LINES[$b]}"
        done
    } >"$MANIFEST.tmp"
    mv -f "$MANIFEST.tmp" "$MANIFEST"
}
write_manifest # drops the boots about to be rebuilt

# Disk space: about 1.2 GB for nokaslr (with the transient elf-fixed), 0.7 GB others.
need=0
for b in "${TODO[@]}"; do
    case $b in nokaslr) need=$((need + 1200)) ;; live) need=$((need + 5)) ;; *) need=$((need + 700)) ;; esac
    [[ ! -d $OUTDIR/$b ]] || need=$((need - $(du -sm "$OUTDIR/$b" | cut -f1)))
done
avail=$(df -Pm "$OUTDIR" | awk 'NR == 2 {print $4}')
((avail >= need)) || die "need about $need MB free in $OUTDIR, have $avail MB"

# --- initramfs ---------------------------------------------------------------
build_initramfs() { # out [live-binary]
    local out=$1 live=${2:-} root
    root=$(mktemp -d "$TMP/root.XXXXXX")
    mkdir -p "$root/bin" "$root/dev"
    cp /bin/busybox "$root/bin/busybox"
    ln -s busybox "$root/bin/sh"
    cp "$HERE/init.sh" "$root/init"
    chmod 755 "$root/init"
    case $FWCFG in
    *.ko) cp "$FWCFG" "$root/qemu_fw_cfg.ko" ;;
    *.ko.xz) xz -dc "$FWCFG" >"$root/qemu_fw_cfg.ko" ;;
    *.ko.zst) zstd -dc "$FWCFG" >"$root/qemu_fw_cfg.ko" ;;
    *.ko.gz) gzip -dc "$FWCFG" >"$root/qemu_fw_cfg.ko" ;;
    *) die "unknown module compression: $FWCFG" ;;
    esac || die "cannot decompress $FWCFG"
    # The kernel's built-in initramfs has /dev/console too; this is a spare.
    mknod "$root/dev/console" c 5 1 2>/dev/null || true
    if [[ -n $live ]]; then
        cp "$live" "$root/kvmxx-live-test"
        chmod 755 "$root/kvmxx-live-test"
    fi
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out" ||
        die "building $out failed"
}

if [[ -n $LIVE_BIN && -n ${WANT[live]:-} ]]; then
    if LC_ALL=C readelf -l "$LIVE_BIN" 2>/dev/null | grep -q INTERP; then
        die "--live-binary $LIVE_BIN is dynamically linked; the guest has no libc (link it -static)"
    fi
fi
INITRD=$TMP/initramfs.cpio.gz
build_initramfs "$INITRD"
note "kernel $KVER ($KPKG $KPKG_VER), QEMU $QEMU_VERSION, makedumpfile $MDF_VERSION"
note "initramfs $(stat -c %s "$INITRD") bytes; boots to make: ${TODO[*]}"

# --- per boot ----------------------------------------------------------------
format_name() {
    case $1 in
    elf) echo qemu-elf ;;
    elf-paging) echo qemu-elf-paging ;;
    kdump-zlib.flat) echo qemu-kdump-zlib-flat ;;
    kdump-zlib.kdump) echo qemu-kdump-zlib ;;
    elf-fixed) echo qemu-elf-fixed ;;
    mdf-d*-zlib.kdump | mdf-d*-lzo.kdump)
        local s=${1#mdf-d}; s=${s%.kdump}
        echo "mdf-kdump-${s#*-}-d${s%%-*}" ;;
    mdf-d*.elf) local s=${1#mdf-d}; echo "mdf-elf-d${s%.elf}" ;;
    dmesg.txt) echo mdf-dmesg ;;
    serial.log) echo serial-log ;;
    registers.txt) echo qemu-registers ;;
    qmp.json) echo qmp-json ;;
    facts.txt) echo facts ;;
    kallsyms.txt) echo kallsyms ;;
    live.log) echo live-log ;;
    makedumpfile.log) echo makedumpfile-log ;;
    *) echo other ;;
    esac
}

fail_boot() { # dir message
    local dir=$1
    shift
    echo "make-linux-dumps: error: $*" >&2
    if [[ -f $dir/serial.log ]]; then
        echo "---- last 30 lines of $dir/serial.log ----" >&2
        tail -n 30 "$dir/serial.log" | tr -d '\r' >&2
    fi
    if [[ -s $TMP/qemu.stderr ]]; then
        echo "---- QEMU stderr ----" >&2
        tail -n 30 "$TMP/qemu.stderr" >&2
    fi
    echo "make-linux-dumps: error: $*" >&2
    exit 1
}

wait_line() { # dir pattern timeout what
    local dir=$1 pat=$2 t=$3 what=$4 deadline=$((SECONDS + $3))
    while ! grep -q "$pat" "$dir/serial.log" 2>/dev/null; do
        kill -0 "$QPID" 2>/dev/null || fail_boot "$dir" "QEMU exited before $what"
        ((SECONDS < deadline)) || fail_boot "$dir" "no $what within $t s"
        sleep 0.5
    done
}

wait_qemu_exit() {
    local i
    for ((i = 0; i < 60; i++)); do
        kill -0 "$QPID" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$QPID" 2>/dev/null; then
        note "QEMU did not quit; killing pid $QPID"
        kill "$QPID" 2>/dev/null || true
    fi
    wait "$QPID" 2>/dev/null || true
    QPID=
}

CONVERT_LINES=
mdf_run() { # dir output-name seconds... args (stdin from $MDF_STDIN if set)
    local dir=$1 name=$2 rc t0
    shift 2
    t0=$(date +%s.%N)
    echo "## makedumpfile $*${MDF_STDIN:+ < $(basename "$MDF_STDIN")}" >>"$dir/makedumpfile.log"
    set +e
    (cd "$dir" && if [[ -n ${MDF_STDIN:-} ]]; then "$MDF" "$@" <"$MDF_STDIN"; else "$MDF" "$@"; fi) \
        >>"$dir/makedumpfile.log" 2>&1
    rc=$?
    set -e
    echo "## exit status $rc ($(elapsed "$t0") s)" >>"$dir/makedumpfile.log"
    CONVERT_LINES+="convert $B $name $rc $(elapsed "$t0")"$'\n'
    ((rc == 0)) || die "makedumpfile $* failed with exit status $rc; see $dir/makedumpfile.log"
    [[ -s $dir/$name ]] || die "makedumpfile $* wrote no $name"
    note "  makedumpfile $* -> $(stat -c %s "$dir/$name") bytes, $(elapsed "$t0") s"
}

for B in "${TODO[@]}"; do
    T_BOOT=$(date +%s.%N)
    DIR=$OUTDIR/$B
    rm -rf "${OUTDIR:?}/$B"
    mkdir -p "$DIR"
    cmdline="console=ttyS0 rdinit=/init panic=-1"
    cpu=qemu64
    vmci=(-device vmcoreinfo)
    dumps=(elf:elf kdump-zlib.flat:kdump-zlib)
    initrd=$INITRD
    case $B in
    nokaslr) cmdline+=" nokaslr"; dumps=(elf:elf elf-paging:elf:paging kdump-zlib.flat:kdump-zlib) ;;
    kaslr) ;;
    novmcoreinfo) cmdline+=" nokaslr"; vmci=() ;;
    la57) cmdline+=" nokaslr"; cpu=max ;;
    live)
        dumps=()
        initrd=$TMP/initramfs-live.cpio.gz
        build_initramfs "$initrd" "$LIVE_BIN"
        ;;
    esac
    sock=$TMP/qmp-$B.sock
    rm -f "$sock"
    note "[$B] booting: -cpu $cpu ${vmci[*]} -append '$cmdline'"
    "$QEMU" -accel tcg,thread=multi -cpu "$cpu" -m 256M -smp 2 \
        -machine pc -nodefaults -no-reboot \
        -kernel "$VMLINUZ" -initrd "$initrd" -append "$cmdline" \
        -display none -serial "file:$DIR/serial.log" \
        -qmp "unix:$sock,server=on,wait=off" \
        "${vmci[@]}" </dev/null >"$TMP/qemu.stderr" 2>&1 &
    QPID=$!
    wait_line "$DIR" 'KVMXX-LAB: READY' "$BOOT_TIMEOUT" "READY line"
    note "[$B] READY after $(elapsed "$T_BOOT") s"

    if [[ $B == live ]]; then
        wait_line "$DIR" 'KVMXX-LAB: LIVE-DONE' "$LIVE_TIMEOUT" "end of the live test"
        "$PY" "$HERE/qmp.py" quit "$sock" || fail_boot "$DIR" "QMP quit failed"
    else
        "$PY" "$HERE/qmp.py" dump "$sock" "$DIR" "${dumps[@]}" ||
            fail_boot "$DIR" "taking the dumps over QMP failed"
    fi
    wait_qemu_exit

    kv=(--kv "kernel_version=$KVER" --kv "qemu_cpu=$cpu"
        --kv "dump_vmcoreinfo_device=$((${#vmci[@]} ? 1 : 0))")
    live_flag=()
    [[ $B != live ]] || live_flag=(--live)
    "$PY" "$HERE/qmp.py" facts "$DIR/serial.log" "$DIR" --boot "$B" "${kv[@]}" "${live_flag[@]}" ||
        fail_boot "$DIR" "parsing the guest's lines failed"
    case $B in
    nokaslr | novmcoreinfo | la57)
        grep -qx 'kerneloffset 0x0' "$DIR/facts.txt" || die "[$B] KERNELOFFSET is not 0 despite nokaslr" ;;
    esac
    if [[ $B == la57 ]] && ! grep -qx 'pgtable_l5_enabled 1' "$DIR/facts.txt"; then
        die "[la57] the guest kernel did not enable 5-level paging (see $DIR/facts.txt)"
    fi

    # makedumpfile conversions (recipe §7)
    CONVERT_LINES=
    if [[ -f $DIR/kdump-zlib.flat ]]; then
        MDF_STDIN=$DIR/kdump-zlib.flat mdf_run "$DIR" kdump-zlib.kdump -R kdump-zlib.kdump
    fi
    case $B in
    nokaslr) convs=(d31-zlib d31-lzo d0-zlib d0-lzo d1-zlib d31-elf dmesg) ;;
    kaslr) convs=(d31-zlib) ;;
    *) convs=() ;;
    esac
    if ((${#convs[@]})) || ((KEEP_FIXED)) && [[ -f $DIR/elf ]]; then
        t0=$(date +%s.%N)
        "$PY" "$HERE/qmp.py" fix-elf "$DIR/elf" "$DIR/elf-fixed" || die "[$B] fix-elf failed"
        CONVERT_LINES+="convert $B elf-fixed 0 $(elapsed "$t0")"$'\n'
    fi
    for c in "${convs[@]}"; do
        case $c in
        d*-zlib) lvl=${c%-zlib}; mdf_run "$DIR" "mdf-$c.kdump" -c -d "${lvl#d}" elf-fixed "mdf-$c.kdump" ;;
        d*-lzo) lvl=${c%-lzo}; mdf_run "$DIR" "mdf-$c.kdump" -l -d "${lvl#d}" elf-fixed "mdf-$c.kdump" ;;
        d31-elf) mdf_run "$DIR" mdf-d31.elf -E -d 31 elf-fixed mdf-d31.elf ;;
        dmesg) mdf_run "$DIR" dmesg.txt --dump-dmesg elf-fixed dmesg.txt ;;
        esac
    done
    ((KEEP_FIXED)) || rm -f "$DIR/elf-fixed"

    # manifest entries
    chmod 0644 "$DIR"/*
    note "[$B] sha256 of the outputs"
    lines="boot $B $COMMON_KEY $(variant "$B")"$'\n'
    while read -r sha path; do
        name=${path#"$DIR/"}
        lines+="file $B $(format_name "$name") $B/$name $(stat -c %s "$path") $sha"$'\n'
    done < <(cd / && find "$DIR" -maxdepth 1 -type f -print0 | sort -z | xargs -0 sha256sum)
    LINES[$B]=$lines$CONVERT_LINES
    write_manifest
    note "[$B] done in $(elapsed "$T_BOOT") s: $(du -sh "$DIR" | cut -f1)"
done

note "all done in $(elapsed) s; manifest: $MANIFEST"
