// The decoder's inference step over the paged KV cache (see decoder_runner.h).
#include "wick/runtime/decoder_runner.h"

#include <algorithm>
#include <cstring>

#include "wick/core/autograd.h"
#include "wick/core/backend_hooks.h"
#include "wick/core/graph.h"
#include "wick/core/ops.h"
#include "wick/core/quantized.h"

namespace wick::runtime {

using models::LinearWeight;

namespace {

// Rows [offset, offset + rows) of a weight, sharing its memory.
LinearWeight rows_of(const LinearWeight& w, int64_t offset, int64_t rows) {
  return models::with_memory(w, narrow(w.memory(), 0, offset, rows));
}

// Tensors stacked along their first dimension: a view when they already lie back to back (as the
// loader places a layer's q, k, v and gate, up on the GPU), else a copy.
Tensor stacked_rows(const std::vector<const Tensor*>& parts) {
  if (std::optional<Tensor> view = models::stacked_view(parts)) return *view;
  std::vector<Tensor> copies;
  for (const Tensor* p : parts) copies.push_back(*p);
  return concat(copies, 0).eval();
}

// The parts stacked along their rows as one weight (they are stackable). Each part is replaced by
// its rows of the stack, so no memory is kept twice.
LinearWeight stack(const std::vector<LinearWeight*>& parts) {
  std::vector<const Tensor*> memory;
  for (LinearWeight* p : parts) memory.push_back(&p->memory());
  LinearWeight fused = models::with_memory(*parts[0], stacked_rows(memory));
  int64_t offset = 0;
  for (LinearWeight* p : parts) {
    int64_t n = p->shape()[0];
    *p = rows_of(fused, offset, n);
    offset += n;
  }
  return fused;
}

// Groups runs of stackable parts (see PackedProjection); biases: one per part, or none at all.
PackedProjection pack(const std::vector<LinearWeight*>& parts, const std::vector<const std::optional<Tensor>*>& biases) {
  PackedProjection pp;
  for (size_t i = 0; i < parts.size();) {
    size_t j = i + 1;
    while (j < parts.size() && models::stackable(*parts[i], *parts[j])) ++j;
    std::vector<LinearWeight*> run(parts.begin() + long(i), parts.begin() + long(j));
    pp.groups.push_back(run.size() == 1 ? *run[0] : stack(run));
    std::optional<Tensor> bias;
    if (!biases.empty() && biases[i]->has_value()) {
      std::vector<const Tensor*> b;
      for (size_t k = i; k < j; ++k) b.push_back(&biases[k]->value());
      bias = b.size() == 1 ? *b[0] : stacked_rows(b);
    }
    pp.biases.push_back(bias);
    pp.group_parts.push_back(int(j - i));
    for (size_t k = i; k < j; ++k) pp.part_rows.push_back(parts[k]->shape()[0]);
    i = j;
  }
  return pp;
}

// Columns [offset, offset + rows) of each part, cut from `outs`: one tensor per group, or one
// tensor holding every part.
std::vector<Tensor> cut_parts(const PackedProjection& pp, const std::vector<Tensor>& outs) {
  std::vector<Tensor> parts;
  size_t part = 0;
  int64_t offset = 0;
  for (size_t g = 0; g < pp.groups.size(); ++g) {
    const Tensor& y = outs.size() == 1 ? outs[0] : outs[g];
    if (outs.size() > 1) offset = 0;
    for (int k = 0; k < pp.group_parts[g]; ++k, ++part) {
      parts.push_back(narrow(y, 1, offset, pp.part_rows[part]));
      offset += pp.part_rows[part];
    }
  }
  return parts;
}

constexpr const char* kProjections[7] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

// Where each of kProjections lies in the stacks: its group (0 qkv, 1 o, 2 gate_up, 3 down), its rank
// block and output rows in the group, and its input width.
struct Place {
  int group, rank_block;
  int64_t out_offset, out, in;
};
std::array<Place, 7> places_of(const models::DecoderConfig& c) {
  int64_t h = c.hidden_size, qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim, inter = c.intermediate_size;
  return {{{0, 0, 0, qd, h}, {0, 1, qd, kvd, h}, {0, 2, qd + kvd, kvd, h}, {1, 0, 0, h, qd},
           {2, 0, 0, inter, h}, {2, 1, inter, inter, h}, {3, 0, 0, h, inter}}};
}

}  // namespace

int64_t bucket_of(int64_t n) {
  int64_t b = 1;
  while (b < n) b *= 2;
  return b;
}

// ---------------------------------------------------------------- adapter slots
AdapterSlots::AdapterSlots(const models::DecoderConfig& c, int slots, int64_t max_rank, Dtype dtype, Device device)
    : config_(c), rank_(max_rank), dtype_(dtype), names_(static_cast<size_t>(slots)) {
  WICK_CHECK(slots >= 0 && max_rank >= 1, "adapter slots: need slots >= 0 and a positive max rank, got ", slots, " and ",
             max_rank);
  if (slots == 0) return;
  int64_t h = c.hidden_size, qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim,
          inter = c.intermediate_size, r = max_rank, s = slots;
  auto stack = [&](int64_t ranks, int64_t in, int64_t out) {
    return Stack{zeros({s, ranks, in}, dtype, device).eval(), zeros({s, out, r}, dtype, device).eval()};
  };
  for (int64_t l = 0; l < c.num_layers; ++l)
    layers.push_back({stack(3 * r, h, qd + 2 * kvd), stack(r, qd, h), stack(2 * r, h, 2 * inter), stack(r, inter, h)});
  scales = zeros({s}, Dtype::F32, device).eval();
}

std::vector<int64_t> AdapterSlots::parts(int group) const {
  std::vector<int64_t> widths;
  for (const Place& p : places_of(config_))
    if (p.group == group) widths.push_back(p.out);
  if (widths.size() == 1) widths.clear();
  return widths;
}

int AdapterSlots::find(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return int(i);
  return -1;
}

std::vector<std::string> AdapterSlots::names() const {
  std::vector<std::string> out;
  for (const std::string& n : names_)
    if (!n.empty()) out.push_back(n);
  return out;
}

void AdapterSlots::unload(const std::string& name) {
  int s = find(name);
  WICK_CHECK(s >= 0, "adapter '", name, "' is not resident");
  names_[s].clear();
}

int AdapterSlots::load(const std::string& name, const models::LoraDeltas& deltas) {
  WICK_CHECK(!name.empty(), "adapter slots: an adapter needs a name");
  WICK_CHECK(find(name) < 0, "adapter '", name, "' is already resident");
  int slot = find("");
  WICK_CHECK(slot >= 0, "adapter '", name, "': all ", capacity(), " adapter slots are in use (raise --max-loras)");
  // One scale for the slot when every module shares it (PEFT's usual alpha / r); otherwise each
  // module's scale is folded into its B and the slot's scale is 1.
  std::optional<double> common;
  bool shared = true;
  for (const auto& [module, d] : deltas) {
    if (!common) common = d.scale;
    shared = shared && d.scale == *common;
  }
  double slot_scale = shared && common ? *common : 1.0;
  const models::DecoderConfig& c = config_;
  int64_t r = rank_;
  const std::array<Place, 7> places = places_of(c);
  size_t used = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    std::array<std::vector<float>, 4> a_slab, b_slab;
    for (int g = 0; g < 4; ++g) {
      const Stack& st = layers[l][g];
      a_slab[g].assign(size_t(st.a.shape(1) * st.a.shape(2)), 0.f);
      b_slab[g].assign(size_t(st.b.shape(1) * st.b.shape(2)), 0.f);
    }
    for (int m = 0; m < 7; ++m) {
      auto it = deltas.find(models::DecoderModel::module_name(l, kProjections[m]));
      if (it == deltas.end()) continue;
      ++used;
      const models::LoraDelta& d = it->second;
      const Place& p = places[m];
      int64_t rm = d.a.shape(0);
      WICK_CHECK(d.a.ndim() == 2 && d.b.ndim() == 2 && d.a.shape(1) == p.in && d.b.shape(0) == p.out &&
                     d.b.shape(1) == rm,
                 "adapter '", name, "': ", it->first, " has A ", shape_str(d.a.shape()), " and B ", shape_str(d.b.shape()),
                 ", expected [r, ", p.in, "] and [", p.out, ", r]");
      WICK_CHECK(rm <= r, "adapter '", name, "': ", it->first, " has rank ", rm, ", over the resident maximum ", r,
                 " (raise the maximum LoRA rank)");
      std::vector<float> a = d.a.to_vector<float>(), b = d.b.to_vector<float>();
      double fold = shared ? 1.0 : d.scale;
      for (int64_t i = 0; i < rm; ++i)
        std::copy_n(a.begin() + i * p.in, p.in, a_slab[p.group].begin() + (p.rank_block * r + i) * p.in);
      for (int64_t o = 0; o < p.out; ++o)
        for (int64_t i = 0; i < rm; ++i)
          b_slab[p.group][(p.out_offset + o) * r + i] = float(b[o * rm + i] * fold);
    }
    for (int g = 0; g < 4; ++g) {
      Stack& st = layers[l][g];
      for (auto [dst, slab] : {std::pair{&st.a, &a_slab[g]}, std::pair{&st.b, &b_slab[g]}}) {
        Tensor host = astype(Tensor::from_vector(*slab, {int64_t(slab->size())}, Device::cpu()), dtype_).eval();
        size_t bytes = slab->size() * dtype_size(dtype_);
        copy_bytes(static_cast<uint8_t*>(dst->data_ptr()) + slot * bytes, dst->device(), host.data_ptr(), Device::cpu(),
                   bytes);
      }
    }
  }
  WICK_CHECK(used == deltas.size(), "adapter '", name, "': ", deltas.size() - used,
             " of its modules are not projections of this model's layers");
  float sc = float(slot_scale);
  copy_bytes(static_cast<uint8_t*>(scales.data_ptr()) + slot * sizeof(float), scales.device(), &sc, Device::cpu(),
             sizeof(float));
  names_[slot] = name;
  return slot;
}

// ---------------------------------------------------------------- the runner
DecoderRunner::DecoderRunner(models::DecoderModel& model, const RunnerOptions& options)
    : model_(&model), options_(options) {
  const models::DecoderConfig& c = model.config();
  WICK_CHECK(options.max_batch >= 1 && options.block_size >= 1 && options.max_context >= 1,
             "runner: max_batch, block_size and max_context must be positive");
  if (c.max_position_embeddings > 0) options_.max_context = std::min(options_.max_context, c.max_position_embeddings);
  table_width_ = blocks_for(options_.max_context, options_.block_size);
  int64_t num_blocks = options.num_blocks > 0 ? options.num_blocks : options_.max_batch * table_width_ + 1;
  NoGradGuard no_grad;
  for (models::DecoderLayer& l : model.layers) {
    PackedLayer p;
    p.input_norm = l.input_norm;
    p.post_norm = l.post_norm;
    if (l.q_bias) WICK_CHECK(l.k_bias && l.v_bias, "runner: layer with a q bias but no k or v bias");
    p.qkv = pack({&l.q, &l.k, &l.v}, l.q_bias ? std::vector<const std::optional<Tensor>*>{&l.q_bias, &l.k_bias, &l.v_bias}
                                               : std::vector<const std::optional<Tensor>*>{});
    p.o = l.o;
    p.o_bias = l.o_bias;
    p.gate_up = pack({&l.gate, &l.up}, {});
    p.down = l.down;
    layers_.push_back(std::move(p));
  }
  pool_ = make_kv_pool(c.num_layers, num_blocks, c.num_kv_heads, options_.block_size, c.head_dim, model.dtype(),
                       model.device());
  allocator_ = BlockAllocator(num_blocks);
  slots_ = AdapterSlots(c, options.max_loras, options.max_lora_rank, model.dtype(), model.device());
}

std::vector<int32_t> DecoderRunner::layout(const std::vector<StepRow>& rows, int64_t tokens,
                                           int64_t padded_rows) const {
  int64_t r = int64_t(rows.size()), real = 0;
  for (const StepRow& row : rows) real += int64_t(row.tokens.size());
  int64_t n = std::max(tokens, real), nr = std::max(padded_rows, r);
  WICK_CHECK(n == real || nr > r, "runner: padding tokens need a padding row");
  // [tokens N][positions N][rows N][slots N][last R][tables R * W]
  std::vector<int32_t> buf(size_t(4 * n + nr + nr * table_width_), 0);
  int32_t* token_ids = buf.data();
  int32_t* positions = token_ids + n;
  int32_t* token_rows = positions + n;
  int32_t* slots = token_rows + n;
  int32_t* last = slots + n;
  int32_t* tables = last + nr;
  int64_t t = 0;
  for (int64_t i = 0; i < r; ++i) {
    const StepRow& row = rows[i];
    for (size_t j = 0; j < row.tokens.size(); ++j, ++t) {
      token_ids[t] = row.tokens[j];
      positions[t] = int32_t(row.start + int64_t(j));
      token_rows[t] = int32_t(i);
      slots[t] = row.adapter_slot;
    }
    std::copy(row.blocks->begin(), row.blocks->end(), tables + i * table_width_);
    last[i] = int32_t(t - 1);
  }
  // Padding: tokens 0 at positions 0, 1, ... of row r (an all-zero table row: the reserved block 0).
  int64_t capacity = table_width_ * options_.block_size;
  for (int64_t j = 0; t < n; ++t, ++j) {
    positions[t] = int32_t(j % capacity);
    token_rows[t] = int32_t(r);
    slots[t] = -1;
  }
  for (int64_t i = r; i < nr; ++i) last[i] = int32_t(n - 1);
  return buf;
}

DecoderRunner::StepInputs DecoderRunner::views_of(const Tensor& buffer, int64_t n, int64_t r) const {
  StepInputs in;
  in.tokens = narrow(buffer, 0, 0, n);
  in.positions = narrow(buffer, 0, n, n);
  in.rows = narrow(buffer, 0, 2 * n, n);
  in.slots = narrow(buffer, 0, 3 * n, n);
  in.last = narrow(buffer, 0, 4 * n, r);
  in.tables = reshape(narrow(buffer, 0, 4 * n + r, r * table_width_), {r, table_width_});
  return in;
}

Tensor DecoderRunner::forward(const StepInputs& in, bool with_lora) {
  const models::DecoderModel& m = *model_;
  const models::DecoderConfig& c = m.config();
  int64_t n = in.tokens.shape(0), qd = c.num_heads * c.head_dim, d = c.head_dim;
  // An adapter update in two halves (core/ops/lora_gather.h): the shrink t of a projection's
  // input, then the expand of t. The expand runs before the product, right behind the kernel that
  // made t (on CUDA a programmatic dependent of it, where after the product it would wait for the
  // product's last block), into the buffer the product then adds in its epilogue: the update alone
  // (lora_gather_delta) for q/k/v and gate/up, the residual stream plus the update for o and down.
  // A row without adapter adds zeros: its values are those of a step without adapters. On the CPU,
  // with no launches to overlap, the update is added after the product (one pass less).
  const bool update_first = m.device().is_cuda();
  auto shrink = [&](const Tensor& x, int64_t l, int group) {
    return lora_gather_shrink(x, in.slots, slots_.layers[l][group].a);
  };
  auto expand = [&](Tensor y, const Tensor& t, int64_t l, int group) {
    return lora_gather_expand(std::move(y), t, in.slots, slots_.layers[l][group].b, slots_.scales, slots_.parts(group));
  };
  // The normalised input of a packed projection; with adapters its shrink `t` comes from the same
  // launch (the normalised rows are rms_norm's bit for bit; down's input comes likewise from
  // swiglu_lora_shrink).
  auto norm = [&](const Tensor& x, const Tensor& w, int64_t l, int group, Tensor* t) {
    if (!with_lora) return rms_norm(x, w, c.rms_norm_eps);
    std::vector<Tensor> ht = rms_norm_lora_shrink(x, w, c.rms_norm_eps, in.slots, slots_.layers[l][group].a);
    *t = ht[1];
    return ht[0];
  };
  // The parts' outputs of a packed projection: one product per group; with adapters the update
  // joins the product's epilogue when the projection is one group, else the groups' outputs are
  // joined and the update added after them, as the stacked LoRA update covers all parts at once.
  auto project = [&](const PackedProjection& pp, const Tensor& h, const Tensor& t, int64_t l, int group) {
    std::vector<Tensor> outs;
    if (with_lora && update_first && pp.groups.size() == 1) {
      Tensor d = lora_gather_delta(t, in.slots, slots_.layers[l][group].b, slots_.scales, slots_.parts(group));
      outs.push_back(models::linear_add(h, pp.groups[0], pp.biases[0], std::move(d)));
      return cut_parts(pp, outs);
    }
    for (size_t g = 0; g < pp.groups.size(); ++g)
      outs.push_back(models::linear_add(h, pp.groups[g], pp.biases[g], std::nullopt));
    if (!with_lora) return cut_parts(pp, outs);
    Tensor y = outs.size() == 1 ? std::move(outs[0]) : concat(outs, 1);
    outs.clear();  // y's buffer is the expand's to write in place
    return cut_parts(pp, {expand(std::move(y), t, l, group)});
  };
  Tensor x = m.embed_rows(in.tokens);
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const PackedLayer& p = layers_[l];
    Tensor t;
    Tensor h = norm(x, p.input_norm, l, 0, &t);
    std::vector<Tensor> qkv = project(p.qkv, h, t, l, 0);
    Tensor q = reshape(qkv[0], {n, c.num_heads, d});  // rotated inside the attention
    Tensor k = reshape(qkv[1], {n, c.num_kv_heads, d});
    Tensor v = reshape(qkv[2], {n, c.num_kv_heads, d});
    const void* before = pool_.layers[l].data_ptr();
    pool_.layers[l] = paged_kv_write(std::move(pool_.layers[l]), k, v, in.tables, in.rows, in.positions, m.inv_freq).eval();
    // The pool is written in place; a copy would mean someone else holds it (and a captured graph
    // would go on writing the old buffer).
    WICK_CHECK(pool_.layers[l].data_ptr() == before, "runner: the KV pool of layer ", l,
               " was copied instead of written in place");
    Tensor a = paged_attention(q, pool_.layers[l], in.tables, in.rows, in.positions, table_width_ * options_.block_size,
                               std::nullopt, m.inv_freq);
    a = reshape(a, {n, qd});
    // The residual (with the adapter's update added first on CUDA) joins the product's epilogue.
    Tensor t_o = with_lora ? shrink(a, l, 1) : Tensor();
    if (with_lora && update_first) x = expand(std::move(x), t_o, l, 1);
    x = models::linear_add(a, p.o, p.o_bias, std::move(x));
    if (with_lora && !update_first) x = expand(std::move(x), t_o, l, 1);
    h = norm(x, p.post_norm, l, 2, &t);
    std::vector<Tensor> gu = project(p.gate_up, h, t, l, 2);
    Tensor act;
    if (with_lora) {
      std::vector<Tensor> at = swiglu_lora_shrink(gu[0], gu[1], in.slots, slots_.layers[l][3].a);
      act = at[0];
      t = at[1];
    } else {
      act = swiglu(gu[0], gu[1]);
    }
    if (with_lora && update_first) x = expand(std::move(x), t, l, 3);
    x = models::linear_add(act, p.down, std::nullopt, std::move(x));
    if (with_lora && !update_first) x = expand(std::move(x), t, l, 3);
  }
  Tensor last = rms_norm(take(x, in.last, 0), m.final_norm, c.rms_norm_eps);
  return astype(m.lm_head_product(last), Dtype::F32);
}

Tensor DecoderRunner::step(const std::vector<StepRow>& rows) {
  int64_t r = int64_t(rows.size());
  WICK_CHECK(r >= 1 && r <= options_.max_batch, "runner: a step takes 1 to ", options_.max_batch, " rows, got ", r);
  bool with_lora = false;
  int64_t num_blocks = pool_.num_blocks();
  for (int64_t i = 0; i < r; ++i) {
    const StepRow& row = rows[i];
    int64_t len = int64_t(row.tokens.size());
    WICK_CHECK(len >= 1, "runner: row ", i, " has no new tokens");
    WICK_CHECK(row.start >= 0 && row.start + len <= options_.max_context, "runner: row ", i, " reaches position ",
               row.start + len, ", past the context of ", options_.max_context);
    WICK_CHECK(row.blocks != nullptr && int64_t(row.blocks->size()) >= blocks_for(row.start + len, options_.block_size) &&
                   int64_t(row.blocks->size()) <= table_width_,
               "runner: row ", i, " has ", row.blocks ? row.blocks->size() : 0, " blocks for ", row.start + len,
               " positions (blocks of ", options_.block_size, ", at most ", table_width_, ")");
    for (int32_t b : *row.blocks)
      WICK_CHECK(b >= 1 && b < num_blocks, "runner: row ", i, " lists block ", b, ", outside 1..", num_blocks - 1);
    WICK_CHECK(row.adapter_slot >= -1 && row.adapter_slot < slots_.capacity(), "runner: row ", i, " uses adapter slot ",
               row.adapter_slot, " of ", slots_.capacity());
    with_lora = with_lora || row.adapter_slot >= 0;
  }
  NoGradGuard no_grad;
  ExecModeScope eager(ExecMode::Eager);
  Device device = model_->device();
  int64_t real = 0;
  for (const StepRow& row : rows) real += int64_t(row.tokens.size());
  // Profiling times each op with events around it, which a replayed graph cannot have.
  if (device.is_cuda() && options_.cuda_graphs && real <= options_.graph_max_tokens && !cuda::profiling()) {
    // Padded to a bucket of tokens and of rows (one more row when tokens need padding).
    int64_t tokens = bucket_of(real), padded_rows = bucket_of(tokens > real ? r + 1 : r);
    std::vector<int32_t> host = layout(rows, tokens, padded_rows);
    auto key = std::make_tuple(tokens, padded_rows, with_lora);
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
      GraphBucket g;
      g.buffer = Tensor::from_vector(host, {int64_t(host.size())}, device);
      g.inputs = views_of(g.buffer, tokens, padded_rows);
      g.graph = CapturedGraph::capture(device, [this, inputs = g.inputs, with_lora] {
        return std::vector<Tensor>{forward(inputs, with_lora)};
      });
      it = graphs_.emplace(key, std::move(g)).first;
    } else {
      copy_into(it->second.buffer, host.data(), host.size() * sizeof(int32_t));
      it->second.graph.replay();
    }
    return narrow(it->second.graph.outputs()[0], 0, 0, r);
  }
  std::vector<int32_t> host = layout(rows, 0, 0);
  Tensor buffer = Tensor::from_vector(host, {int64_t(host.size())}, device);
  return forward(views_of(buffer, real, r), with_lora).eval();
}

}  // namespace wick::runtime
