#include <kvmxx/kvmxx.hpp>

int odr_second() { return &kvmxx::error_category() == &kvmxx::make_error_code(kvmxx::errc::corrupt).category() ? 1 : 0; }
