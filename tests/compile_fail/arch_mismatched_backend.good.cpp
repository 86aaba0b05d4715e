// The twin that must compile: the real amd64 Arch.
#include <kvmxx/kvmxx.hpp>
using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, kvmxx::arch::amd64, kvmxx::resolver::none>;
static_assert(sizeof(handle) > 0);
