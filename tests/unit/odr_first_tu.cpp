// Two translation units that include every public header: a non-inline definition in a
// header makes the link fail with a duplicate symbol.
#include <kvmxx/kvmxx.hpp>

int odr_second();
int main() {
  // Use something from each TU so neither is dropped.
  return (kvmxx::make_error_code(kvmxx::errc::truncated).value() == 4 && odr_second() == 1) ? 0 : 1;
}
