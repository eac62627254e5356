// Shared helpers of the tokenizer tests: paths of the tokenizers and goldens, JSON loading, printing.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "wick/tokenizer/tokenizer.h"

namespace wick::tok::test {

inline std::filesystem::path shared_dir() { return WICK_SHARED_DIR; }
inline std::filesystem::path data_dir() { return std::filesystem::path(WICK_TEST_DATA_DIR) / "tokenizer"; }

// The tokenizer.json of a golden name: qwen2.5, gpt2, mistral (shared) or minilm (tests/data).
inline std::filesystem::path tokenizer_path(const std::string& name) {
  if (name == "minilm") return data_dir() / "minilm" / "tokenizer.json";
  return shared_dir() / "data" / "tokenizers" / name / "tokenizer.json";
}

inline nlohmann::json load_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  return nlohmann::json::parse(in);
}

// Printable form of a string: escapes control characters, keeps other UTF-8 as is.
inline std::string show(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out + "\"";
}

inline std::string show(const std::vector<int32_t>& ids) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) os << ",";
    if (i >= 60) {
      os << "... (" << ids.size() << " ids)";
      break;
    }
    os << ids[i];
  }
  os << "]";
  return os.str();
}

// Where two id lists first differ, for failure messages.
inline std::string first_mismatch(const std::vector<int32_t>& want, const std::vector<int32_t>& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  std::ostringstream os;
  os << "first mismatch at index " << i << ": expected "
     << (i < want.size() ? std::to_string(want[i]) : std::string("<end>")) << ", got "
     << (i < got.size() ? std::to_string(got[i]) : std::string("<end>"));
  return os.str();
}

}  // namespace wick::tok::test
