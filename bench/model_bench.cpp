// Model-level workloads (PERFORMANCE.md, B, C and E) with random weights of the real shapes:
// Qwen2.5-0.5B batch-1 decode and prefill, and all-MiniLM-L6-v2 embedding throughput. Prints one
// JSON object; its peer is bench/peers/model_peer.py (transformers on the same card).
// Usage: model_bench [--device cuda|cpu] [--dtype bf16|f32]
//        model_bench --train [--lazy] [--checkpoint] [--unfused-loss] [--quantize q4_0|q8_0] [--qv]
//          (LoRA training step: rank 16 on all seven projections, or with --qv rank 8 on q_proj and
//          v_proj, PERFORMANCE.md D(i))
//        model_bench --train --packing (an epoch of mixed-length examples, padded and packed)
#include <chrono>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <optional>
#include <string>

#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/quantized.h"
#include "wick/lora/adapter.h"
#include "wick/train/adamw.h"
#include "wick/train/loss.h"
#include "wick/train/data.h"
#include "wick/train/trainer.h"
#include <random>
#include "wick/core/ops.h"
#include "wick/models/decoder.h"
#include "wick/models/encoder.h"

using namespace wick;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

models::DecoderModel qwen05b(Device device, Dtype dtype) {
  models::DecoderConfig c;
  c.model_type = "qwen2";
  c.vocab_size = 151936;
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_layers = 24;
  c.num_heads = 14;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.max_position_embeddings = 32768;
  c.rope_theta = 1000000.0;
  c.tie_word_embeddings = true;
  c.qkv_bias = true;
  models::DecoderModel m(c, device, dtype);
  auto w = [&](Shape s) { return normal(s, 0, 0.02, dtype, device); };
  int64_t h = c.hidden_size, q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim, f = c.intermediate_size;
  m.embed_tokens = w({c.vocab_size, h});
  m.lm_head = m.embed_tokens;
  m.final_norm = ones({h}, dtype, device);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    models::DecoderLayer l;
    l.input_norm = ones({h}, dtype, device);
    l.post_norm = ones({h}, dtype, device);
    l.q = w({q, h});
    l.k = w({kv, h});
    l.v = w({kv, h});
    l.o = w({h, q});
    l.q_bias = w({q});
    l.k_bias = w({kv});
    l.v_bias = w({kv});
    l.gate = w({f, h});
    l.up = w({f, h});
    l.down = w({h, f});
    m.layers.push_back(l);
  }
  m.inv_freq = models::rope_frequencies(c, device);
  return m;
}

// Greedy decode of `new_tokens` after a prompt of `prompt` tokens, batch `batch`: tokens/s.
double decode_tokens_per_second(const models::DecoderModel& m, int64_t batch, int64_t prompt, int64_t new_tokens) {
  NoGradGuard no_grad;
  double top = double(std::min<int64_t>(m.config().vocab_size, 150000) - 1);
  Tensor ids = astype(uniform({batch, prompt}, 0, top, Dtype::F32, m.device()), Dtype::I64);
  auto run = [&](int64_t n) {
    models::KVCache cache = m.make_cache(batch, prompt + n);
    Tensor logits = m.forward(ids, &cache);
    for (int64_t i = 0; i < n; ++i) {
      Tensor next = argmax(narrow(logits, 1, logits.shape(1) - 1, 1), -1);
      next.to_vector<int64_t>();  // the host sees each token, as a streaming generator does
      logits = m.forward(next, &cache);
    }
    synchronize(m.device());
  };
  run(4);
  double t0 = now();
  run(0);
  double prefill = now() - t0;
  t0 = now();
  run(new_tokens);
  double total = now() - t0;
  return double(batch * new_tokens) / (total - prefill);
}

double prefill_ms(const models::DecoderModel& m, int64_t tokens) {
  NoGradGuard no_grad;
  Tensor ids = astype(uniform({1, tokens}, 0, 150000, Dtype::F32, m.device()), Dtype::I64);
  for (int i = 0; i < 3; ++i) m.forward(ids).eval();
  synchronize(m.device());
  double t0 = now();
  const int reps = 10;
  for (int i = 0; i < reps; ++i) m.forward(ids).eval();
  synchronize(m.device());
  return (now() - t0) / reps * 1e3;
}

models::EncoderModel minilm(Device device, Dtype dtype) {
  models::EncoderConfig c;
  c.model_type = "bert";
  c.vocab_size = 30522;
  c.hidden_size = 384;
  c.intermediate_size = 1536;
  c.num_layers = 6;
  c.num_heads = 12;
  c.max_position_embeddings = 512;
  c.type_vocab_size = 2;
  models::EncoderModel m(c, device, dtype);
  auto w = [&](Shape s) { return normal(s, 0, 0.02, dtype, device); };
  int64_t h = c.hidden_size, f = c.intermediate_size;
  m.word_embeddings = w({c.vocab_size, h});
  m.position_embeddings = w({c.max_position_embeddings, h});
  m.token_type_embeddings = w({c.type_vocab_size, h});
  m.embed_norm_w = ones({h}, dtype, device);
  m.embed_norm_b = zeros({h}, dtype, device);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    models::EncoderLayer l;
    l.q = w({h, h}), l.k = w({h, h}), l.v = w({h, h}), l.o = w({h, h});
    l.q_b = w({h}), l.k_b = w({h}), l.v_b = w({h}), l.o_b = w({h});
    l.attn_norm_w = ones({h}, dtype, device), l.attn_norm_b = zeros({h}, dtype, device);
    l.up = w({f, h}), l.up_b = w({f}), l.down = w({h, f}), l.down_b = w({h});
    l.out_norm_w = ones({h}, dtype, device), l.out_norm_b = zeros({h}, dtype, device);
    m.layers.push_back(l);
  }
  return m;
}

// Documents per second: batch x seq token ids (all real tokens), mean pooling and L2 norm.
double embed_docs_per_second(const models::EncoderModel& m, int64_t batch, int64_t seq) {
  NoGradGuard no_grad;
  Tensor ids = astype(uniform({batch, seq}, 1000, 30000, Dtype::F32, m.device()), Dtype::I64);  // in MiniLM's vocabulary
  Tensor mask = ones({batch, seq}, Dtype::I64, m.device());
  auto once = [&] { models::l2_normalize(models::pool(m.forward(ids, mask), mask, models::Pooling::Mean)).to_vector<float>(); };
  for (int i = 0; i < 3; ++i) once();
  double t0 = now();
  const int reps = 20;
  for (int i = 0; i < reps; ++i) once();
  return double(batch * reps) / (now() - t0);
}

// LoRA training step (PERFORMANCE.md D(ii)): batch 8 x 512 tokens, rank 16 on all seven
// projections, AdamW; tokens/s and peak device memory.
struct TrainFigures {
  double tokens_per_second = 0, peak_gib = 0, forward_gib = 0;
};

// `lazy`: the step is recorded as a graph and evaluated at once (intermediates freed after their
// last use); eager: ops run as created. forward_gib: device memory in use when the forward is done
// (eager only), the activations kept for the backward.
// `fused_loss`: the LM head and the loss as one chunked op, as wick train runs them by default.
TrainFigures train_tokens_per_second(const models::DecoderModel& m, int64_t rank, std::vector<std::string> modules,
                                     bool lazy, bool checkpoint_layers, bool fused_loss) {
  lora::LoraConfig cfg;
  cfg.r = rank;
  cfg.alpha = 2.0 * double(rank);
  cfg.target_modules = std::move(modules);
  lora::Adapter adapter = lora::Adapter::init(m, cfg, 0);
  std::vector<Tensor> params = adapter.parameters();
  train::AdamW opt({.lr = 1e-4});
  const int64_t batch = 8, seq = 512;
  Tensor ids = astype(uniform({batch, seq}, 0, 150000, Dtype::F32, m.device()), Dtype::I64);
  const int64_t targets = batch * (seq - 1);
  double forward_bytes = 0;
  bool measure_forward = false;
  std::optional<ExecModeScope> mode;
  if (lazy) mode.emplace(ExecMode::Lazy);
  auto step = [&] {
    auto [loss, grads] = value_and_grad(
        [&](const std::vector<Tensor>& p) {
          std::vector<Tensor> cast = astype_all(p, m.dtype());  // as wick train casts them
          models::LoraDeltas d = adapter.deltas(&cast);
          // As wick train runs it: the fused LM head and loss, or the logits in the model's dtype.
          models::ForwardOptions fo{.logits_in_compute_dtype = true,
                                    .final_hidden_states = fused_loss,
                                    .checkpoint_layers = checkpoint_layers};
          Tensor out = m.forward(ids, nullptr, std::nullopt, std::nullopt, &d, fo);
          Tensor l = fused_loss ? train::causal_lm_loss_sum(out, m.lm_head, ids) / double(targets)
                                : train::causal_lm_loss(out, ids);
          if (measure_forward && !lazy && m.device().is_cuda()) {
            synchronize(m.device());
            forward_bytes = std::max(forward_bytes, double(cuda::memory_stats(m.device().index).active));
          }
          return l;
        },
        params);
    opt.step(params, grads);
    if (lazy) {
      std::vector<Tensor> all = params;
      all.push_back(loss);
      eval(all);
    }
    loss.item<double>();
  };
  step();
  step();
  synchronize(m.device());
  if (m.device().is_cuda()) cuda::reset_peak_memory(m.device().index);
  if (m.device().is_cuda()) cuda::profile_reset();
  double t0 = now();
  const int reps = 5;
  for (int i = 0; i < reps; ++i) step();
  synchronize(m.device());
  if (m.device().is_cuda()) cuda::profile_report();  // with WICK_PROFILE=1: GPU time of the timed steps
  double secs = now() - t0;
  double peak = m.device().is_cuda() ? double(cuda::memory_stats(m.device().index).peak) / (1 << 30) : 0.0;
  measure_forward = true;
  step();
  return {double(batch * seq * reps) / secs, peak, forward_bytes / (1 << 30)};
}

// Packing (issue 16): 64 examples of 32 to 512 tokens, one epoch of wick's training loop
// (train_lora, batches of 8 rows, rank 16 on all seven projections) padded and packed into rows of
// 512; real tokens/s (padding not counted) and peak memory of each. Then each example of the
// first packed rows against itself alone (evaluate_loss; the row's other examples carry no
// targets): the largest difference of per-example mean loss.
void packing_figures(const models::DecoderModel& m) {
  std::mt19937 rng(7);
  std::vector<train::Example> examples;
  int64_t real = 0;
  for (int i = 0; i < 64; ++i) {
    train::Example e;
    int n = 32 + int(rng() % 481);
    for (int k = 0; k < n; ++k) e.ids.push_back(int32_t(rng() % 150000));
    e.labels = e.ids;
    e.line = i + 1;
    real += n;
    examples.push_back(e);
  }
  std::vector<train::Example> rows = train::pack_examples(examples, 512);
  lora::LoraConfig cfg;
  cfg.r = 16;
  cfg.alpha = 32;
  cfg.target_modules = {"all-linear"};
  auto epoch = [&](const std::vector<train::Example>& data, double* peak) {
    train::TrainOptions o;
    o.batch_size = 8;
    o.shuffle = false;
    o.adamw.lr = 1e-4;
    lora::Adapter adapter = lora::Adapter::init(m, cfg, 0);
    o.steps = 2;  // warm-up: kernels, plans, allocator
    train::train_lora(m, adapter, data, {}, o);
    synchronize(m.device());
    if (m.device().is_cuda()) cuda::reset_peak_memory(m.device().index);
    o.steps = (int64_t(data.size()) + 7) / 8;
    double t0 = now();
    train::train_lora(m, adapter, data, {}, o);
    synchronize(m.device());
    double secs = now() - t0;
    *peak = m.device().is_cuda() ? double(cuda::memory_stats(m.device().index).peak) / (1 << 30) : 0.0;
    return double(real) / secs;
  };
  double padded_peak = 0, packed_peak = 0;
  double padded = epoch(examples, &padded_peak);
  double packed = epoch(rows, &packed_peak);
  lora::Adapter adapter = lora::Adapter::init(m, cfg, 0);
  double worst = 0;
  int compared = 0;
  for (size_t r = 0; r < std::min<size_t>(rows.size(), 2); ++r)
    for (size_t s = 0; s < rows[r].starts.size(); ++s) {
      const train::Example& row = rows[r];
      size_t begin = size_t(row.starts[s]);
      size_t end = s + 1 < row.starts.size() ? size_t(row.starts[s + 1]) : row.ids.size();
      train::Example only = row, alone;
      for (size_t j = 0; j < only.labels.size(); ++j)
        if (j < begin || j >= end) only.labels[j] = -100;
      alone.ids.assign(row.ids.begin() + long(begin), row.ids.begin() + long(end));
      alone.labels = alone.ids;
      worst = std::max(worst, std::abs(train::evaluate_loss(m, adapter, {only}, 1) -
                                       train::evaluate_loss(m, adapter, {alone}, 1)));
      ++compared;
    }
  std::printf("{\"device\": \"%s\", \"dtype\": \"%s\", \"mode\": \"packing\", \"examples\": %zu, \"real_tokens\": %lld, "
              "\"packed_rows\": %zu, \"padded_real_tok_s\": %.1f, \"packed_real_tok_s\": %.1f, \"packed_over_padded\": %.3f, "
              "\"padded_peak_gib\": %.2f, \"packed_peak_gib\": %.2f, \"examples_compared\": %d, "
              "\"max_example_loss_diff\": %.2e}\n",
              m.device().str().c_str(), dtype_name(m.dtype()), examples.size(), (long long)real, rows.size(), padded,
              packed, packed / padded, padded_peak, packed_peak, compared, worst);
}

}  // namespace

int main(int argc, char** argv) {
  Device device = best_device();
  Dtype dtype = Dtype::BF16;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--device")) device = Device::parse(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dtype")) dtype = parse_dtype(argv[i + 1]);
  }
  manual_seed(0);
  // Real models (PERFORMANCE.md F): --gguf FILE (decode tokens/s, batch 1, prompt 32, 64 new
  // tokens) and --minilm DIR (docs/s at 100 x 16).
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--gguf")) {
      auto real = models::DecoderModel::load_gguf(argv[i + 1], device, dtype);
      std::printf("{\"device\": \"%s\", \"dtype\": \"%s\", \"model\": \"%s\", \"decode_b1_tok_s\": %.1f}\n",
                  device.str().c_str(), dtype_name(dtype), argv[i + 1], decode_tokens_per_second(real, 1, 32, 64));
      return 0;
    }
    if (!std::strcmp(argv[i], "--minilm")) {
      auto real = models::EncoderModel::load(argv[i + 1], device, Dtype::F32);
      std::printf("{\"device\": \"%s\", \"model\": \"%s\", \"embed_100x16_docs_s\": %.1f, \"embed_1x16_docs_s\": %.1f}\n",
                  device.str().c_str(), argv[i + 1], embed_docs_per_second(real, 100, 16), embed_docs_per_second(real, 1, 16));
      return 0;
    }
  }
  auto m = qwen05b(device, dtype);
  for (int i = 1; i < argc; ++i)
    if (!std::strcmp(argv[i], "--train")) {
      bool lazy = false, ckpt = false, unfused = false, qv = false;
      std::string quant;  // --quantize q4_0|q8_0: the projections kept as blocks (QLoRA-style)
      for (int j = 1; j < argc; ++j) {
        lazy = lazy || !std::strcmp(argv[j], "--lazy");
        ckpt = ckpt || !std::strcmp(argv[j], "--checkpoint");
        unfused = unfused || !std::strcmp(argv[j], "--unfused-loss");
        qv = qv || !std::strcmp(argv[j], "--qv");
        if (!std::strcmp(argv[j], "--quantize") && j + 1 < argc) quant = argv[j + 1];
      }
      if (!quant.empty()) {
        ggml::GgmlType type = quant == "q8_0" ? ggml::GgmlType::Q8_0 : ggml::GgmlType::Q4_0;
        for (auto& l : m.layers)
          for (models::LinearWeight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) *w = quantize(w->dense(), type);
      }
      // As loading a model onto a GPU does (wick train): one block of memory, each layer's q, k, v
      // and gate, up back to back, which the forward runs as one product each.
      if (device.is_cuda()) {
        m.place_weights(device);
        cuda::empty_cache(device.index);
      }
      for (int j = 1; j < argc; ++j)
        if (!std::strcmp(argv[j], "--packing")) {
          packing_figures(m);
          return 0;
        }
      TrainFigures f = qv ? train_tokens_per_second(m, 8, {"q_proj", "v_proj"}, lazy, ckpt, !unfused)
                          : train_tokens_per_second(m, 16, {"all-linear"}, lazy, ckpt, !unfused);
      std::printf("{\"device\": \"%s\", \"dtype\": \"%s\", \"mode\": \"%s%s%s%s%s\", \"%s\": %.1f, "
                  "\"peak_gib\": %.2f, \"after_forward_gib\": %.2f, \"linear_weights_gib\": %.3f}\n",
                  device.str().c_str(), dtype_name(dtype), lazy ? "lazy" : "eager", ckpt ? "+checkpointing" : "", unfused ? "+unfused-loss" : "",
                  quant.empty() ? "" : "+base ", quant.c_str(), qv ? "train_r8_qv_tok_s" : "train_r16_all_linear_tok_s",
                  f.tokens_per_second, f.peak_gib, f.forward_gib,
                  double(m.linear_weight_bytes()) / (1 << 30));
      return 0;
    }
  double d1 = decode_tokens_per_second(m, 1, 128, 128);
  double d8 = decode_tokens_per_second(m, 8, 128, 128);
  double p128 = prefill_ms(m, 128), p512 = prefill_ms(m, 512);
  // Embeddings in f32 (the fp32 rows of the peer table) at batch 100 x 16 and 1 x 16.
  auto e = minilm(device, Dtype::F32);
  double e100 = embed_docs_per_second(e, 100, 16), e1 = embed_docs_per_second(e, 1, 16);
  std::printf("{\"device\": \"%s\", \"dtype\": \"%s\", \"decode_b1_tok_s\": %.1f, \"decode_b8_tok_s\": %.1f, "
              "\"prefill_128_ms\": %.2f, \"prefill_512_ms\": %.2f, \"embed_100x16_docs_s\": %.1f, "
              "\"embed_1x16_ms\": %.3f}\n",
              device.str().c_str(), dtype_name(dtype), d1, d8, p128, p512, e100, 1e3 / e1);
  return 0;
}
