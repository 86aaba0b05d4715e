// The twin that must compile: read_as of a trivially copyable type.
#include <kvmxx/kvmxx.hpp>
auto f(const kvmxx::freebsd_amd64_minidump& km) { return km.read_as<unsigned long>(kvmxx::kvaddr{0}); }
