// SPDX-License-Identifier: BSD-2-Clause
//
// The umbrella header: the core, every backend, architecture and resolver. Never the
// opt-in integrations (integration/).
#pragma once
#include <kvmxx/version.hpp>
#include <kvmxx/fwd.hpp>
#include <kvmxx/core/config.hpp>
#include <kvmxx/core/error.hpp>
#include <kvmxx/core/types.hpp>
#include <kvmxx/core/concepts.hpp>
#include <kvmxx/core/kernel_file.hpp>
#include <kvmxx/core/kernel_memory.hpp>
#include <kvmxx/core/open.hpp>
#include <kvmxx/core/any_kernel_memory.hpp>
#include <kvmxx/backend/minidump.hpp>
#include <kvmxx/backend/elf_core.hpp>
#include <kvmxx/backend/kcore.hpp>
#include <kvmxx/backend/live.hpp>
#include <kvmxx/backend/null.hpp>
#include <kvmxx/arch/amd64.hpp>
#include <kvmxx/arch/i386.hpp>
#include <kvmxx/arch/aarch64.hpp>
#include <kvmxx/resolver/none.hpp>
#include <kvmxx/resolver/elf_symtab.hpp>
#include <kvmxx/resolver/callback.hpp>
#include <kvmxx/resolver/symbol_file.hpp>
#include <kvmxx/resolver/vmcoreinfo_symbols.hpp>
#include <kvmxx/resolver/kallsyms.hpp>
#include <kvmxx/resolver/displaced.hpp>
#include <kvmxx/resolver/chain.hpp>
#include <kvmxx/os/freebsd/msgbuf.hpp>
#include <kvmxx/os/linux/vmcoreinfo.hpp>
#include <kvmxx/os/linux/kaslr.hpp>
#include <kvmxx/os/linux/devmem.hpp>
#include <kvmxx/os/linux/printk.hpp>
#include <kvmxx/os/linux/kallsyms.hpp>
