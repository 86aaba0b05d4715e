// Must NOT compile: a Resolver without lookup() breaks the symbol_resolver contract.
#include <kvmxx/kvmxx.hpp>
struct no_lookup {};
using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, no_lookup>;
static_assert(sizeof(handle) > 0);
