// The twin that must compile: the same, with a resolver that models symbol_resolver.
#include <kvmxx/kvmxx.hpp>
struct with_lookup {
  kvmxx::result<kvmxx::symbol> lookup(std::string_view) const { return kvmxx::errc::symbol_not_found; }
};
using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, with_lookup>;
static_assert(sizeof(handle) > 0);
