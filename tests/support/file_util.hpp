// file_util.hpp — tiny file helpers for kvmxx tests (test code only; uses <filesystem>).
//
// Public API (namespace kvmxx_test):
//   void write_file(const std::string& path, std::span<const std::byte> bytes);  // throws on error
//   class temp_dir {                      // unique directory, removed recursively on destruction
//    public:
//     temp_dir();                          // under $TMPDIR, or /tmp when TMPDIR is unset/empty
//     const std::string& root() const;     // the directory itself
//     std::string path(const std::string& name) const;  // root() + "/" + name
//   };

#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kvmxx_test {

// Writes bytes to path, replacing any existing file.
inline void write_file(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw std::runtime_error("cannot create " + path);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) throw std::runtime_error("cannot write " + path);
}

// A fresh directory that disappears with the object. Non-copyable and non-movable so
// that exactly one owner removes it.
class temp_dir {
 public:
  temp_dir() {
    namespace fs = std::filesystem;
    const char* env = std::getenv("TMPDIR");
    const fs::path parent = (env != nullptr && *env != '\0') ? fs::path(env) : fs::path("/tmp");
    // create_directory() reports whether it created the directory, which makes the
    // random name unique even when several test processes race.
    std::random_device rd;
    std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (int attempt = 0; attempt < 100; ++attempt) {
      const fs::path candidate = parent / ("kvmxx-test-" + std::to_string(gen() % 0x1000000000ull));
      std::error_code ec;
      if (fs::create_directory(candidate, ec)) {
        root_ = candidate.string();
        return;
      }
      if (ec) throw std::runtime_error("cannot create a directory in " + parent.string() + ": " + ec.message());
    }
    throw std::runtime_error("cannot find an unused directory name in " + parent.string());
  }

  ~temp_dir() {
    std::error_code ec;  // never throw from a destructor
    std::filesystem::remove_all(root_, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::string& root() const { return root_; }
  std::string path(const std::string& name) const { return (std::filesystem::path(root_) / name).string(); }

 private:
  std::string root_;
};

}  // namespace kvmxx_test
