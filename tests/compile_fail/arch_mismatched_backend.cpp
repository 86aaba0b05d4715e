// Must NOT compile: an Arch without translate() is no translation_arch.
#include <kvmxx/kvmxx.hpp>
struct no_translate {
  static constexpr kvmxx::machine id = kvmxx::machine::amd64;
  static constexpr std::size_t page_size = 4096;
};
using handle = kvmxx::kernel_memory<kvmxx::backend::minidump, no_translate, kvmxx::resolver::none>;
static_assert(sizeof(handle) > 0);
