// Helpers shared by the wick_formats tests: test data paths, file bytes, scratch files, and a
// matcher for the message of a wick::Error.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "wick/base/error.h"

namespace wick::io::test {

inline std::string data_path(const std::string& rel) {
  return std::string(WICK_TEST_DATA_DIR) + "/io/" + rel;
}

// Real models fetched by scripts/fetch-models.sh into <repo>/models (tests/data/../../models).
inline std::string models_dir() {
  return (std::filesystem::path(WICK_TEST_DATA_DIR) / ".." / ".." / "models").lexically_normal().string();
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test: cannot open " + path);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A folder of its own under the system temp dir, removed with the object.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wick_io_test_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("test: mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
    std::string p = file(name);
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    return p;
  }
  std::string write(const std::string& name, const std::string& text) const {
    return write(name, std::vector<uint8_t>(text.begin(), text.end()));
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Runs `fn`, expects a wick::Error whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const wick::Error& e) {
    std::string msg = e.what();
    for (const auto& part : parts)
      EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg << "\nmissing: " << part;
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected wick::Error, got another exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected wick::Error, nothing was thrown";
}

}  // namespace wick::io::test
