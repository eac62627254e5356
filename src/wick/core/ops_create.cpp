// Creation, dtype/device movement and random ops.
#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/primitives.h"
#include "wick/core/random_bits.h"

namespace wick {

Tensor full(const Shape& shape, double value, Dtype dtype, Device device) {
  for (int64_t d : shape) WICK_CHECK(d >= 0, "full: negative size in shape ", shape_str(shape));
  return Tensor::make(shape, dtype, device, std::make_shared<Full>(value), {});
}
Tensor zeros(const Shape& shape, Dtype dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, Dtype dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& x) { return full(x.shape(), 0.0, x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return full(x.shape(), 1.0, x.dtype(), x.device()); }
Tensor full_like(const Tensor& x, double value) { return full(x.shape(), value, x.dtype(), x.device()); }
Tensor scalar(double value, Dtype dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double stop, double step, Dtype dtype, Device device) {
  WICK_CHECK(step != 0, "arange: step must not be 0");
  double n = std::ceil((stop - start) / step);
  int64_t count = n > 0 ? int64_t(n) : 0;
  return Tensor::make({count}, dtype, device, std::make_shared<Arange>(start, step), {});
}

Tensor astype(const Tensor& x, Dtype dtype) {
  if (x.dtype() == dtype) return x;
  return Tensor::make(x.shape(), dtype, x.device(), std::make_shared<AsType>(), {x});
}

Tensor to_device(const Tensor& x, Device device) {
  if (x.device() == device) return x;
  return Tensor::make(x.shape(), x.dtype(), device, std::make_shared<ToDevice>(), {x});
}

Tensor contiguous(const Tensor& x) {
  if (x.is_evaluated() && x.is_contiguous()) return x;
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<AsType>(), {x});
}

Tensor stop_gradient(const Tensor& x) { return x.shallow_copy(); }

// ---------------------------------------------------------------- random
namespace {
// The next draw of `generator`: f32 values of the given kind.
Tensor random(RandomKind kind, const Shape& shape, Device device, Generator& generator) {
  for (int64_t d : shape) WICK_CHECK(d >= 0, "random: negative size in shape ", shape_str(shape));
  RandomKey key = generator.next(uint64_t(numel(shape)));
  return Tensor::make(shape, Dtype::F32, device, std::make_shared<Random>(kind, key.seed, key.counter), {});
}
}  // namespace

void manual_seed(uint64_t seed) { current_generator().seed(seed); }

Tensor uniform(const Shape& shape, double low, double high, Dtype dtype, Device device, Generator& generator) {
  WICK_CHECK(is_floating(dtype), "uniform: dtype must be floating, got ", dtype_name(dtype));
  Tensor u = random(RandomKind::Uniform, shape, device, generator);
  if (low != 0 || high != 1) u = u * (high - low) + low;
  return astype(u, dtype);
}
Tensor uniform(const Shape& shape, double low, double high, Dtype dtype, Device device) {
  return uniform(shape, low, high, dtype, device, current_generator());
}

Tensor normal(const Shape& shape, double mean, double std, Dtype dtype, Device device, Generator& generator) {
  WICK_CHECK(is_floating(dtype), "normal: dtype must be floating, got ", dtype_name(dtype));
  Tensor z = random(RandomKind::Normal, shape, device, generator);
  if (std != 1) z = z * std;
  if (mean != 0) z = z + mean;
  return astype(z, dtype);
}
Tensor normal(const Shape& shape, double mean, double std, Dtype dtype, Device device) {
  return normal(shape, mean, std, dtype, device, current_generator());
}

Tensor bernoulli(const Shape& shape, double p, Device device) {
  WICK_CHECK(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got ", p);
  return lt(random(RandomKind::Uniform, shape, device, current_generator()), scalar(p, Dtype::F32, device));
}

namespace {
Tensor apply_dropout(const Tensor& x, double p, const Tensor& keep) {
  return where(keep, x * (1.0 / (1 - p)), zeros({}, x.dtype(), x.device()));
}
}  // namespace

Tensor dropout(const Tensor& x, double p, bool training) {
  WICK_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0) return x;
  return apply_dropout(x, p, bernoulli(x.shape(), 1 - p, x.device()));
}

RandomKey fold_in(RandomKey key, uint64_t data) {
  return {rng::mix64(key.seed ^ rng::mix64(data + 0x632be59bd9b4e019ULL)), key.counter};
}

Tensor bernoulli(const Shape& shape, double p, RandomKey key, Device device) {
  WICK_CHECK(p >= 0 && p <= 1, "bernoulli: p must be in [0, 1], got ", p);
  for (int64_t d : shape) WICK_CHECK(d >= 0, "bernoulli: negative size in shape ", shape_str(shape));
  Tensor u = Tensor::make(shape, Dtype::F32, device,
                          std::make_shared<Random>(RandomKind::Uniform, key.seed, key.counter), {});
  return lt(u, scalar(p, Dtype::F32, device));
}

Tensor dropout(const Tensor& x, double p, RandomKey key) {
  WICK_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got ", p);
  if (p == 0) return x;
  return apply_dropout(x, p, bernoulli(x.shape(), 1 - p, key, x.device()));
}

}  // namespace wick
