// Must NOT compile: read_as<T> needs a trivially copyable T.
#include <kvmxx/kvmxx.hpp>
#include <string>
auto f(const kvmxx::freebsd_amd64_minidump& km) { return km.read_as<std::string>(kvmxx::kvaddr{0}); }
