// `wick embed`: sentence embeddings of stdin lines (JSON strings, or plain text with --input-format
// text; output line N is input line N, a blank line being the empty text) or of pre-tokenised ids,
// with the model's sentence-transformers pooling and normalisation unless overridden; as JSON lines,
// or a .npy / .safetensors file with --output.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "wick/cli/commands.h"
#include "wick/cli/runtime_options.h"
#include "wick/cli/usage.h"
#include "wick/cli/validators.h"
#include "wick/core/autograd.h"
#include "wick/core/ops.h"
#include "wick/io/safetensors.h"
#include "wick/models/loading.h"

namespace wick::cli {

namespace {

using json = nlohmann::json;

struct EmbedOptions {
  std::string model, pooling, ids_json, prefix, rank, input_format = "jsonl", output;
  CLI::Option* rank_given = nullptr;
  bool no_normalize = false;
  int64_t max_length = 0, batch_size = 32;
  RuntimeOptions runtime;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Rows of float32 as NumPy's .npy (format 1.0: magic, header dict padded to 64 bytes, C-order data).
void save_npy(const std::string& path, const std::vector<float>& data, int64_t rows, int64_t width) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(width) + "), }";
  size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string preamble = std::string("\x93NUMPY\x01\x00", 8);
  preamble += char(header.size() & 0xff);
  preamble += char(header.size() >> 8);
  preamble += header;
  io::write_file_atomic(path, {{reinterpret_cast<const uint8_t*>(preamble.data()), preamble.size()},
                               {reinterpret_cast<const uint8_t*>(data.data()), data.size() * sizeof(float)}});
}

// The vectors to --output: a .npy array or a .safetensors file with one tensor, "embeddings".
void save_vectors(const std::string& path, const std::vector<std::vector<float>>& rows) {
  int64_t width = rows.empty() ? 0 : int64_t(rows[0].size());
  std::vector<float> data;
  data.reserve(rows.size() * size_t(width));
  for (const auto& r : rows) data.insert(data.end(), r.begin(), r.end());
  if (ends_with(path, ".npy")) {
    save_npy(path, data, int64_t(rows.size()), width);
  } else {
    io::save_safetensors(path, {{"embeddings", io::FileDtype::F32, {int64_t(rows.size()), width}, data.data(),
                                 data.size() * sizeof(float)}});
  }
  std::fprintf(stderr, "wick: wrote %zu vectors of %lld to %s\n", rows.size(), (long long)width, path.c_str());
}

// Truncates one encoded sequence to `max` tokens, keeping a closing special token ([SEP]).
std::vector<int32_t> truncate(std::vector<int32_t> ids, size_t max, const tok::Tokenizer& t) {
  if (ids.size() <= max) return ids;
  int32_t last = ids.back();
  ids.resize(max);
  if (t.is_special(last) && max > 0) ids.back() = last;
  return ids;
}

// Rows to stdout as JSON arrays, or into `keep` (for ranking or a file).
void print_rows(const Tensor& emb, std::vector<std::vector<float>>* keep) {
  int64_t n = emb.shape(0), d = emb.shape(1);
  std::vector<float> v = emb.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    if (keep) {
      keep->emplace_back(v.begin() + i * d, v.begin() + (i + 1) * d);
      continue;
    }
    json row = json::array();
    for (int64_t j = 0; j < d; ++j) row.push_back(v[i * d + j]);
    std::cout << row.dump() << "\n";
  }
}

void run_embed(const EmbedOptions& o) {
  bool ranking = o.rank_given->count() > 0;
  if (ranking && o.rank.empty()) usage_fail("embed: --rank is empty (give the query to rank the inputs against)");
  if (ranking && !o.output.empty()) usage_fail("embed: --output writes vectors; --rank prints scores");
  if (ranking && !o.ids_json.empty()) usage_fail("embed: --rank ranks texts; --ids-json gives token ids");
  if (!o.output.empty() && !ends_with(o.output, ".npy") && !ends_with(o.output, ".safetensors"))
    usage_fail("embed: --output must name a .npy or .safetensors file, got ", o.output);
  RuntimeOptions rt = o.runtime;
  if (rt.dtype == "auto") rt.dtype = "f32";  // embedding models are small; f32 matches the reference
  models::LoadedEncoder loaded = models::load_encoder(o.model, rt.load_options());
  const models::EncoderModel& model = loaded.model;
  Device device = model.device();
  models::Pooling pool = o.pooling.empty() ? loaded.default_pooling() : models::parse_pooling(o.pooling);
  // Normalised unless told otherwise or unless the sentence-transformers pipeline has no Normalize.
  bool normalize = !o.no_normalize && loaded.default_normalize();
  int64_t max_len = std::min<int64_t>(o.max_length > 0 ? o.max_length : loaded.max_length(),
                                      model.config().max_position_embeddings);

  NoGradGuard no_grad;
  bool collecting = ranking || !o.output.empty();
  std::vector<std::vector<float>> collected;
  std::vector<std::string> texts;
  auto embed_batch = [&](const std::vector<std::vector<int32_t>>& rows, const std::vector<std::vector<int32_t>>& masks) {
    size_t width = 0;
    for (const auto& r : rows) width = std::max(width, r.size());
    std::vector<int64_t> ids(rows.size() * width, 0), mask(rows.size() * width, 0);
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = 0; j < rows[i].size(); ++j) {
        ids[i * width + j] = rows[i][j];
        mask[i * width + j] = masks.empty() ? 1 : masks[i][j];
      }
    Shape shape{int64_t(rows.size()), int64_t(width)};
    Tensor tid = Tensor::from_vector(ids, shape, device), tmask = Tensor::from_vector(mask, shape, device);
    Tensor emb = models::pool(model.forward(tid, tmask), tmask, pool);
    print_rows(normalize ? models::l2_normalize(emb) : emb, collecting ? &collected : nullptr);
  };

  if (!o.ids_json.empty()) {
    std::ifstream in(o.ids_json);
    WICK_CHECK(in.good(), "--ids-json: cannot open ", o.ids_json);
    json j = json::parse(in, nullptr, false);
    WICK_CHECK(j.is_object() && j.contains("input_ids") && j["input_ids"].is_array(), o.ids_json,
               ": expected {\"input_ids\": [[...], ...], \"attention_mask\": ...}");
    auto rows = j["input_ids"].get<std::vector<std::vector<int32_t>>>();
    std::vector<std::vector<int32_t>> masks;
    if (j.contains("attention_mask")) masks = j["attention_mask"].get<std::vector<std::vector<int32_t>>>();
    WICK_CHECK(!rows.empty(), o.ids_json, ": empty batch");
    for (size_t i = 0; i < rows.size(); ++i) {
      WICK_CHECK(int64_t(rows[i].size()) <= max_len, o.ids_json, ": row ", i, " has ", rows[i].size(),
                 " tokens, more than the maximum of ", max_len);
      WICK_CHECK(masks.empty() || masks[i].size() == rows[i].size(), o.ids_json, ": attention_mask row ", i,
                 " does not match input_ids");
      for (int32_t id : rows[i])
        WICK_CHECK(id >= 0 && id < model.config().vocab_size, o.ids_json, ": token id ", id, " is outside the vocabulary");
    }
    embed_batch(rows, masks);
    if (!o.output.empty()) save_vectors(o.output, collected);
    return;
  }
  const tok::Tokenizer& tokenizer = loaded.require_tokenizer();
  std::vector<std::vector<int32_t>> batch;
  std::string line;
  bool plain = o.input_format == "text";
  for (int64_t number = 1; std::getline(std::cin, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // A blank line is the empty text, so that output line N stays the embedding of input line N.
    std::string text = line;
    if (!plain && !line.empty()) {
      json v = json::parse(line, nullptr, false);
      WICK_CHECK(!v.is_discarded() && v.is_string(), "stdin line ", number,
                 ": expected a JSON string (plain text lines need --input-format text)");
      text = v.get<std::string>();
    }
    batch.push_back(truncate(tokenizer.encode(o.prefix + text, true), size_t(max_len), tokenizer));
    if (ranking) texts.push_back(text);
    if (int64_t(batch.size()) == o.batch_size) {
      embed_batch(batch, {});
      batch.clear();
    }
  }
  if (!batch.empty()) embed_batch(batch, {});
  if (!o.output.empty()) save_vectors(o.output, collected);
  if (!ranking) return;
  // Rank the inputs by cosine similarity to the query (embedded with the same settings).
  WICK_CHECK(!texts.empty(), "embed --rank: no documents on stdin");
  size_t docs = collected.size();
  embed_batch({truncate(tokenizer.encode(o.prefix + o.rank, true), size_t(max_len), tokenizer)}, {});
  const std::vector<float>& q = collected.back();
  auto norm = [](const std::vector<float>& x) {
    double s = 0;
    for (float v : x) s += double(v) * v;
    return std::sqrt(s);
  };
  std::vector<std::pair<double, size_t>> scores;
  for (size_t i = 0; i < docs; ++i) {
    double dot = 0;
    for (size_t j = 0; j < q.size(); ++j) dot += double(q[j]) * collected[i][j];
    scores.push_back({dot / (norm(q) * norm(collected[i]) + 1e-12), i});
  }
  std::stable_sort(scores.begin(), scores.end(), [](auto& a, auto& b) { return a.first > b.first; });
  for (auto [score, i] : scores)
    std::cout << json{{"score", score}, {"index", i}, {"text", texts[i]}}.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
}

}  // namespace

void register_embed(CLI::App& app) {
  auto o = std::make_shared<EmbedOptions>();
  CLI::App* cmd = app.add_subcommand("embed", "Sentence embeddings of the texts on stdin (one per line)");
  cmd->add_option("-m,--model", o->model, "model folder or ORG/NAME")->required();
  cmd->add_option("--input-format", o->input_format, "stdin lines are JSON strings (jsonl) or plain text (text)")
      ->check(CLI::IsMember({"jsonl", "text"}));
  cmd->add_option("-o,--output", o->output, "write the vectors to a .npy or .safetensors file (float32 [n, dim])");
  cmd->add_option("--pooling", o->pooling, "mean, cls or last (default: the model's sentence-transformers config)")
      ->check(CLI::IsMember({"mean", "cls", "last"}));
  cmd->add_flag("--no-normalize", o->no_normalize, "keep the pooled vectors unnormalised");
  cmd->add_option("--max-length", o->max_length, "truncate inputs to this many tokens (0: the model's maximum)")
      ->check(non_negative());
  cmd->add_option("--ids-json", o->ids_json, "embed {\"input_ids\", \"attention_mask\"} from this file instead of stdin");
  cmd->add_option("--prefix", o->prefix, "text put before every input (E5: \"query: \" or \"passage: \")");
  o->rank_given =
      cmd->add_option("--rank", o->rank, "rank the stdin texts by cosine similarity to this query (JSON lines out)");
  cmd->add_option("--batch-size", o->batch_size, "inputs per forward pass")->check(CLI::Range(1, 4096));
  add_runtime_options(cmd, o->runtime);
  cmd->callback([o] { run_embed(*o); });
}

}  // namespace wick::cli
