#!/bin/sh
# /init of the kvmxx test guest (busybox ash). Built into the initramfs by
# tests/real/make-linux-dumps.sh; see tests/real/README.md.
#
# Every line the host needs starts with "KVMXX-LAB: " so the host can pick it
# out of the serial log. Output of the optional live test binary
# (/kvmxx-live-test) is prefixed "KVMXX-LIVE: ".

P="KVMXX-LAB:"
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /tmp
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

echo 0 > /proc/sys/kernel/kptr_restrict
echo 0 > /proc/sys/kernel/printk_ratelimit
echo "$P init-start"

# qemu_fw_cfg publishes the VMCOREINFO location to QEMU (-device vmcoreinfo).
if insmod /qemu_fw_cfg.ko; then
    echo "$P fw_cfg loaded"
else
    echo "$P fw_cfg FAILED"
fi

# Keep kernel messages off the console from here on so they cannot split our
# lines (they stay in the kernel log, which is part of every dump).
echo "1 4 1 7" > /proc/sys/kernel/printk

echo "$P vmcoreinfo $(cat /sys/kernel/vmcoreinfo 2>/dev/null || echo none)"
echo "$P cmdline $(cat /proc/cmdline)"
echo "$P banner $(cat /proc/version)"
echo "$P osrelease $(uname -r)"
echo "$P memtotal_kb $(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
echo "$P cpus $(grep -c '^processor' /proc/cpuinfo)"
if grep -q '^flags.* la57' /proc/cpuinfo; then
    echo "$P la57 1"
else
    echo "$P la57 0"
fi

SYMS="linux_banner init_uts_ns _text _stext _etext _end swapper_pg_dir init_top_pgt \
page_offset_base vmemmap_base vmalloc_base phys_base init_task jiffies_64 mem_section \
vmcoreinfo_data vmcoreinfo_note kallsyms_names prb init_mm"
echo "$P kallsyms_wanted $SYMS"
awk -v want="$SYMS" -v p="$P" '
    BEGIN { n = split(want, a, " "); for (i = 1; i <= n; i++) w[a[i]] = 1 }
    { c++ }
    NF == 3 && ($3 in w) { print p " kallsyms " $0 }
    END { print p " kallsyms_count " c }' /proc/kallsyms

# Optional (make-linux-dumps-i386.sh): the whole /proc/kallsyms to a second serial port,
# named by kvmxx_kallsyms_dev=ttyS1 on the kernel command line (the kernel passes unknown
# NAME=VALUE parameters to /init as environment variables).
if [ -n "${kvmxx_kallsyms_dev:-}" ] && [ -c "/dev/$kvmxx_kallsyms_dev" ]; then
    { cat /proc/kallsyms; echo "KVMXX-KALLSYMS-END"; } > "/dev/$kvmxx_kallsyms_dev"
    echo "$P kallsyms_full $kvmxx_kallsyms_dev"
fi

grep -E 'System RAM|Kernel (code|rodata|data|bss)' /proc/iomem | while read -r l; do
    echo "$P iomem $l"
done

# /proc/kcore: its program headers (hex) and the VMCOREINFO text in its notes.
# They give the host the direct-map base and phys_base as the kernel sees them.
# A 32-bit kernel (i386) writes an ELF32 /proc/kcore (e_ident[EI_CLASS] = 1):
# other offsets and sizes; the host parser tells the classes apart the same way.
if [ -r /proc/kcore ]; then
    if [ "$(od -A n -t u1 -j 4 -N 1 /proc/kcore | tr -d ' ')" = 1 ]; then
        w=4 phsz=32 phoff_at=28 phnum_at=44 off_at=4 fsz_at=16
    else
        w=8 phsz=56 phoff_at=32 phnum_at=56 off_at=8 fsz_at=32
    fi
    phoff=$(od -A n -t u$w -j $phoff_at -N $w /proc/kcore | tr -d ' ')
    phnum=$(od -A n -t u2 -j $phnum_at -N 2 /proc/kcore | tr -d ' ')
    od -A n -v -t x1 -N $((phoff + phsz * phnum)) /proc/kcore | while read -r l; do
        echo "$P kcore_hdr $l"
    done
    i=0
    while [ "$i" -lt "$phnum" ]; do
        ph=$((phoff + phsz * i))
        if [ "$(od -A n -t u4 -j "$ph" -N 4 /proc/kcore | tr -d ' ')" = 4 ]; then
            noff=$(od -A n -t u$w -j $((ph + off_at)) -N $w /proc/kcore | tr -d ' ')
            nsz=$(od -A n -t u$w -j $((ph + fsz_at)) -N $w /proc/kcore | tr -d ' ')
            dd if=/proc/kcore iflag=skip_bytes,count_bytes bs=4096 skip="$noff" count="$nsz" 2>/dev/null |
                strings -n 3 | grep -E '^[A-Z][A-Z0-9_-]*(\([^)]*\))?=' | while read -r l; do
                    echo "$P vmcoreinfo_line $l"
                done
            break
        fi
        i=$((i + 1))
    done
fi

# Markers.
hostname KVMXX-MARKER-HOSTNAME
echo "$P hostname $(hostname)"

dots=$(printf '%4080s' '' | tr ' ' '.')
i=0
while [ "$i" -lt 1024 ]; do
    printf 'KVMXX-PAGE-%04d\n%s' "$i" "$dots"
    i=$((i + 1))
done > /kvmxx-marker-pages
echo "$P marker_file /kvmxx-marker-pages"
echo "$P marker_size $(wc -c < /kvmxx-marker-pages)"
echo "$P marker_pages $(($(wc -c < /kvmxx-marker-pages) / 4096))"
echo "$P marker_md5 $(md5sum /kvmxx-marker-pages | cut -d' ' -f1)"

# A process that holds the marker string in a shell variable (built by
# concatenation so the whole string exists only in that process's memory).
cat > /kvmxx-marker-process <<'EOF'
#!/bin/sh
M=KVMXX-MARKER-PROCESS-
M="${M}0123456789abcdef"
while :; do sleep 3600; done
EOF
chmod 755 /kvmxx-marker-process
/kvmxx-marker-process < /dev/null > /dev/null 2>&1 &
mpid=$!
sleep 1
echo "$P process_pid $mpid"
echo "$P process_comm $(cat /proc/$mpid/comm)"

sync
echo "$P READY"

if [ -x /kvmxx-live-test ]; then
    echo "$P live-start"
    ( /kvmxx-live-test 2>&1; echo $? > /tmp/kvmxx-live-rc ) | while IFS= read -r l; do
        echo "KVMXX-LIVE: $l"
    done
    echo "$P live_rc $(cat /tmp/kvmxx-live-rc)"
    echo "$P LIVE-DONE"
fi

while :; do sleep 3600; done
