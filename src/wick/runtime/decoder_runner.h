// The inference step of a decoder over a paged KV cache: one call runs any mix of prefill chunks
// and single-token decodes of many sequences (rows), each row with its own LoRA adapter or none,
// and returns the logits of each row's last new token. On CUDA, steps are padded to buckets of
// tokens and rows (powers of two) and each bucket is captured once as a CUDA graph and replayed. Generation (runtime/generator.h) and the
// server's scheduler (serve/) are built on this one path.
#pragma once

#include <map>
#include <tuple>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "wick/core/capture.h"
#include "wick/models/decoder.h"
#include "wick/models/lora_deltas.h"
#include "wick/runtime/kv_pool.h"

namespace wick::runtime {

struct RunnerOptions {
  int64_t max_batch = 64;      // rows of one step
  int64_t max_context = 4096;  // positions of one sequence (prompt + generated)
  int64_t block_size = 16;     // positions per KV block
  int64_t num_blocks = 0;      // KV blocks in the pool; 0: enough for max_batch full sequences
  int max_loras = 0;           // adapters resident at once (slots); 0: no adapters
  int64_t max_lora_rank = 16;  // adapters of larger rank are refused
  bool cuda_graphs = true;     // replay steps as CUDA graphs (CUDA only)
  int64_t graph_max_tokens = 2048;  // steps of up to this many tokens are captured (per bucket)
};

// The new tokens of one sequence in a step. `blocks` must cover positions start .. start+len-1.
struct StepRow {
  const std::vector<int32_t>* blocks = nullptr;
  int64_t start = 0;                // tokens of the sequence already in the cache
  std::span<const int32_t> tokens;  // its new tokens (1 when decoding)
  int adapter_slot = -1;            // -1: the base model alone
};

// Projections that read the same input (q, k, v; gate, up) as few products as their weights allow:
// consecutive parts of the same kind, block type and dtype are stacked into one weight (all of them
// in the usual case; a GGUF file may store v in another type than q and k). Each group's bias joins
// its product's epilogue.
struct PackedProjection {
  std::vector<models::LinearWeight> groups;
  std::vector<std::optional<Tensor>> biases;  // per group
  std::vector<int> group_parts;               // parts per group, in order
  std::vector<int64_t> part_rows;             // output columns of each part
};

// The projections of a layer as the step runs them.
struct PackedLayer {
  Tensor input_norm, post_norm;
  PackedProjection qkv, gate_up;
  models::LinearWeight o, down;
  std::optional<Tensor> o_bias;
};

// Stacked LoRA matrices of the resident adapters, per layer and fused projection (see
// core/ops/lora_gather.h): q/k/v share one stack, gate/up another. Their A matrices stack along the
// rank; their B matrices along the outputs, each with its own rank columns (the expand is told the
// parts' widths).
class AdapterSlots {
 public:
  AdapterSlots() = default;
  AdapterSlots(const models::DecoderConfig& config, int slots, int64_t max_rank, Dtype dtype, Device device);
  int capacity() const { return int(names_.size()); }
  int64_t max_rank() const { return rank_; }
  // The slot holding `name`, or -1.
  int find(const std::string& name) const;
  // Copies the adapter's matrices into a free slot and returns it; throws when none is free or a
  // module's rank exceeds max_rank. Modules the adapter lacks stay zero.
  int load(const std::string& name, const models::LoraDeltas& deltas);
  void unload(const std::string& name);
  std::vector<std::string> names() const;

  struct Stack {
    Tensor a, b;  // [S, P r, in], [S, out, r] for a stack of P projections
  };
  // The widths of group g's output parts for lora_gather_expand (empty: one part).
  std::vector<int64_t> parts(int group) const;
  // Per layer: qkv, o, gate_up, down.
  std::vector<std::array<Stack, 4>> layers;
  Tensor scales;  // [S] f32

 private:
  models::DecoderConfig config_;
  int64_t rank_ = 0;
  Dtype dtype_ = Dtype::F32;
  std::vector<std::string> names_;  // "" = free
};

class DecoderRunner {
 public:
  // Packs `model`'s projections for the step (the model keeps views of the packed tensors, so it
  // still runs forward(), merges and adapter checks, with no extra memory) and allocates the KV
  // pool. The model must outlive the runner.
  DecoderRunner(models::DecoderModel& model, const RunnerOptions& options);

  const models::DecoderModel& model() const { return *model_; }
  const RunnerOptions& options() const { return options_; }
  BlockAllocator& blocks() { return allocator_; }
  AdapterSlots& adapters() { return slots_; }
  const KVPool& kv_pool() const { return pool_; }

  // Runs one step and returns the logits [rows.size(), vocab] (f32, on the model's device) of each
  // row's last new token. Errors name the row for bad input (no tokens, blocks not covering the
  // positions, a context past max_context, an empty slot).
  Tensor step(const std::vector<StepRow>& rows);

 private:
  struct StepInputs {
    Tensor tokens, positions, positions_2d, rows, slots, tables, last;  // views of one buffer
  };
  struct GraphBucket {
    Tensor buffer;  // i32 static inputs
    StepInputs inputs;
    CapturedGraph graph;
  };
  // Lays the rows out as the step's i32 inputs in host memory, padded to `tokens` tokens and `rows`
  // rows (0: no padding). Padding tokens belong to the first padding row, whose block table is all
  // zeros: they write to the reserved block 0 and their logits are ignored.
  std::vector<int32_t> layout(const std::vector<StepRow>& rows, int64_t tokens, int64_t padded_rows) const;
  StepInputs views_of(const Tensor& buffer, int64_t tokens, int64_t rows) const;
  Tensor forward(const StepInputs& in, bool with_lora);

  models::DecoderModel* model_;
  RunnerOptions options_;
  std::vector<PackedLayer> layers_;
  KVPool pool_;
  BlockAllocator allocator_;
  AdapterSlots slots_;
  int64_t table_width_ = 0;
  std::map<std::tuple<int64_t, int64_t, bool>, GraphBucket> graphs_;  // (tokens, rows, with LoRA) -> graph
};

// The smallest power of two >= n.
int64_t bucket_of(int64_t n);

}  // namespace wick::runtime
