// adamw_update on every device: several tensors of several shapes (more than one launch's worth on
// a GPU, an empty one, a view), per-tensor step counts, f64/f32/bf16 params and a gradient of
// another dtype, against a float64 loop of PyTorch's AdamW and against the reference composition;
// bad sets of tensors named. astype_all against astype one tensor at a time (values, and gradients
// through a loss that weighs every element).
#include <cmath>

#include "support/testing.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(Optim);

// PyTorch's AdamW for one element, in float64.
struct Step {
  double p, m, v;
};
Step adamw64(double p, double g, double m, double v, int64_t t, const AdamWHyper& h) {
  double c1 = 1 - std::pow(h.beta1, double(t)), c2 = 1 - std::pow(h.beta2, double(t));
  p *= 1 - h.lr * h.weight_decay;
  m = h.beta1 * m + (1 - h.beta1) * g;
  v = h.beta2 * v + (1 - h.beta2) * g * g;
  p -= h.lr / c1 * m / (std::sqrt(v) / std::sqrt(c2) + h.eps);
  return {p, m, v};
}

WICK_DEVICE_TEST(Optim, AdamWUpdateMatchesFloat64) {
  const AdamWHyper h{.lr = 3e-3, .beta1 = 0.8, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.1};
  for (Dtype dt : {Dtype::F64, Dtype::F32, Dtype::BF16}) {
    std::vector<Shape> shapes;
    for (int i = 0; i < 30; ++i) shapes.push_back(i % 7 == 3 ? Shape{0, 4} : Shape{int64_t(1 + i % 5), int64_t(3 + 37 * i)});
    shapes.push_back({3000});
    std::vector<Tensor> p, g, m, v;
    std::vector<Values> pv, gv, mv, vv;
    std::vector<int64_t> steps;
    for (size_t i = 0; i < shapes.size(); ++i) {
      Rand a = rand(shapes[i], dt), b = rand(shapes[i], i % 2 ? Dtype::F32 : dt), c = rand(shapes[i], dt, -0.1, 0.1),
           d = rand(shapes[i], dt, 0, 0.2);
      // One param as a non-contiguous view of the same values.
      p.push_back(i == 5 ? noncontiguous(a.v, shapes[i], dt, 1) : a.t), g.push_back(b.t), m.push_back(c.t), v.push_back(d.t);
      pv.push_back(a.v), gv.push_back(b.v), mv.push_back(c.v), vv.push_back(d.v);
      steps.push_back(1 + int64_t(i % 4) * 10);
    }
    AdamWTensors r = adamw_update(p, g, m, v, steps, h);
    AdamWTensors ref = reference::adamw_update(p, g, m, v, steps, h);
    ASSERT_EQ(r.params.size(), shapes.size());
    for (size_t i = 0; i < shapes.size(); ++i) {
      Values ep, em, ev;
      for (size_t j = 0; j < pv[i].size(); ++j) {
        // The gradient is first rounded to the params' dtype, as the op does.
        double gj = values(astype(make({gv[i][j]}, {1}, Dtype::F64), dt))[0];
        Step s = adamw64(pv[i][j], gj, mv[i][j], vv[i][j], steps[i], h);
        ep.push_back(s.p), em.push_back(s.m), ev.push_back(s.v);
      }
      Tol tol = dt == Dtype::F64 ? Tol{1e-12, 1e-12} : dt == Dtype::F32 ? Tol{1e-6, 1e-5} : tol_for(dt);
      std::string what = str_cat("adamw_update ", dtype_name(dt), " tensor ", i, " ", shape_str(shapes[i]));
      expect_close(r.params[i], ep, shapes[i], tol, what + " params");
      expect_close(r.m[i], em, shapes[i], tol, what + " m");
      expect_close(r.v[i], ev, shapes[i], tol, what + " v");
      EXPECT_EQ(r.params[i].dtype(), dt);
      // The composition rounds after every op in the params' dtype: close, not equal, in bf16.
      Tol ref_tol = dt == Dtype::BF16 ? Tol{0.02, 0.02} : tol;
      expect_tensors_close(r.params[i], ref.params[i], ref_tol, what + " against the composition");
    }
  }
}

WICK_DEVICE_TEST(Optim, AdamWUpdateBadSetsAreNamed) {
  Tensor a = rand({2, 3}, Dtype::F32).t, b = rand({3, 2}, Dtype::F32).t;
  expect_error([&] { adamw_update({a}, {a, a}, {a}, {a}, {1}, {}); }, {"adamw_update", "1 params but 2 grads"});
  expect_error([&] { adamw_update({a}, {b}, {a}, {a}, {1}, {}); }, {"adamw_update", "[2,3]", "[3,2]"});
  expect_error([&] { adamw_update({a}, {a}, {a}, {a}, {0}, {}); }, {"adamw_update", "step count 0"});
  Tensor c = rand({2, 3}, Dtype::F64).t;
  expect_error([&] { adamw_update({a, c}, {a, c}, {a, c}, {a, c}, {1, 1}, {}); }, {"adamw_update", "param 1 is f64"});
  expect_error([&] { adamw_update({a}, {a}, {c}, {a}, {1}, {}); }, {"adamw_update", "moments of param 0 must be f32"});
  EXPECT_TRUE(adamw_update({}, {}, {}, {}, {}, {}).params.empty());
}

// Many tensors cast in one node (more than one launch's worth on a GPU, an empty one, views) give
// exactly what astype gives each alone, and the gradient casts every cotangent back alike.
WICK_DEVICE_TEST(Optim, AstypeAllMatchesAstype) {
  for (auto [from, to] : {std::pair{Dtype::F32, Dtype::BF16}, std::pair{Dtype::F32, Dtype::F16},
                          std::pair{Dtype::F64, Dtype::F32}, std::pair{Dtype::BF16, Dtype::F32}}) {
    std::vector<Tensor> xs, weights;
    for (int i = 0; i < 27; ++i) {
      Shape shape = i == 5 ? Shape{0, 3} : Shape{int64_t(1 + i % 4), int64_t(2 + 29 * i)};
      Tensor x = rand(shape, from, -3, 3).t;
      // Views: transposed, and rows cut from wider rows (as blocks of one matrix's gradient).
      if (i % 6 == 2) x = transpose(rand({shape[1], shape[0]}, from, -3, 3).t, 0, 1);
      if (i % 6 == 3) x = narrow(rand({shape[0], shape[1] + 5}, from, -3, 3).t, 1, 3, shape[1]);
      xs.push_back(x);
      weights.push_back(rand(shape, Dtype::F64).t);
    }
    std::string what = str_cat(dtype_name(from), " -> ", dtype_name(to));
    std::vector<Tensor> all = astype_all(xs, to);
    ASSERT_EQ(all.size(), xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      EXPECT_EQ(all[i].dtype(), to) << what;
      expect_close(all[i], values(astype(xs[i], to)), xs[i].shape(), Tol{0, 0}, str_cat(what, " tensor ", i));
    }
    auto loss = [&](bool together) {
      return [&, together](const std::vector<Tensor>& in) {
        std::vector<Tensor> cast = together ? astype_all(in, to) : std::vector<Tensor>{};
        Tensor total = zeros({}, Dtype::F64, device());
        for (size_t i = 0; i < in.size(); ++i)
          if (i % 5 != 4)  // some tensors get no gradient
            total = total + sum(astype(together ? cast[i] : astype(in[i], to), Dtype::F64) * weights[i]);
        return total;
      };
    };
    std::vector<Tensor> want = grad(loss(false), xs), got = grad(loss(true), xs);
    for (size_t i = 0; i < xs.size(); ++i) {
      ASSERT_EQ(got[i].defined(), want[i].defined()) << what << " gradient " << i;
      if (!want[i].defined()) continue;
      EXPECT_EQ(got[i].dtype(), from) << what;
      expect_close(got[i], values(want[i]), xs[i].shape(), Tol{0, 0}, str_cat(what, " gradient ", i));
    }
  }
  Tensor a = rand({2, 3}, Dtype::F32).t;
  EXPECT_TRUE(astype_all({}, Dtype::BF16).empty());
  EXPECT_EQ(astype_all({a}, Dtype::F32)[0].data_ptr(), a.data_ptr());  // already of the dtype: as it is
}

}  // namespace
}  // namespace wick
