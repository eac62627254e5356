// Nodes of several outputs (siblings) on every device: evaluating any output runs the node once and
// fills all, in eager and lazy modes; an output nobody holds is freed and does not hold the node's
// inputs; the vjp receives the cotangent of each output (absent for an output no gradient reaches);
// the backward primitives of several outputs (SwiGLU's, attention's) give the gradients whole.
#include <memory>

#include "support/testing.h"
#include "wick/core/primitive.h"

namespace wick {
namespace {

using namespace testing;

// Two outputs of different shapes: a * b, and the sum of a. Counts its evaluations. Its kernels are
// written with ops (run eagerly inside the evaluation), so it runs on any device.
class ProductAndSum : public Primitive {
 public:
  explicit ProductAndSum(int* evaluations) : evaluations_(evaluations) {}
  const char* name() const override { return "product_and_sum"; }
  int num_outputs() const override { return 2; }
  void eval_outputs_cpu(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) override { run(in, outs); }
  void eval_outputs_cuda(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) override { run(in, outs); }
  std::vector<Tensor> vjp_outputs(const std::vector<Tensor>& in, const std::vector<Tensor>& g,
                                  const std::vector<int>& argnums, const std::vector<Tensor>&) override {
    // d/da: g0 * b + g1 (broadcast); d/db: g0 * a. An absent cotangent adds nothing.
    std::vector<Tensor> all(2);
    if (g[0].defined()) {
      all[0] = g[0] * in[1];
      all[1] = g[0] * in[0];
    }
    if (g[1].defined()) {
      Tensor from_sum = broadcast_to(g[1], in[0].shape());
      all[0] = all[0].defined() ? all[0] + from_sum : contiguous(from_sum);
    }
    std::vector<Tensor> picked;
    for (int i : argnums) picked.push_back(all[size_t(i)]);
    return picked;
  }
  bool vjp_reads_output() const override { return false; }

 private:
  void run(const std::vector<Tensor>& in, const std::vector<Tensor>& outs) {
    ++*evaluations_;
    ExecModeScope eager(ExecMode::Eager);
    NoGradGuard no_grad;
    for (auto [out, value] : {std::pair{outs[0], in[0] * in[1]}, std::pair{outs[1], sum(in[0])}}) {
      Tensor v = contiguous(value).eval();
      out.set_data(v.storage(), v.strides(), v.offset());
    }
  }
  int* evaluations_;
};

std::vector<Tensor> product_and_sum(const Tensor& a, const Tensor& b, int* evaluations) {
  return Tensor::make_siblings({a.shape(), {}}, {a.dtype(), a.dtype()}, a.device(),
                               std::make_shared<ProductAndSum>(evaluations), {a, b});
}

Values product(const Values& a, const Values& b) {
  Values out;
  for (size_t i = 0; i < a.size(); ++i) out.push_back(a[i] * b[i]);
  return out;
}

double total(const Values& a) {
  double s = 0;
  for (double v : a) s += v;
  return s;
}

WICK_DEVICE_SUITE(Siblings);

WICK_DEVICE_TEST(Siblings, EvaluatingOneEvaluatesAllOnce) {
  Rand a = rand({2, 3}), b = rand({2, 3});
  for (ExecMode mode : {ExecMode::Lazy, ExecMode::Eager}) {
    std::string what = mode == ExecMode::Lazy ? "lazy" : "eager";
    ExecModeScope scope(mode);
    int evaluations = 0;
    std::vector<Tensor> outs = product_and_sum(a.t, b.t, &evaluations);
    ASSERT_EQ(outs.size(), 2u);
    EXPECT_EQ(evaluations, mode == ExecMode::Lazy ? 0 : 1) << what;
    if (mode == ExecMode::Lazy) {
      std::vector<Tensor> siblings = outs[0].siblings();
      ASSERT_EQ(siblings.size(), 2u);
      EXPECT_TRUE(outs[0].same(siblings[0]) && outs[1].same(siblings[1]));
    }
    outs[1].eval();
    EXPECT_EQ(evaluations, 1) << what;
    EXPECT_TRUE(outs[0].is_evaluated()) << what << ": the sibling was not filled";
    outs[0].eval();
    EXPECT_EQ(evaluations, 1) << what;
    expect_close(outs[0], product(a.v, b.v), {2, 3}, what);
    expect_close(outs[1], {total(a.v)}, {}, what);
    // Evaluated and untraced: the node is forgotten and the inputs are held by nothing else.
    EXPECT_EQ(outs[0].primitive(), nullptr) << what;
    EXPECT_EQ(node_handles(a.t), 1) << what;
  }
}

WICK_DEVICE_TEST(Siblings, BothAliveThroughOneEvaluation) {
  Rand a = rand({4}), b = rand({4});
  ExecModeScope lazy(ExecMode::Lazy);
  int evaluations = 0;
  std::vector<Tensor> outs = product_and_sum(a.t, b.t, &evaluations);
  // Both outputs consumed by one graph, and both asked for.
  Tensor z = outs[0] + outs[1];
  eval({outs[1], z, outs[0]});
  EXPECT_EQ(evaluations, 1);
  Values ref = product(a.v, b.v);
  for (double& v : ref) v += total(a.v);
  expect_close(z, ref, {4});
  expect_close(outs[0], product(a.v, b.v), {4});
}

WICK_DEVICE_TEST(Siblings, AnOutputNobodyHoldsIsFreed) {
  Rand a = rand({3, 2}), b = rand({3, 2});
  {
    // Dropped before the evaluation: the node still runs once (into a temporary) for the other.
    ExecModeScope lazy(ExecMode::Lazy);
    int evaluations = 0;
    std::vector<Tensor> outs = product_and_sum(a.t, b.t, &evaluations);
    std::weak_ptr<TensorImpl> dropped = outs[0].impl_ptr();
    outs[0] = Tensor();
    EXPECT_TRUE(dropped.expired());
    EXPECT_FALSE(outs[1].siblings()[0].defined());
    expect_close(outs[1], {total(a.v)}, {}, "lazy");
    EXPECT_EQ(evaluations, 1);
    EXPECT_EQ(node_handles(a.t), 1) << "the node kept its inputs";
  }
  {
    // Dropped after the evaluation: its memory goes with it, the sibling keeps its own.
    ExecModeScope eager(ExecMode::Eager);
    int evaluations = 0;
    std::vector<Tensor> outs = product_and_sum(a.t, b.t, &evaluations);
    std::weak_ptr<Storage> memory = outs[1].storage();
    outs[1] = Tensor();
    EXPECT_TRUE(memory.expired()) << "a dropped output kept its memory";
    expect_close(outs[0], product(a.v, b.v), {3, 2}, "eager");
    EXPECT_EQ(evaluations, 1);
  }
  {
    // A sibling consumed only by another node lives as long as that node needs it.
    ExecModeScope lazy(ExecMode::Lazy);
    int evaluations = 0;
    Tensor y = exp(product_and_sum(a.t, b.t, &evaluations)[1]);
    Values ref{std::exp(total(a.v))};
    expect_close(y, ref, {});
    EXPECT_EQ(evaluations, 1);
  }
}

WICK_DEVICE_TEST(Siblings, VjpGetsTheCotangentOfEachOutput) {
  Tensor a = rand({2, 3}).t, b = rand({2, 3}).t;
  int evaluations = 0;
  for (ExecMode mode : {ExecMode::Eager, ExecMode::Lazy}) {
    ExecModeScope scope(mode);
    std::string what = mode == ExecMode::Lazy ? " (lazy)" : " (eager)";
    check_grads(
        [&](const std::vector<Tensor>& in) {
          std::vector<Tensor> outs = product_and_sum(in[0], in[1], &evaluations);
          return tanh(outs[0]) * outs[1];
        },
        {a, b}, "both outputs" + what);
    // Only one output reaches the loss: the other's cotangent is absent.
    check_grads([&](const std::vector<Tensor>& in) { return product_and_sum(in[0], in[1], &evaluations)[0] * 3.0; },
                {a, b}, "the first output" + what);
    check_grads([&](const std::vector<Tensor>& in) { return product_and_sum(in[0], in[1], &evaluations)[1] * 3.0; },
                {a, b}, "the second output" + what);
  }
}

WICK_DEVICE_TEST(Siblings, MakeChecksTheNumberOfOutputs) {
  int evaluations = 0;
  Tensor a = rand({2}).t;
  expect_error([&] { Tensor::make({2}, Dtype::F64, device(), std::make_shared<ProductAndSum>(&evaluations), {a, a}); },
               {"product_and_sum", "2 outputs", "make_siblings"});
  expect_error([&] { Tensor::make_siblings({{2}}, {Dtype::F64}, device(), std::make_shared<ProductAndSum>(&evaluations), {a, a}); },
               {"product_and_sum", "2 outputs"});
}

// The backward primitives of several outputs give each gradient as its own tensor, not a view of a
// packed one; gate and up split from one projection get one gradient, in a buffer of its own.
WICK_DEVICE_TEST(Siblings, BackwardPrimitivesGiveWholeGradients) {
  Tensor gate = rand({3, 5}).t, up = rand({3, 5}).t;
  Tensor q = rand({1, 2, 3, 4}).t, k = rand({1, 1, 5, 4}).t, v = rand({1, 1, 5, 4}).t;
  auto [value, grads] = value_and_grad(
      [](const std::vector<Tensor>& in) {
        return sum(swiglu(in[0], in[1])) + sum(scaled_dot_product_attention(in[2], in[3], in[4], std::nullopt, true));
      },
      {gate, up, q, k, v});
  ASSERT_EQ(grads.size(), 5u);
  for (size_t i = 0; i < grads.size(); ++i) {
    EXPECT_TRUE(grads[i].is_contiguous() && grads[i].offset() == 0) << "gradient " << i;
    EXPECT_EQ(grads[i].storage().use_count(), 1) << "gradient " << i << " shares a buffer";
  }
  Tensor joined = rand({3, 10}).t;
  auto [v2, g2] = value_and_grad(
      [](const std::vector<Tensor>& in) {
        std::vector<Tensor> halves = split(in[0], {5, 5}, 1);
        return sum(swiglu(halves[0], halves[1]));
      },
      {joined});
  EXPECT_TRUE(g2[0].is_contiguous() && g2[0].offset() == 0 && g2[0].shape() == joined.shape());
  EXPECT_EQ(g2[0].storage().use_count(), 1) << "the joined gradient shares a buffer";
}

}  // namespace
}  // namespace wick
