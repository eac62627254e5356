// Embeddings with the rules of `wick embed` (cli/cmd_embed.cpp); tests compare the two outputs.
#include "wick/serve/embedder.h"

#include <algorithm>
#include <utility>

#include "wick/core/autograd.h"
#include "wick/core/ops.h"

namespace wick::serve {

namespace {

std::vector<int32_t> truncate(std::vector<int32_t> ids, size_t max, const tok::Tokenizer& t) {
  if (ids.size() <= max) return ids;
  int32_t last = ids.back();
  ids.resize(max);
  if (t.is_special(last) && max > 0) ids.back() = last;
  return ids;
}

}  // namespace

Embedder::Embedder(models::LoadedEncoder encoder)
    : encoder_(std::move(encoder)),
      tokenizer_(&encoder_.require_tokenizer()),
      pooling_(encoder_.default_pooling()),
      normalize_(encoder_.default_normalize()),
      max_length_(encoder_.max_length()) {}

Embedder::Result Embedder::embed(const std::vector<std::variant<std::string, std::vector<int32_t>>>& inputs) {
  std::vector<std::vector<int32_t>> rows;
  Result result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (const auto* text = std::get_if<std::string>(&inputs[i])) {
      rows.push_back(truncate(tokenizer_->encode(*text, true), size_t(max_length_), *tokenizer_));
      WICK_CHECK(!rows.back().empty(), "input ", i, " has no tokens");
      continue;
    }
    const auto& ids = std::get<std::vector<int32_t>>(inputs[i]);
    WICK_CHECK(int64_t(ids.size()) <= max_length_, "input ", i, " has ", ids.size(),
               " tokens, more than the maximum of ", max_length_);
    for (int32_t id : ids)
      WICK_CHECK(id >= 0 && id < encoder_.model.config().vocab_size, "input ", i, ": token id ", id,
                 " is outside the vocabulary of ", encoder_.model.config().vocab_size);
    rows.push_back(ids);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  NoGradGuard no_grad;
  Device device = encoder_.model.device();
  auto device_lock = lock_device(device);  // no decoder's graph capture may interleave with it
  for (size_t start = 0; start < rows.size(); start += kBatchSize) {
    size_t end = std::min(rows.size(), start + kBatchSize), width = 0;
    for (size_t i = start; i < end; ++i) width = std::max(width, rows[i].size());
    size_t b = end - start;
    std::vector<int64_t> ids(b * width, 0), mask(b * width, 0);
    for (size_t i = 0; i < b; ++i) {
      const std::vector<int32_t>& row = rows[start + i];
      result.tokens += int64_t(row.size());
      for (size_t j = 0; j < row.size(); ++j) {
        ids[i * width + j] = row[j];
        mask[i * width + j] = 1;
      }
    }
    Shape shape{int64_t(b), int64_t(width)};
    Tensor tid = Tensor::from_vector(ids, shape, device), tmask = Tensor::from_vector(mask, shape, device);
    Tensor pooled = models::pool(encoder_.model.forward(tid, tmask), tmask, pooling_);
    if (normalize_) pooled = models::l2_normalize(pooled);
    std::vector<float> flat = pooled.to_vector<float>();
    int64_t d = pooled.shape(1);
    for (size_t i = 0; i < b; ++i)
      result.vectors.emplace_back(flat.begin() + int64_t(i) * d, flat.begin() + int64_t(i + 1) * d);
  }
  return result;
}

}  // namespace wick::serve
