// Shared helpers of the tokenizer tests: paths of the tokenizers and goldens, JSON loading, printing,
// the comparison of a tokenizer with a golden file.
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

// The goldens (tests/data/tokenizer) and the tokenizers they were written from (tests/data/tokenizers).
inline std::filesystem::path data_dir() { return std::filesystem::path(WICK_TEST_DATA_DIR) / "tokenizer"; }
inline std::filesystem::path tokenizers_dir() { return std::filesystem::path(WICK_TEST_DATA_DIR) / "tokenizers"; }

// The tokenizer.json of a golden name: qwen2.5, gpt2, mistral or minilm.
inline std::filesystem::path tokenizer_path(const std::string& name) {
  return tokenizers_dir() / name / "tokenizer.json";
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

// A golden file of scripts/golden/tokenizer_golden.py or gguf_tokenizer_golden.py: one case per
// corpus string.
struct Golden {
  std::vector<std::string> corpus;
  nlohmann::json cases;
  nlohmann::json root;
};

inline Golden load_golden(const std::string& name) {
  Golden g;
  g.corpus = load_json(data_dir() / "corpus.json").get<std::vector<std::string>>();
  g.root = load_json(data_dir() / ("golden_" + name + ".json"));
  g.cases = g.root["cases"];
  return g;
}

struct Expected {
  std::vector<int32_t> ids, ids_special;
  std::string decoded, decoded_skip;
};

// Fields the scripts leave out when they equal another one (see tokenizer_golden.py).
inline Expected expected_case(const nlohmann::json& c, const std::string& text) {
  Expected e;
  e.ids = c["ids"].get<std::vector<int32_t>>();
  e.ids_special = c.contains("ids_special") ? c["ids_special"].get<std::vector<int32_t>>() : e.ids;
  e.decoded = c.contains("decoded") ? c["decoded"].get<std::string>() : text;
  e.decoded_skip = c.contains("decoded_skip") ? c["decoded_skip"].get<std::string>() : e.decoded;
  return e;
}

// Checks every corpus string (ids with and without special tokens, decode with and without them);
// reports each mismatch with the string, expected and got.
inline void expect_matches_golden(const Tokenizer& tok, const Golden& g, const std::string& name) {
  ASSERT_EQ(g.corpus.size(), g.cases.size());
  ASSERT_GE(g.corpus.size(), 300u);
  size_t failed = 0;
  for (size_t i = 0; i < g.corpus.size(); ++i) {
    const std::string& text = g.corpus[i];
    Expected want = expected_case(g.cases[i], text);
    auto got = tok.encode(text, false);
    auto got_special = tok.encode(text, true);
    std::string decoded = tok.decode(want.ids_special, false);
    std::string decoded_skip = tok.decode(want.ids_special, true);
    if (got == want.ids && got_special == want.ids_special && decoded == want.decoded &&
        decoded_skip == want.decoded_skip)
      continue;
    ++failed;
    EXPECT_EQ(got, want.ids) << name << " case " << i << " text " << show(text) << "\n  expected " << show(want.ids)
                             << "\n  got      " << show(got) << "\n  " << first_mismatch(want.ids, got);
    EXPECT_EQ(got_special, want.ids_special) << name << " case " << i << " (add_special_tokens) text " << show(text)
                                             << "\n  " << first_mismatch(want.ids_special, got_special);
    EXPECT_EQ(decoded, want.decoded) << name << " case " << i << " decode text " << show(text) << "\n  expected "
                                     << show(want.decoded) << "\n  got      " << show(decoded);
    EXPECT_EQ(decoded_skip, want.decoded_skip) << name << " case " << i << " decode(skip_special) text " << show(text)
                                               << "\n  expected " << show(want.decoded_skip) << "\n  got      "
                                               << show(decoded_skip);
  }
  EXPECT_EQ(failed, 0u) << name << ": " << failed << " of " << g.corpus.size() << " strings differ from HF";
}

}  // namespace wick::tok::test
