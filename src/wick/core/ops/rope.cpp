// Rotary position embeddings: the ops, the vjp (the inverse rotation) and the reference composition.
#include "wick/core/ops/rope.h"

#include <cmath>

#include "wick/core/ops.h"
#include "wick/core/ops/common.h"

namespace wick {

using detail::check_device;
using detail::check_floating;
using detail::check_index;
using detail::pick;

Tensor rope_inv_freq(int rotary_dim, double theta, Device device) {
  WICK_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, "rope: rotary_dim must be positive and even, got ", rotary_dim);
  std::vector<float> f(rotary_dim / 2);
  for (int i = 0; i < rotary_dim / 2; ++i) f[i] = float(1.0 / std::pow(theta, double(2 * i) / rotary_dim));
  return Tensor::from_vector(f, {int64_t(f.size())}, device);
}

namespace {
struct RopeArgs {
  Tensor positions, inv_freq;
  int rotary_dim;
};

RopeArgs rope_args(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  check_floating("rope", x);
  WICK_CHECK(x.ndim() == 4, "rope: expected x[batch, heads, seq, head_dim], got ", shape_str(x.shape()));
  check_index("rope", positions);
  check_device("rope", x, positions);
  int64_t b = x.shape(0), t = x.shape(2), d = x.shape(3);
  int rd = options.rotary_dim < 0 ? int(d) : options.rotary_dim;
  WICK_CHECK(rd > 0 && rd % 2 == 0 && rd <= d, "rope: rotary_dim ", rd, " must be even and at most head_dim ", d);
  Tensor pos = positions;
  if (pos.ndim() == 1) pos = unsqueeze(pos, 0);
  WICK_CHECK(pos.ndim() == 2 && pos.shape(1) == t && (pos.shape(0) == b || pos.shape(0) == 1),
             "rope: positions must be [seq] or [batch, seq] for x ", shape_str(x.shape()), ", got ",
             shape_str(positions.shape()));
  pos = contiguous(broadcast_to(astype(pos, Dtype::I64), {b, t}));
  Tensor inv = options.inv_freq ? *options.inv_freq : rope_inv_freq(rd, options.theta, x.device());
  WICK_CHECK(inv.shape() == Shape{rd / 2}, "rope: inv_freq must be [", rd / 2, "], got ", shape_str(inv.shape()));
  check_device("rope", x, inv);
  return {pos, contiguous(astype(inv, Dtype::F32)), rd};
}
}  // namespace

Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  RopeArgs a = rope_args(x, positions, options);
  return Tensor::make(x.shape(), x.dtype(), x.device(), std::make_shared<RoPE>(options.interleaved, a.rotary_dim, false),
                      {x, a.positions, a.inv_freq});
}

Tensor rope(const Tensor& x, int64_t offset, const RopeOptions& options) {
  WICK_CHECK(x.ndim() == 4, "rope: expected x[batch, heads, seq, head_dim], got ", shape_str(x.shape()));
  return rope(x, arange(double(offset), double(offset + x.shape(2)), 1, Dtype::I64, x.device()), options);
}

std::vector<Tensor> RoPE::vjp(const std::vector<Tensor>& in, const Tensor& g, const std::vector<int>& argnums,
                              const Tensor&) {
  // A rotation's transpose is the rotation by the opposite angle.
  Tensor dx = Tensor::make(g.shape(), g.dtype(), g.device(),
                           std::make_shared<RoPE>(interleaved_, rotary_dim_, !inverse_), {g, in[1], in[2]});
  return pick(argnums, {dx, Tensor(), Tensor()});
}

namespace reference {

Tensor rope(const Tensor& x, const Tensor& positions, const RopeOptions& options) {
  RopeArgs a = rope_args(x, positions, options);
  int64_t half = a.rotary_dim / 2;
  // angle[b, 1, t, i] = position[b, t] * inv_freq[i]
  Tensor angle = unsqueeze(unsqueeze(astype(a.positions, Dtype::F32), -1) * a.inv_freq, 1);
  Tensor c = astype(cos(angle), x.dtype()), s = astype(sin(angle), x.dtype());
  Tensor rot = narrow(x, -1, 0, a.rotary_dim);
  Tensor out;
  if (!options.interleaved) {
    Tensor x1 = narrow(rot, -1, 0, half), x2 = narrow(rot, -1, half, half);
    out = concat({x1 * c - x2 * s, x2 * c + x1 * s}, -1);
  } else {
    Tensor even = slice(rot, -1, 0, a.rotary_dim, 2), odd = slice(rot, -1, 1, a.rotary_dim, 2);
    Tensor y = stack({even * c - odd * s, odd * c + even * s}, -1);
    out = reshape(y, rot.shape());
  }
  if (a.rotary_dim == x.shape(3)) return out;
  return concat({out, narrow(x, -1, a.rotary_dim, x.shape(3) - a.rotary_dim)}, -1);
}

}  // namespace reference

}  // namespace wick
