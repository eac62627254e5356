// Every primitive of the engine. Each class declares its evaluation on both backends
// (defined in backend/cpu and backend/cuda), its vjp (defined in core/vjp.cpp) and the properties
// of primitive.h that hold for it (fused_op, vjp_reads_output, in_place_input).
// Inputs arrive already validated and, for elementwise primitives, broadcast to one shape.
#pragma once

#include <optional>

#include "wick/base/ggml_quants.h"
#include "wick/core/elementwise_fns.h"
#include "wick/core/ops/linear.h"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/ops/paged_attention.h"
#include "wick/core/ops/sampling.h"
#include "wick/core/primitive.h"

namespace wick {

// ---------------------------------------------------------------- elementwise
template <class Fn>
class Unary : public Primitive {
 public:
  const char* name() const override { return Fn::name; }
  FusedOp fused_op() const override { return {FusedOp::Unary, uint8_t(fn::unary_id<Fn>::value)}; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& cotangent,
                          const std::vector<int>& argnums, const Tensor& out) override;
  bool vjp_reads_output() const override;  // per function, beside its vjp (vjp.cpp)
};

// Arithmetic (output dtype = input dtype) and comparisons (output bool); inputs share one shape.
template <class Fn>
class Binary : public Primitive {
 public:
  const char* name() const override { return Fn::name; }
  FusedOp fused_op() const override {
    if constexpr (requires { fn::arith_id<Fn>::value; }) return {FusedOp::Arith, uint8_t(fn::arith_id<Fn>::value)};
    return {};  // comparisons produce bool and end a fused chain
  }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>& inputs, const Tensor& cotangent,
                          const std::vector<int>& argnums, const Tensor& out) override;
  bool vjp_reads_output() const override;  // per function, beside its vjp (vjp.cpp)
};

// where(cond, a, b); cond is bool.
class Where : public Primitive {
 public:
  const char* name() const override { return "where"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// Copies the input into fresh contiguous memory of the output dtype (a cast, or a plain copy).
class AsType : public Primitive {
 public:
  const char* name() const override { return "astype"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// Moves data between devices (the output's device is the destination).
class ToDevice : public Primitive {
 public:
  const char* name() const override { return "to_device"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// Fills the output with a constant.
class Full : public Primitive {
 public:
  explicit Full(double value) : value_(value) {}
  const char* name() const override { return "full"; }
  double value() const { return value_; }
  WICK_DECLARE_EVAL
 private:
  double value_;
};

// start, start+step, ...
class Arange : public Primitive {
 public:
  Arange(double start, double step) : start_(start), step_(step) {}
  const char* name() const override { return "arange"; }
  double start() const { return start_; }
  double step() const { return step_; }
  WICK_DECLARE_EVAL
 private:
  double start_, step_;
};

// Counter-based random numbers: element i of the output depends only on (seed, counter + i), so
// the CPU and the GPU draw the same values.
enum class RandomKind { Uniform, Normal };
class Random : public Primitive {
 public:
  Random(RandomKind kind, uint64_t seed, uint64_t counter) : kind_(kind), seed_(seed), counter_(counter) {}
  const char* name() const override { return kind_ == RandomKind::Uniform ? "uniform" : "normal"; }
  RandomKind kind() const { return kind_; }
  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  WICK_DECLARE_EVAL
 private:
  RandomKind kind_;
  uint64_t seed_, counter_;
};

// ---------------------------------------------------------------- views (share the input's storage)
// Reshape is a view where the strides allow it, else a contiguous copy.
class Reshape : public Primitive {
 public:
  const char* name() const override { return "reshape"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

class Permute : public Primitive {
 public:
  explicit Permute(std::vector<int> perm) : perm_(std::move(perm)) {}
  const char* name() const override { return "permute"; }
  const std::vector<int>& perm() const { return perm_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  std::vector<int> perm_;
};

// Strided slice along every dim: element i of dim d is input[start[d] + i * step[d]] (step > 0).
class Slice : public Primitive {
 public:
  Slice(Shape start, Shape step) : start_(std::move(start)), step_(std::move(step)) {}
  const char* name() const override { return "slice"; }
  const Shape& start() const { return start_; }
  const Shape& step() const { return step_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  Shape start_, step_;
};

class BroadcastTo : public Primitive {
 public:
  const char* name() const override { return "broadcast_to"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// ---------------------------------------------------------------- reductions
// Reduce over `axes` (sorted, unique); the output keeps the reduced dims with size 1.
enum class ReduceKind { Sum, Max, Min };
class Reduce : public Primitive {
 public:
  Reduce(ReduceKind kind, std::vector<int> axes) : kind_(kind), axes_(std::move(axes)) {}
  const char* name() const override;
  ReduceKind kind() const { return kind_; }
  const std::vector<int>& axes() const { return axes_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  // max and min share the gradient among the elements equal to their output.
  bool vjp_reads_output() const override { return kind_ != ReduceKind::Sum; }
 private:
  ReduceKind kind_;
  std::vector<int> axes_;
};

// Index (i64) of the first maximum / minimum along `axis`; the output keeps that dim with size 1.
class ArgReduce : public Primitive {
 public:
  ArgReduce(bool is_max, int axis) : is_max_(is_max), axis_(axis) {}
  const char* name() const override { return is_max_ ? "argmax" : "argmin"; }
  bool is_max() const { return is_max_; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
 private:
  bool is_max_;
  int axis_;
};

// ---------------------------------------------------------------- linear algebra
// a[..., M, K] @ b[..., K, N] with batch dims already broadcast to one shape by the op.
class Matmul : public Primitive {
 public:
  const char* name() const override { return "matmul"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// ---------------------------------------------------------------- indexing
// out = x.shape[:axis] + index.shape + x.shape[axis+1:], gathering x along axis (numpy take).
class Gather : public Primitive {
 public:
  explicit Gather(int axis) : axis_(axis) {}
  const char* name() const override { return "gather"; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
};

// out = base with src added at index along axis (the transpose of Gather: src has Gather's output
// shape for this base and index; repeated indices add up).
class ScatterAdd : public Primitive {
 public:
  explicit ScatterAdd(int axis) : axis_(axis) {}
  const char* name() const override { return "scatter_add"; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
};

// out = dst with the elements dst[start + i * step] (per dim) replaced by src[i]. Reuses dst's
// memory when nothing else holds it (KV-cache writes), else copies dst first.
class SliceUpdate : public Primitive {
 public:
  SliceUpdate(Shape start, Shape step) : start_(std::move(start)), step_(std::move(step)) {}
  const char* name() const override { return "slice_update"; }
  const Shape& start() const { return start_; }
  const Shape& step() const { return step_; }
  int in_place_input() const override { return 0; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  Shape start_, step_;
};

class Concat : public Primitive {
 public:
  explicit Concat(int axis) : axis_(axis) {}
  const char* name() const override { return "concat"; }
  int axis() const { return axis_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
};

// ---------------------------------------------------------------- fused neural-network primitives
// Each has a reference composition of basic ops in ops (used as the test oracle).

// Softmax / log-softmax over the last dim.
class Softmax : public Primitive {
 public:
  explicit Softmax(bool log) : log_(log) {}
  const char* name() const override { return log_ ? "log_softmax" : "softmax"; }
  bool log() const { return log_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
 private:
  bool log_;
};

// Normalises over the last dim. LayerNorm inputs: x, weight, bias (weight/bias may be absent:
// has_weight/has_bias). RMSNorm inputs: x, weight.
class LayerNorm : public Primitive {
 public:
  LayerNorm(double eps, bool has_weight, bool has_bias) : eps_(eps), has_weight_(has_weight), has_bias_(has_bias) {}
  const char* name() const override { return "layer_norm"; }
  double eps() const { return eps_; }
  bool has_weight() const { return has_weight_; }
  bool has_bias() const { return has_bias_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  double eps_;
  bool has_weight_, has_bias_;
};

class RMSNorm : public Primitive {
 public:
  explicit RMSNorm(double eps) : eps_(eps) {}
  const char* name() const override { return "rms_norm"; }
  double eps() const { return eps_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  double eps_;
};

// Rotary position embedding of x[B, H, T, D] (rotary part: the first `rotary_dim` features).
// Inputs: x, positions[B, T] (i32/i64), inv_freq[rotary_dim / 2] (f32).
// NeoX layout rotates (x[i], x[i + rd/2]); interleaved rotates (x[2i], x[2i+1]).
// `inverse` rotates by -angle (the vjp).
class RoPE : public Primitive {
 public:
  RoPE(bool interleaved, int rotary_dim, bool inverse) : interleaved_(interleaved), rotary_dim_(rotary_dim), inverse_(inverse) {}
  const char* name() const override { return "rope"; }
  bool interleaved() const { return interleaved_; }
  int rotary_dim() const { return rotary_dim_; }
  bool inverse() const { return inverse_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  bool interleaved_;
  int rotary_dim_;
  bool inverse_;
};

// The input gradient of LayerNorm (rms = false; inputs x, [weight], d_out) or RMSNorm (rms = true;
// inputs x, weight, d_out) over the last dim, in one pass per row.
class NormBackward : public Primitive {
 public:
  NormBackward(bool rms, double eps, bool has_weight) : rms_(rms), eps_(eps), has_weight_(has_weight) {}
  const char* name() const override { return rms_ ? "rms_norm_backward" : "layer_norm_backward"; }
  bool rms() const { return rms_; }
  double eps() const { return eps_; }
  bool has_weight() const { return has_weight_; }
  WICK_DECLARE_EVAL
 private:
  bool rms_;
  double eps_;
  bool has_weight_;
};

// The input gradient of Softmax / LogSoftmax over the last dim; inputs y (the forward output), d_out.
class SoftmaxBackward : public Primitive {
 public:
  explicit SoftmaxBackward(bool log) : log_(log) {}
  const char* name() const override { return log_ ? "log_softmax_backward" : "softmax_backward"; }
  bool log() const { return log_; }
  WICK_DECLARE_EVAL
 private:
  bool log_;
};

// Gradients of SwiGLU with respect to gate and up, packed as [2, ...shape]; inputs gate, up, d_out
// (one shape).
class SwiGLUBackward : public Primitive {
 public:
  const char* name() const override { return "swiglu_backward"; }
  WICK_DECLARE_EVAL
};

// silu(a) * b.
class SwiGLU : public Primitive {
 public:
  const char* name() const override { return "swiglu"; }
  FusedOp fused_op() const override { return {FusedOp::SwiGLU, 0}; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// Scaled dot-product attention. Inputs: q[B, Hq, Tq, D], k[B, Hkv, Tk, D], v[B, Hkv, Tk, Dv] and
// optionally an additive f32 mask broadcastable to [B, Hq, Tq, Tk] (-inf where masked).
// Hq is a multiple of Hkv (grouped-query attention: query head h reads kv head h / (Hq/Hkv)).
// Causal masking is aligned to the end: query i sees keys j <= i + (Tk - Tq), as with a KV cache.
class Attention : public Primitive {
 public:
  Attention(double scale, bool causal, bool has_mask) : scale_(scale), causal_(causal), has_mask_(has_mask) {}
  const char* name() const override { return "attention"; }
  double scale() const { return scale_; }
  bool causal() const { return causal_; }
  bool has_mask() const { return has_mask_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
 private:
  double scale_;
  bool causal_, has_mask_;
};

// Gradient of Attention with respect to q, k and v, packed as one flat f32-or-input-dtype tensor
// [numel(q) + numel(k) + numel(v)] (inputs: q, k, v, [mask], out, d_out).
class AttentionBackward : public Primitive {
 public:
  AttentionBackward(double scale, bool causal, bool has_mask) : scale_(scale), causal_(causal), has_mask_(has_mask) {}
  const char* name() const override { return "attention_backward"; }
  double scale() const { return scale_; }
  bool causal() const { return causal_; }
  bool has_mask() const { return has_mask_; }
  WICK_DECLARE_EVAL
 private:
  double scale_;
  bool causal_, has_mask_;
};

// The LoRA update scale * (x @ A^T) @ B^T in one pass (PEFT layout: A [r, in], B [out, r]);
// inputs x[M, in], A, B, with the rank small enough to keep x @ A^T of a row on chip. With
// `accumulate`, a fourth input base (M * out elements, any shape) is added: out = base + update;
// with `donate` the output takes over base's buffer (nothing else holds it and no gradient reads
// it), so the projection and its update share one tensor.
class LoraDelta : public Primitive {
 public:
  explicit LoraDelta(double scale, bool accumulate = false, bool donate = false)
      : scale_(scale), accumulate_(accumulate), donate_(donate) {}
  const char* name() const override { return accumulate_ ? "lora_add" : "lora_delta"; }
  double scale() const { return scale_; }
  bool accumulate() const { return accumulate_; }
  bool donate() const { return donate_; }
  int in_place_input() const override { return donate_ ? 3 : -1; }
  static constexpr int kMaxRank = 128;
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  double scale_;
  bool accumulate_, donate_;
};

// ---------------------------------------------------------------- quantized weights (core/quantized.h)
// The dense matrix [rows, cols] (f32, bf16 or f16) of GGML blocks: input U8 [rows, row_bytes].
// Each element comes out of the same float32 operations as ggml::dequantize_to_f32 on both backends.
class Dequantize : public Primitive {
 public:
  explicit Dequantize(ggml::GgmlType type) : type_(type) {}
  const char* name() const override { return "dequantize"; }
  ggml::GgmlType type() const { return type_; }
  WICK_DECLARE_EVAL
 private:
  ggml::GgmlType type_;
};

// A product with a quantized matrix W [rows, cols] (input 1: its blocks, U8 [rows, row_bytes]),
// dequantized into a scratch buffer of x's dtype that lives only for the call. `transposed`:
// x[..., cols] @ W^T -> [..., rows] (a linear layer); else x[..., rows] @ W -> [..., cols] (its
// input gradient). The vjp is the other form, so the backward dequantizes again and the graph
// holds only the blocks. `int8_activations` (QuantizedMatrix::int8_activations) lets the CPU
// multiply a few rows of x (decode) by quantizing them to 8-bit blocks and taking integer dot
// products with the weight's blocks (backend/cpu/quant_dot.h); the vjp never does.
class QuantizedMatmul : public Primitive {
 public:
  QuantizedMatmul(ggml::GgmlType type, int64_t rows, int64_t cols, bool transposed, bool int8_activations = false)
      : type_(type), rows_(rows), cols_(cols), transposed_(transposed), int8_activations_(int8_activations) {}
  const char* name() const override { return "quantized_matmul"; }
  ggml::GgmlType type() const { return type_; }
  bool transposed() const { return transposed_; }
  bool int8_activations() const { return int8_activations_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  ggml::GgmlType type_;
  int64_t rows_, cols_;
  bool transposed_;
  bool int8_activations_;
};

// Per-row cross-entropy of logits[N, V] against targets[N] (i32/i64), f32 output [N];
// rows whose target equals ignore_index give 0.
class CrossEntropy : public Primitive {
 public:
  explicit CrossEntropy(int64_t ignore_index) : ignore_index_(ignore_index) {}
  const char* name() const override { return "cross_entropy"; }
  int64_t ignore_index() const { return ignore_index_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int64_t ignore_index_;
};

// d logits of CrossEntropy: (softmax(logits) - onehot(target)) * d_loss[row]; inputs logits,
// targets, d_loss[N] (f32). Ignored rows give 0.
class CrossEntropyBackward : public Primitive {
 public:
  explicit CrossEntropyBackward(int64_t ignore_index) : ignore_index_(ignore_index) {}
  const char* name() const override { return "cross_entropy_backward"; }
  int64_t ignore_index() const { return ignore_index_; }
  WICK_DECLARE_EVAL
 private:
  int64_t ignore_index_;
};

// A chain of elementwise primitives compiled into one pass by the lazy graph (fusion.cpp).
// Instruction i computes register i; inputs are loaded by Load instructions. All registers share
// the output's floating dtype; inputs have the output's shape (any strides).
struct FusedInstr {
  enum Kind : uint8_t { Load, Unary, Arith, SwiGLU } kind;
  uint8_t id;  // UnaryId / ArithId, or the input index of a Load
  uint8_t a, b;  // operand registers
};
class Fused : public Primitive {
 public:
  static constexpr int kMaxInstructions = 32;
  static constexpr int kMaxInputs = 8;
  static constexpr int kMaxDims = 8;
  explicit Fused(std::vector<FusedInstr> program) : program_(std::move(program)) {}
  const char* name() const override { return "fused"; }
  const std::vector<FusedInstr>& program() const { return program_; }
  WICK_DECLARE_EVAL
 private:
  std::vector<FusedInstr> program_;
};

}  // namespace wick

// Every non-template primitive, for backends that define all evals (and the CUDA-less stub).
#define WICK_PRIMITIVES(X)                                                                       \
  X(Where) X(AsType) X(Full) X(Arange) X(Random) X(Reduce) X(ArgReduce) X(Matmul) X(Gather) \
  X(ScatterAdd) X(SliceUpdate) X(Concat) X(Softmax) X(LayerNorm) X(RMSNorm) X(RoPE) X(SwiGLU)    \
  X(Attention) X(AttentionBackward) X(CrossEntropy) X(CrossEntropyBackward) X(Fused) X(LoraDelta) X(Dequantize) X(QuantizedMatmul) X(NormBackward) X(SoftmaxBackward) X(SwiGLUBackward) \
  X(PagedKVWrite) X(PagedAttention) X(LoraGatherAdd) X(SampleTokens) X(LinearAdd)
