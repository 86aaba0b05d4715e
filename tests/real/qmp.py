#!/usr/bin/python3
"""Helpers for tests/real/make-linux-dumps.sh (Python 3 standard library only).

Subcommands:
  dump SOCKET BOOTDIR NAME:FORMAT[:paging] ...
        Talk QMP to a running QEMU: qmp_capabilities,
        query-dump-guest-memory-capability, stop, query-status,
        query-cpus-fast, "info registers -a" (-> BOOTDIR/registers.txt), one
        dump-guest-memory per NAME (-> BOOTDIR/NAME), each confirmed with
        query-dump, then quit. A summary goes to BOOTDIR/qmp.json.
  quit SOCKET
        qmp_capabilities, quit.
  fix-elf IN OUT
        Copy a QEMU ELF dump and move its program headers to offset 64
        (what makedumpfile expects); notes and memory keep their offsets.
  facts SERIAL BOOTDIR --boot NAME [--kv KEY=VALUE ...] [--arch x86_64|arm64]
        Parse the guest's "KVMXX-LAB:" lines of SERIAL into BOOTDIR/facts.txt
        and BOOTDIR/kallsyms.txt; "KVMXX-LIVE:" lines go to BOOTDIR/live.log
        when --live is given.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import sys
import time

LAB = "KVMXX-LAB: "
LIVE = "KVMXX-LIVE: "


def die(msg):
    sys.stderr.write("qmp.py: error: %s\n" % msg)
    sys.exit(1)


# --------------------------------------------------------------------------
# QMP
# --------------------------------------------------------------------------

class QMP:
    def __init__(self, path, timeout=600.0):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                if time.monotonic() > deadline:
                    die("cannot connect to QMP socket %s: %s" % (path, e))
                time.sleep(0.2)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            die("unexpected QMP greeting: %r" % greeting)
        self.greeting = greeting["QMP"]

    def _read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, name, allow_eof=False, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            try:
                r = self._read()
            except EOFError:
                if allow_eof:
                    return {}
                die("QMP connection closed during %s" % name)
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                die("QMP %s failed: %s" % (name, r["error"]))
            return r.get("return")

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def close(self):
        self.sock.close()


def cmd_dump(a):
    bootdir = os.path.abspath(a.bootdir)
    wanted = []
    for spec in a.dumps:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "paging"):
            die("bad dump spec %r (NAME:FORMAT[:paging])" % spec)
        wanted.append((parts[0], parts[1], len(parts) == 3))

    q = QMP(a.socket)
    summary = {"greeting": q.greeting}
    q.cmd("qmp_capabilities")
    cap = q.cmd("query-dump-guest-memory-capability")
    formats = cap.get("formats", [])
    summary["dump_formats"] = formats
    q.cmd("stop")
    summary["status"] = q.cmd("query-status")
    summary["cpus"] = q.cmd("query-cpus-fast")
    regs = q.hmp("info registers -a")
    with open(os.path.join(bootdir, "registers.txt"), "w") as f:
        f.write(regs.replace("\r\n", "\n").replace("\r", "\n"))
    summary["dumps"] = []
    for name, fmt, paging in wanted:
        if fmt not in formats:
            sys.stderr.write("qmp.py: warning: QEMU does not offer format %s; "
                             "skipping %s\n" % (fmt, name))
            summary["dumps"].append({"name": name, "format": fmt, "skipped": True})
            continue
        path = os.path.join(bootdir, name)
        if os.path.exists(path):
            os.unlink(path)
        t0 = time.monotonic()
        q.cmd("dump-guest-memory", paging=paging, protocol="file:" + path,
              format=fmt, detach=False)
        st = q.cmd("query-dump")
        dt = time.monotonic() - t0
        if st.get("status") != "completed":
            die("dump %s: query-dump says %s" % (name, st))
        size = os.path.getsize(path)
        if size == 0:
            die("dump %s is empty" % name)
        sys.stderr.write("qmp.py: %-16s format=%-10s paging=%-5s %6.2f s %12d bytes\n"
                         % (name, fmt, paging, dt, size))
        summary["dumps"].append({"name": name, "format": fmt, "paging": paging,
                                 "seconds": round(dt, 3), "size": size,
                                 "query_dump": st})
    q.cmd("quit", allow_eof=True)
    q.close()
    summary["events"] = [e.get("event") for e in q.events]
    with open(os.path.join(bootdir, "qmp.json"), "w") as f:
        json.dump(summary, f, indent=1, sort_keys=True)
        f.write("\n")


def cmd_quit(a):
    q = QMP(a.socket, timeout=30)
    q.cmd("qmp_capabilities")
    q.cmd("quit", allow_eof=True)
    q.close()


# --------------------------------------------------------------------------
# ELF header rewrite for makedumpfile
# --------------------------------------------------------------------------

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")   # Elf64_Ehdr, 64 bytes
PHDR = struct.Struct("<IIQQQQQQ")           # Elf64_Phdr, 56 bytes
SHDR = struct.Struct("<IIQQQQIIQQ")         # Elf64_Shdr, 64 bytes
PN_XNUM = 0xFFFF


def cmd_fix_elf(a):
    with open(a.src, "rb") as f:
        eh = EHDR.unpack(f.read(EHDR.size))
        (ident, e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags,
         e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx) = eh
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or ident[5] != 1:
            die("%s: not a little-endian ELF64 file" % a.src)
        if e_phentsize != PHDR.size:
            die("%s: e_phentsize %d" % (a.src, e_phentsize))
        phnum = e_phnum
        if phnum == PN_XNUM:
            f.seek(e_shoff)
            phnum = SHDR.unpack(f.read(SHDR.size))[7]   # sh_info of section 0
        f.seek(e_phoff)
        phdrs = f.read(phnum * PHDR.size)
        if len(phdrs) != phnum * PHDR.size:
            die("%s: truncated program headers" % a.src)
    first = min((PHDR.unpack_from(phdrs, i * PHDR.size)[2]
                 for i in range(phnum)
                 if PHDR.unpack_from(phdrs, i * PHDR.size)[5] > 0), default=None)
    if first is None:
        die("%s: no segment with file data" % a.src)
    end = EHDR.size + len(phdrs)
    if end > first or phnum >= PN_XNUM:
        die("%s: %d program headers do not fit between offset 64 and the first "
            "segment at %d" % (a.src, phnum, first))
    if os.path.exists(a.dst):
        os.unlink(a.dst)
    shutil.copyfile(a.src, a.dst)
    os.chmod(a.dst, 0o644)
    new_eh = EHDR.pack(ident, e_type, e_machine, e_version, e_entry,
                       EHDR.size, 0, e_flags, EHDR.size, PHDR.size, phnum, 0, 0, 0)
    with open(a.dst, "r+b") as f:
        f.write(new_eh + phdrs + b"\0" * (first - end))
    sys.stderr.write("qmp.py: fix-elf: %d program headers moved from %d to 64; "
                     "zero-filled to %d\n" % (phnum, e_phoff, first))


# --------------------------------------------------------------------------
# Facts from the serial log
# --------------------------------------------------------------------------

KCORE_TYPES = {1: "PT_LOAD", 4: "PT_NOTE"}


EHDR32 = struct.Struct("<16sHHIIIIIHHHHHH")  # Elf32_Ehdr, 52 bytes
PHDR32 = struct.Struct("<IIIIIIII")          # Elf32_Phdr, 32 bytes


def parse_kcore_hdr(data):
    if data[4] == 1:  # ELFCLASS32: a 32-bit (i386) kernel's /proc/kcore
        eh = EHDR32.unpack_from(data, 0)
        phoff, phnum = eh[5], eh[10]
        out = []
        for i in range(phnum):
            (p_type, _off, vaddr, paddr, filesz, memsz, _flags,
             _align) = PHDR32.unpack_from(data, phoff + i * PHDR32.size)
            if paddr == 0xFFFFFFFF:
                paddr = 0xFFFFFFFFFFFFFFFF  # "no physical address", as in ELF64 kcores
            out.append((p_type, vaddr, paddr, filesz, memsz))
        return out
    eh = EHDR.unpack_from(data, 0)
    phoff, phnum = eh[5], eh[10]
    out = []
    for i in range(phnum):
        p = PHDR.unpack_from(data, phoff + i * PHDR.size)
        p_type, _flags, _off, vaddr, paddr, filesz, memsz, _align = p
        out.append((p_type, vaddr, paddr, filesz, memsz))
    return out


def marker_md5():
    h = hashlib.md5()
    dots = b"." * 4080
    for i in range(1024):
        h.update(b"KVMXX-PAGE-%04d\n" % i)
        h.update(dots)
    return h.hexdigest()


def cmd_facts(a):
    with open(a.serial, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    lab, live = [], []
    for raw in text.replace("\r", "").split("\n"):
        i = raw.find(LAB)
        if i >= 0:
            lab.append(raw[i + len(LAB):].rstrip())
        i = raw.find(LIVE)
        if i >= 0:
            live.append(raw[i + len(LIVE):])
    if "READY" not in lab:
        die("%s: no READY line" % a.serial)

    facts = [("boot", a.boot)]
    for kv in a.kv or []:
        k, _, v = kv.partition("=")
        facts.append((k, v))
    syms = []
    wanted = []
    kcore_hex = []
    vmci = []
    seen = set()
    for line in lab:
        key, _, val = line.partition(" ")
        seen.add(key)
        if key in ("READY", "init-start", "live-start", "LIVE-DONE", "fw_cfg"):
            if key == "fw_cfg":
                facts.append(("fw_cfg", val))
            continue
        if key == "vmcoreinfo":
            parts = val.split()
            if len(parts) == 2:
                facts.append(("vmcoreinfo_phys", "0x%x" % int(parts[0], 16)))
                facts.append(("vmcoreinfo_size", "0x%x" % int(parts[1], 16)))
            else:
                facts.append(("vmcoreinfo_phys", "none"))
        elif key == "kallsyms_wanted":
            wanted = val.split()
        elif key == "kallsyms":
            addr, typ, name = val.split()
            syms.append((int(addr, 16), typ, name, addr))
        elif key == "iomem":
            m = re.match(r"([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$", val)
            if not m:
                die("bad iomem line %r" % val)
            what = {"System RAM": "iomem_ram", "Kernel code": "iomem_kernel_code",
                    "Kernel rodata": "iomem_kernel_rodata",
                    "Kernel data": "iomem_kernel_data",
                    "Kernel bss": "iomem_kernel_bss"}.get(m.group(3))
            if what:
                facts.append((what, "0x%x-0x%x" % (int(m.group(1), 16),
                                                   int(m.group(2), 16))))
        elif key == "kcore_hdr":
            kcore_hex.append(val)
        elif key == "vmcoreinfo_line":
            vmci.append(val)
        else:
            facts.append((key, val))

    # kallsyms
    names = {s[2] for s in syms}
    for s in sorted(syms, key=lambda s: (s[2], s[0])):
        facts.append(("kallsyms", "%s %s %s" % (s[3], s[1], s[2])))
    for n in wanted:
        if n not in names:
            facts.append(("kallsyms_missing", n))

    # /proc/kcore program headers -> direct-map base and phys_base
    if kcore_hex:
        data = bytes(int(b, 16) for l in kcore_hex for b in l.split())
        loads = parse_kcore_hdr(data)
        pob = set()
        pb = set()
        kvo = set()
        arm64_va_bits = 48
        for l in vmci:
            if l.startswith("NUMBER(VA_BITS)="):
                arm64_va_bits = int(l.partition("=")[2], 0)
        for t, vaddr, paddr, filesz, memsz in loads:
            facts.append(("kcore_phdr", "%s 0x%x 0x%x 0x%x 0x%x" % (
                KCORE_TYPES.get(t, str(t)), vaddr, paddr, filesz, memsz)))
            if t != 1 or paddr == 0xFFFFFFFFFFFFFFFF:
                continue
            if a.arch == "arm64":
                # the linear map is [PAGE_OFFSET, PAGE_END), PAGE_END = -2^(VA_BITS-1);
                # above it, the kernel image (vaddr - paddr = kimage_voffset)
                if vaddr < 2**64 - 2**(arm64_va_bits - 1):
                    pob.add((vaddr - paddr) & (2**64 - 1))
                else:
                    kvo.add((vaddr - paddr) & (2**64 - 1))
                continue
            if vaddr >= 0xFFFFFFFF80000000:
                pb.add((paddr - (vaddr - 0xFFFFFFFF80000000)) & (2**64 - 1))
            else:
                pob.add((vaddr - paddr) & (2**64 - 1))
        if len(pob) == 1:
            facts.append(("page_offset_base", "0x%x" % pob.pop()))
        elif pob:
            die("kcore RAM segments disagree on the direct-map base: %s" % pob)
        if len(pb) == 1:
            facts.append(("phys_base_kcore", "0x%x" % pb.pop()))
        if len(kvo) == 1:
            facts.append(("kimage_voffset_kcore", "0x%x" % kvo.pop()))
        elif kvo:
            die("kcore kernel-image segments disagree on kimage_voffset: %s" % kvo)

    # the kernel's VMCOREINFO text, as read from /proc/kcore in the guest
    vmci_map = {}
    for l in vmci:
        facts.append(("vmcoreinfo_line", l))
        k, _, v = l.partition("=")
        vmci_map[k] = v
    if "KERNELOFFSET" in vmci_map:
        facts.append(("kerneloffset", "0x%x" % int(vmci_map["KERNELOFFSET"], 16)))
    if "NUMBER(phys_base)" in vmci_map:
        # printed with %ld: negative under KASLR when the virtual offset
        # exceeds the physical one; it is used modulo 2^64
        pbv = int(vmci_map["NUMBER(phys_base)"], 0) & (2**64 - 1)
        facts.append(("phys_base", "0x%x" % pbv))
        for k, v in facts:
            if k == "phys_base_kcore" and int(v, 16) != pbv:
                die("phys_base from VMCOREINFO (0x%x) != from kcore (%s)" % (pbv, v))
    for key, name in (("NUMBER(kimage_voffset)", "kimage_voffset"), ("NUMBER(PHYS_OFFSET)", "phys_offset"),
                      ("NUMBER(VA_BITS)", "va_bits"), ("NUMBER(TCR_EL1_T1SZ)", "tcr_el1_t1sz")):
        if key in vmci_map:  # arm64
            facts.append((name, "0x%x" % (int(vmci_map[key], 0) & (2**64 - 1))))
    if "NUMBER(kimage_voffset)" in vmci_map:
        kv = int(vmci_map["NUMBER(kimage_voffset)"], 0) & (2**64 - 1)
        for k, v in facts:
            if k == "kimage_voffset_kcore" and int(v, 16) != kv:
                die("kimage_voffset from VMCOREINFO (0x%x) != from kcore (%s)" % (kv, v))
    if "NUMBER(pgtable_l5_enabled)" in vmci_map:
        facts.append(("pgtable_l5_enabled", vmci_map["NUMBER(pgtable_l5_enabled)"]))

    # sanity checks against what the guest was asked to do
    fd = dict(facts)
    for k in ("banner", "hostname", "marker_md5", "marker_pages", "process_pid", "la57"):
        if k not in fd:
            die("%s: guest did not print %s" % (a.serial, k))
    if fd["marker_md5"] != marker_md5() or fd["marker_pages"] != "1024":
        die("marker pages: guest says %s pages md5 %s, expected 1024 / %s"
            % (fd["marker_pages"], fd["marker_md5"], marker_md5()))
    if fd["hostname"] != "KVMXX-MARKER-HOSTNAME":
        die("hostname is %r" % fd["hostname"])
    if not syms:
        die("no kallsyms lines")

    with open(os.path.join(a.bootdir, "facts.txt"), "w") as f:
        f.write("# kvmxx guest facts: one 'key value' per line; see tests/real/README.md\n")
        for k, v in facts:
            f.write("%s %s\n" % (k, v))
    with open(os.path.join(a.bootdir, "kallsyms.txt"), "w") as f:
        for s in sorted(syms):
            f.write("%s %s %s\n" % (s[3], s[1], s[2]))
    if a.live:
        if "LIVE-DONE" not in seen:
            die("%s: live test did not finish" % a.serial)
        with open(os.path.join(a.bootdir, "live.log"), "w") as f:
            for l in live:
                f.write(l + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("dump")
    p.add_argument("socket")
    p.add_argument("bootdir")
    p.add_argument("dumps", nargs="+")
    p.set_defaults(fn=cmd_dump)
    p = sub.add_parser("quit")
    p.add_argument("socket")
    p.set_defaults(fn=cmd_quit)
    p = sub.add_parser("fix-elf")
    p.add_argument("src")
    p.add_argument("dst")
    p.set_defaults(fn=cmd_fix_elf)
    p = sub.add_parser("facts")
    p.add_argument("serial")
    p.add_argument("bootdir")
    p.add_argument("--boot", required=True)
    p.add_argument("--kv", action="append")
    p.add_argument("--live", action="store_true")
    p.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64",
                   help="how to read the guest's /proc/kcore layout (default x86_64)")
    p.set_defaults(fn=cmd_facts)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
