// The public operations of the engine. Each validates its arguments (naming the op, shapes,
// dtypes and devices on error) and builds a node; primitives do the computing.
// Semantics and argument names follow PyTorch where users expect them.
// This header declares the basic ops (those of the elementwise and reduce families among them,
// see core/ops/elementwise.h); each other op family of core/ops/ (matmul, indexing, softmax, norm,
// rope, swiglu, attention, lora, loss, optim, ...) declares its ops, its primitives and its reference
// compositions (namespace wick::reference, the test oracles) in its own header, included here.
#pragma once

#include <optional>
#include <vector>

#include "wick/core/ops/attention.h"
#include "wick/core/ops/elementwise.h"
#include "wick/core/ops/indexing.h"
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
#include "wick/core/random.h"
#include "wick/core/tensor.h"

namespace wick {

// ---------------------------------------------------------------- creation
Tensor full(const Shape& shape, double value, Dtype dtype = Dtype::F32, Device device = default_device());
Tensor zeros(const Shape& shape, Dtype dtype = Dtype::F32, Device device = default_device());
Tensor ones(const Shape& shape, Dtype dtype = Dtype::F32, Device device = default_device());
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor full_like(const Tensor& x, double value);
// A 0-dim tensor.
Tensor scalar(double value, Dtype dtype = Dtype::F32, Device device = default_device());
// [start, stop) in steps of step.
Tensor arange(double start, double stop, double step = 1, Dtype dtype = Dtype::I64, Device device = default_device());

// ---------------------------------------------------------------- dtype and device
Tensor astype(const Tensor& x, Dtype dtype);
Tensor to_device(const Tensor& x, Device device);
// x itself when it is already contiguous, else a contiguous copy.
Tensor contiguous(const Tensor& x);
// A gradient barrier: the same values, no gradient flows through.
Tensor stop_gradient(const Tensor& x);

// ---------------------------------------------------------------- elementwise
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sin(const Tensor& x);
Tensor cos(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor gelu(const Tensor& x);       // exact (erf)
Tensor gelu_tanh(const Tensor& x);  // tanh approximation
Tensor erf(const Tensor& x);
Tensor square(const Tensor& x);

// Binary ops broadcast (NumPy rules) and promote dtypes (promote_types); a double operand takes
// the tensor's dtype.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, double exponent);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& x);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---------------------------------------------------------------- views and shape
// One dim of `shape` may be -1. A view when the strides allow, else a copy.
Tensor reshape(const Tensor& x, Shape shape);
Tensor flatten(const Tensor& x, int start_dim = 0, int end_dim = -1);
Tensor permute(const Tensor& x, std::vector<int> dims);
Tensor transpose(const Tensor& x, int dim0, int dim1);
// Elements start, start+step, ... below stop along dim (Python slice semantics for negatives,
// clamped to the size).
Tensor slice(const Tensor& x, int dim, int64_t start, int64_t stop, int64_t step = 1);
Tensor narrow(const Tensor& x, int dim, int64_t start, int64_t length);
Tensor broadcast_to(const Tensor& x, const Shape& shape);
// Like broadcast_to; -1 keeps the size of that dim (torch.expand).
Tensor expand(const Tensor& x, const Shape& shape);
Tensor squeeze(const Tensor& x, int dim);
Tensor unsqueeze(const Tensor& x, int dim);
Tensor concat(const std::vector<Tensor>& xs, int dim);
Tensor stack(const std::vector<Tensor>& xs, int dim);
std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int dim);

// ---------------------------------------------------------------- reductions
Tensor sum(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor max(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor min(const Tensor& x, std::vector<int> dims, bool keepdim = false);
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, int dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int dim, bool keepdim = false);
Tensor logsumexp(const Tensor& x, std::vector<int> dims, bool keepdim = false);

// ---------------------------------------------------------------- random (seeded, device-independent)
// Draws without a key or generator come from current_generator() (settings.h: the process's
// default generator unless a GeneratorScope installed another); each draw advances it.

// Restarts the current generator at `seed`.
void manual_seed(uint64_t seed);
Tensor uniform(const Shape& shape, double low = 0, double high = 1, Dtype dtype = Dtype::F32, Device device = default_device());
Tensor normal(const Shape& shape, double mean = 0, double std = 1, Dtype dtype = Dtype::F32, Device device = default_device());
Tensor bernoulli(const Shape& shape, double p, Device device = default_device());
// The same draws from `generator`, which advances; the current generator is left as it was.
Tensor uniform(const Shape& shape, double low, double high, Dtype dtype, Device device, Generator& generator);
Tensor normal(const Shape& shape, double mean, double std, Dtype dtype, Device device, Generator& generator);
// Inverted dropout: zeroes elements with probability p and scales the rest by 1/(1-p).
Tensor dropout(const Tensor& x, double p, bool training = true);

// Draws from an explicit RandomKey (random.h) replay whatever any generator's state.
// A key derived from `key` and `data` (jax.random.fold_in): distinct data give unrelated streams.
RandomKey fold_in(RandomKey key, uint64_t data);
// True with probability p, drawn from `key` (the same mask for the same key and shape).
Tensor bernoulli(const Shape& shape, double p, RandomKey key, Device device = default_device());
// Inverted dropout whose keep-mask is bernoulli(x.shape(), 1 - p, key): replayable, and equal on the
// CPU and the GPU.
Tensor dropout(const Tensor& x, double p, RandomKey key);

}  // namespace wick
