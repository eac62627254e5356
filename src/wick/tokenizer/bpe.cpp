// BPE model (HF models::bpe): byte-level and SentencePiece-style (byte_fallback, fuse_unk), with a word cache.
#include <mutex>
#include <queue>
#include <shared_mutex>

#include "wick/tokenizer/model.h"
#include "wick/tokenizer/unicode.h"
#include "wick/tokenizer/vocab.h"

namespace wick::tok {

std::unique_ptr<Model> make_wordpiece(const json& j, const std::string& where);

namespace {

// tokenizer.json's merges: "a b" strings or ["a", "b"] pairs.
std::vector<std::pair<std::string, std::string>> merges_of(const json& j, const std::string& where) {
  const json& merges = require_field(j, "merges", where);
  WICK_CHECK(merges.is_array(), where, ".merges: expected an array");
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      out.push_back(split_merge(m.get_ref<const std::string&>(), where, i));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      fail(where, ".merges[", i, "]: expected \"a b\" or [\"a\", \"b\"], got ", m.dump());
    }
  }
  return out;
}

class Bpe : public Model {
 public:
  // From tokenizer.json's "model" object.
  Bpe(const json& j, const std::string& where)
      : Bpe(j, Vocab::from_json(require_field(j, "vocab", where), where + ".vocab"), merges_of(j, where), where) {}

  // From the model's options (every field but vocab and merges), its vocabulary and merges.
  Bpe(const json& j, Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges,
      const std::string& where)
      : vocab_(std::move(vocab)) {
    if (j.contains("unk_token") && !j["unk_token"].is_null()) unk_ = require_string(j, "unk_token", where);
    prefix_ = value_or<std::string>(j, "continuing_subword_prefix", "", where);
    suffix_ = value_or<std::string>(j, "end_of_word_suffix", "", where);
    fuse_unk_ = value_or(j, "fuse_unk", false, where);
    byte_fallback_ = value_or(j, "byte_fallback", false, where);
    ignore_merges_ = value_or(j, "ignore_merges", false, where);
    WICK_CHECK(value_or(j, "dropout", 0.0, where) == 0.0, where,
               ".dropout: BPE dropout is not supported (it is for training only)");
    merges_.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
      const auto& [a, b] = merges[i];
      auto ia = vocab_.find(a), ib = vocab_.find(b);
      WICK_CHECK(ia && ib, where, ".merges[", i, "]: token '", ia ? b : a, "' is not in the vocabulary");
      std::string merged = a + b.substr(std::min(prefix_.size(), b.size()));
      auto im = vocab_.find(merged);
      WICK_CHECK(im, where, ".merges[", i, "]: merged token '", merged, "' is not in the vocabulary");
      merges_[key(*ia, *ib)] = {static_cast<int32_t>(i), *im};
    }
  }

  void tokenize(std::string_view word, std::vector<int32_t>& ids) const override {
    if (word.empty()) return;
    if (ignore_merges_) {
      if (auto id = vocab_.find(word)) {
        ids.push_back(*id);
        return;
      }
    }
    {
      std::shared_lock lock(cache_mutex_);
      auto it = cache_.find(word);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> result = merge_word(word);
    ids.insert(ids.end(), result.begin(), result.end());
    if (word.size() < kMaxCachedWordBytes) {
      std::unique_lock lock(cache_mutex_);
      if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(result));
    }
  }

  std::optional<int32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(int32_t id) const override { return vocab_.token(id); }
  int32_t id_end() const override { return vocab_.id_end(); }
  std::optional<std::string> unk_token() const override { return unk_; }

 private:
  static constexpr size_t kCacheCapacity = 1 << 17;
  static constexpr size_t kMaxCachedWordBytes = 256;
  struct MergeInfo {
    int32_t rank, new_id;
  };
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  // The initial symbols (characters, byte fallback, unk) then the rank-ordered merges.
  std::vector<int32_t> merge_word(std::string_view w) const {
    std::vector<int32_t> sym;
    sym.reserve(w.size());
    std::optional<int32_t> unk_id;
    bool pending_unk = false;
    std::string s;
    for (size_t i = 0; i < w.size();) {
      size_t start = i;
      i += utf8_sequence_length(static_cast<unsigned char>(w[i]));
      if (i > w.size()) i = w.size();
      s.clear();
      if (start != 0) s += prefix_;
      s.append(w.substr(start, i - start));
      if (i == w.size()) s += suffix_;
      if (auto id = vocab_.find(s)) {
        if (pending_unk) sym.push_back(*unk_id), pending_unk = false;
        sym.push_back(*id);
        continue;
      }
      if (byte_fallback_) {
        std::vector<int32_t> bytes;
        for (unsigned char b : s) {
          char code[8];
          std::snprintf(code, sizeof(code), "<0x%02X>", b);
          auto id = vocab_.find(code);
          if (!id) break;
          bytes.push_back(*id);
        }
        if (bytes.size() == s.size()) {
          sym.insert(sym.end(), bytes.begin(), bytes.end());
          continue;
        }
      }
      if (unk_) {
        if (!unk_id) {
          unk_id = vocab_.find(*unk_);
          WICK_CHECK(unk_id, "BPE: unk_token '", *unk_, "' is not in the vocabulary");
        }
        if (pending_unk && !fuse_unk_) sym.push_back(*unk_id);
        pending_unk = true;
      }
    }
    if (pending_unk) sym.push_back(*unk_id);
    if (sym.size() < 2) return sym;

    // Doubly linked symbols; a min-heap of (rank, position) with lazy invalidation.
    const int n = static_cast<int>(sym.size());
    std::vector<int> prev(n), next(n);
    std::vector<bool> alive(n, true);
    for (int i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1 < n ? i + 1 : -1;
    struct Entry {
      int32_t rank;
      int pos;
      int32_t new_id;
      bool operator>(const Entry& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
    auto push = [&](int pos) {
      if (pos < 0 || next[pos] < 0) return;
      auto it = merges_.find(key(sym[pos], sym[next[pos]]));
      if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
    };
    for (int i = 0; i + 1 < n; ++i) push(i);
    while (!queue.empty()) {
      Entry top = queue.top();
      queue.pop();
      if (!alive[top.pos] || next[top.pos] < 0) continue;
      int right = next[top.pos];
      auto it = merges_.find(key(sym[top.pos], sym[right]));
      if (it == merges_.end() || it->second.new_id != top.new_id) continue;
      sym[top.pos] = top.new_id;
      alive[right] = false;
      next[top.pos] = next[right];
      if (next[right] >= 0) prev[next[right]] = top.pos;
      push(prev[top.pos]);
      push(top.pos);
    }
    std::vector<int32_t> out;
    for (int i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
    return out;
  }

  Vocab vocab_;
  std::unordered_map<uint64_t, MergeInfo> merges_;
  std::optional<std::string> unk_;
  std::string prefix_, suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace

std::pair<std::string, std::string> split_merge(const std::string& s, const std::string& where, size_t i) {
  size_t sp = s.find(' ');
  WICK_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, where, ".merges[", i,
             "]: expected \"a b\", got \"", s, "\"");
  return {s.substr(0, sp), s.substr(sp + 1)};
}

std::unique_ptr<Model> Model::bpe(const json& options, Vocab vocab,
                                  const std::vector<std::pair<std::string, std::string>>& merges,
                                  const std::string& where) {
  return std::make_unique<Bpe>(options, std::move(vocab), merges, where);
}

std::unique_ptr<Model> Model::from_json(const json& j, const std::string& where) {
  std::string type = j.contains("type") ? type_of(j, where) : (j.contains("merges") ? "BPE" : "WordPiece");
  if (type == "BPE") return std::make_unique<Bpe>(j, where);
  if (type == "WordPiece") return make_wordpiece(j, where);
  fail(where, ": unknown model type '", type, "' (supported: BPE, WordPiece)");
}

}  // namespace wick::tok
