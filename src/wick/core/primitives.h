// Every primitive of the engine. Each class declares its evaluation on both backends
// (defined in backend/cpu and backend/cuda), its vjp and the properties of primitive.h that hold
// for it (fused_op, vjp_reads_output, in_place_input). The primitives of an op family are declared
// in its header, core/ops/<family>.h (included here), their vjps in core/ops/<family>.cpp; this
// file declares the others, whose vjps are in core/vjp.cpp.
// Inputs arrive already validated and, for elementwise primitives, broadcast to one shape.
#pragma once

#include <optional>

#include "wick/base/ggml_quants.h"
#include "wick/core/elementwise_fns.h"
#include "wick/core/ops/attention.h"
#include "wick/core/ops/elementwise.h"
#include "wick/core/ops/indexing.h"
#include "wick/core/ops/linear.h"
#include "wick/core/ops/lora.h"
#include "wick/core/ops/lora_gather.h"
#include "wick/core/ops/loss.h"
#include "wick/core/ops/matmul.h"
#include "wick/core/ops/norm.h"
#include "wick/core/ops/optim.h"
#include "wick/core/ops/paged_attention.h"
#include "wick/core/ops/reduce.h"
#include "wick/core/ops/rope.h"
#include "wick/core/ops/sampling.h"
#include "wick/core/ops/softmax.h"
#include "wick/core/ops/swiglu.h"
#include "wick/core/primitive.h"

namespace wick {

// ---------------------------------------------------------------- copies, fills and random draws
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

// Consecutive parts of the input along `axis`, each a view (one output per size): split's
// primitive. Its vjp joins the parts' gradients with one concat (a view where they already lie
// side by side in one buffer), where narrow's would pad each with zeros and add them up.
class Split : public Primitive {
 public:
  Split(int axis, std::vector<int64_t> sizes) : axis_(axis), sizes_(std::move(sizes)) {}
  const char* name() const override { return "split"; }
  int num_outputs() const override { return int(sizes_.size()); }
  int axis() const { return axis_; }
  const std::vector<int64_t>& sizes() const { return sizes_; }
  WICK_DECLARE_EVAL_OUTPUTS
  std::vector<Tensor> vjp_outputs(const std::vector<Tensor>& inputs, const std::vector<Tensor>& cotangents,
                                  const std::vector<int>& argnums, const std::vector<Tensor>& outputs) override;
  bool vjp_reads_output() const override { return false; }
 private:
  int axis_;
  std::vector<int64_t> sizes_;
};

class BroadcastTo : public Primitive {
 public:
  const char* name() const override { return "broadcast_to"; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
};

// ---------------------------------------------------------------- quantized weights (core/quantized.h)
// The dense matrix [rows, cols] (f32, bf16 or f16) of GGML blocks: input U8 [rows, row_bytes].
// Each element comes out of the same float32 operations as ggml::dequantize_to_f32 on both backends.
class Dequantize : public Primitive {
 public:
  // `lanes`: the blocks are in the CPU's lane layout (QuantizedMatrix::lanes).
  explicit Dequantize(ggml::GgmlType type, bool lanes = false) : type_(type), lanes_(lanes) {}
  const char* name() const override { return "dequantize"; }
  ggml::GgmlType type() const { return type_; }
  bool lanes() const { return lanes_; }
  WICK_DECLARE_EVAL
 private:
  ggml::GgmlType type_;
  bool lanes_;
};

// A product with a quantized matrix W [rows, cols] (input 1: its blocks, U8 [rows, row_bytes]),
// dequantized into a scratch buffer of x's dtype that lives only for the call. `transposed`:
// x[..., cols] @ W^T -> [..., rows] (a linear layer); else x[..., rows] @ W -> [..., cols] (its
// input gradient). The vjp is the other form, so the backward dequantizes again and the graph
// holds only the blocks. `int8_activations` (QuantizedMatrix::int8_activations) lets the CPU
// multiply a few rows of x (decode) by quantizing them to 8-bit blocks and taking integer dot
// products with the weight's blocks (backend/cpu/quant_dot.h); the vjp never does. `lanes`: the
// blocks are in the CPU's lane layout (QuantizedMatrix::lanes).
class QuantizedMatmul : public Primitive {
 public:
  QuantizedMatmul(ggml::GgmlType type, int64_t rows, int64_t cols, bool transposed, bool int8_activations = false,
                  bool lanes = false)
      : type_(type),
        rows_(rows),
        cols_(cols),
        transposed_(transposed),
        int8_activations_(int8_activations),
        lanes_(lanes) {}
  const char* name() const override { return "quantized_matmul"; }
  ggml::GgmlType type() const { return type_; }
  bool transposed() const { return transposed_; }
  bool int8_activations() const { return int8_activations_; }
  bool lanes() const { return lanes_; }
  WICK_DECLARE_EVAL
  std::vector<Tensor> vjp(const std::vector<Tensor>&, const Tensor&, const std::vector<int>&, const Tensor&) override;
  bool vjp_reads_output() const override { return false; }
 private:
  ggml::GgmlType type_;
  int64_t rows_, cols_;
  bool transposed_;
  bool int8_activations_;
  bool lanes_;
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

// Every non-template primitive of one output, for backends that define all evals (and the
// CUDA-less stub).
#define WICK_PRIMITIVES(X)                                                                       \
  X(Where) X(AsType) X(Full) X(Arange) X(Random) X(Reduce) X(ArgReduce) X(Matmul) X(Gather) \
  X(ScatterAdd) X(SliceUpdate) X(PlaceBlocks) X(Concat) X(Softmax) X(LayerNorm) X(RMSNorm) X(RoPE) X(SwiGLU)    \
  X(Attention) X(CrossEntropy) X(CrossEntropyBackward) X(LinearCrossEntropy) X(Fused) X(LoraDelta) X(Dequantize) \
  X(QuantizedMatmul) X(NormBackward) X(SoftmaxBackward) X(PagedKVWrite) X(PagedAttention) X(LoraGatherShrink)   \
  X(LoraGatherExpand) X(LoraGatherDelta) X(SampleTokens) X(LinearAdd)
// The primitives of several outputs (eval_outputs_cpu / eval_outputs_cuda).
#define WICK_PRIMITIVES_OF_SEVERAL_OUTPUTS(X) \
  X(AttentionBackward) X(SwiGLUBackward) X(AdamWUpdate) X(AstypeAll) X(RMSNormLoraShrink) X(SwiGLULoraShrink)
