// The properties primitives declare (primitive.h) hold. A primitive whose vjp is declared not to
// read its output gives the same gradients when that output's memory is overwritten after the
// forward (what lora_add's donation does); one declared to read it does read it (so the check can
// fail). A primitive that names an in-place input writes its result into that input's memory when
// nothing else holds it, and into fresh memory, leaving the input as it was, when something does.
#include <cmath>
#include <functional>

#include "support/testing.h"
#include "wick/core/primitive.h"
#include "wick/core/quantized.h"

namespace wick {
namespace {

using namespace testing;

WICK_DEVICE_SUITE(Properties);

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Case {
  std::string name;  // the name() of the primitive the op's result comes from
  Fn op;
  std::vector<Tensor> inputs;  // all differentiated
};

// Replaces y's memory with NaNs, as a consumer writing over it after the forward would.
void overwrite_with_nan(const Tensor& y) {
  Tensor nan = full(y.shape(), NAN, y.dtype(), y.device()).eval();
  y.set_data(nan.storage(), nan.strides(), 0);
}

struct Outcome {
  std::string primitive;
  bool reads_output = true;
  std::vector<Tensor> grads;
};

// Gradients of sum(op(inputs) * w) for fixed weights w, optionally overwriting op's result once
// the loss has been computed from it. The product's own gradient reads only w, so only the vjp of
// op's primitive can see the overwritten memory.
Outcome gradients(const Case& c, bool overwrite) {
  Outcome o;
  o.grads = grad(
      [&](const std::vector<Tensor>& in) {
        Tensor y = c.op(in);
        if (const Primitive* p = y.primitive()) {
          o.primitive = p->name();
          o.reads_output = p->vjp_reads_output();
        }
        int64_t n = y.numel();
        Tensor w = reshape(astype(arange(1, double(n + 1), 1, Dtype::F64, y.device()), y.dtype()), y.shape()) *
                   (1.0 / double(n));
        Tensor loss = sum(y * w);
        if (overwrite) overwrite_with_nan(y);
        return loss;
      },
      c.inputs);
  return o;
}

bool any_nan(const std::vector<Tensor>& ts) {
  for (const Tensor& t : ts)
    for (double v : values(t))
      if (std::isnan(v)) return true;
  return false;
}

WICK_DEVICE_TEST(Properties, OutputsThatNoVjpReadsMayBeOverwritten) {
  Dtype f64 = Dtype::F64;
  Tensor x = rand({3, 4}).t, y = rand({3, 4}).t, pos = rand({3, 4}, f64, 0.5, 2).t;
  Tensor row = rand({1, 4}).t, h = rand({4}).t, bias = rand({4}).t, m = rand({4, 5}).t;
  Tensor idx = ints({2, 0, 2}, {3}), idx2 = ints({2, 0}, {2}), targets = ints({1, 3, 0}, {3});
  Tensor cond = gt(rand({3, 4}).t, zeros({}, f64, device()));
  Tensor a = rand({2, 4}).t, b = rand({5, 2}).t, base = rand({3, 5}).t, block = rand({2, 2}).t;
  Tensor x4 = rand({1, 2, 3, 4}).t;
  Tensor xf = rand({2, 32}, Dtype::F32).t;
  QuantizedMatrix q = quantize(rand({3, 32}, Dtype::F32).t, QuantizedMatrix().type);  // the default blocks (Q8_0)
  auto unary = [](Tensor (*f)(const Tensor&)) { return [f](const std::vector<Tensor>& in) { return f(in[0]); }; };
  auto binary = [](Tensor (*f)(const Tensor&, const Tensor&)) {
    return [f](const std::vector<Tensor>& in) { return f(in[0], in[1]); };
  };
  std::vector<Case> unread{
      {"neg", unary(neg), {x}},
      {"log", unary(log), {pos}},
      {"abs", unary(abs), {x}},
      {"sin", unary(sin), {x}},
      {"cos", unary(cos), {x}},
      {"erf", unary(erf), {x}},
      {"silu", unary(silu), {x}},
      {"relu", unary(relu), {x}},
      {"gelu", unary(gelu), {x}},
      {"gelu_tanh", unary(gelu_tanh), {x}},
      {"add", binary(add), {x, y}},
      {"sub", binary(sub), {x, y}},
      {"mul", binary(mul), {x, y}},
      {"maximum", binary(maximum), {x, y}},
      {"minimum", binary(minimum), {x, y}},
      {"where", [&](const auto& in) { return where(cond, in[0], in[1]); }, {x, y}},
      {"astype", [](const auto& in) { return astype(in[0], Dtype::F32); }, {x}},
      {"reshape", [](const auto& in) { return reshape(in[0], {4, 3}); }, {x}},
      {"permute", [](const auto& in) { return transpose(in[0], 0, 1); }, {x}},
      {"slice", [](const auto& in) { return slice(in[0], 1, 1, 4, 2); }, {x}},
      {"broadcast_to", [](const auto& in) { return broadcast_to(in[0], {3, 4}); }, {row}},
      {"sum", [](const auto& in) { return sum(in[0], {1}, true); }, {x}},
      {"matmul", binary(matmul), {x, m}},
      {"gather", [&](const auto& in) { return take(in[0], idx, 0); }, {x}},
      {"scatter_add", [&](const auto& in) { return index_add(in[0], 0, idx2, in[1]); }, {x, a}},
      {"slice_update", [](const auto& in) { return slice_update(in[0], in[1], {1, 2}); }, {x, block}},
      {"concat", [](const auto& in) { return concat({in[0], in[1]}, 1); }, {x, y}},
      {"layer_norm", [](const auto& in) { return layer_norm(in[0], in[1], in[2]); }, {x, h, bias}},
      {"rms_norm", [](const auto& in) { return rms_norm(in[0], in[1]); }, {x, h}},
      {"rope", [](const auto& in) { return rope(in[0], int64_t(3)); }, {x4}},
      {"swiglu", binary(swiglu), {x, y}},
      {"lora_delta", [](const auto& in) { return lora_delta(in[0], in[1], in[2], 2.0); }, {x, a, b}},
      {"lora_add", [](const auto& in) { return lora_add(in[3], in[0], in[1], in[2], 2.0); }, {x, a, b, base}},
      {"cross_entropy", [&](const auto& in) { return cross_entropy(in[0], targets, -100, Reduction::None); }, {x}},
      {"quantized_matmul", [&](const auto& in) { return linear(in[0], q); }, {xf}},
      {"checkpoint", [](const auto& in) { return checkpoint([](const auto& v) { return sin(v[0]) * 2.0; }, in); }, {x}},
  };
  for (const Case& c : unread) {
    Outcome clean = gradients(c, false), overwritten = gradients(c, true);
    ASSERT_EQ(clean.primitive, c.name) << "the op's result does not come from the primitive under test";
    EXPECT_FALSE(clean.reads_output) << c.name << " qualifies but does not declare it";
    ASSERT_EQ(overwritten.grads.size(), clean.grads.size()) << c.name;
    for (size_t i = 0; i < clean.grads.size(); ++i)
      expect_close(overwritten.grads[i], values(clean.grads[i]), clean.grads[i].shape(), Tol{0, 0},
                   str_cat(c.name, ": gradient ", i, " with the output overwritten"));
  }

  Tensor q4 = rand({1, 2, 3, 4}).t, k4 = rand({1, 2, 5, 4}).t, v4 = rand({1, 2, 5, 4}).t;
  std::vector<Case> read{
      {"exp", unary(exp), {x}},
      {"sqrt", unary(sqrt), {pos}},
      {"rsqrt", unary(rsqrt), {pos}},
      {"tanh", unary(tanh), {x}},
      {"sigmoid", unary(sigmoid), {x}},
      {"div", binary(div), {x, pos}},
      {"pow", binary(pow), {pos, y}},
      {"max", [](const auto& in) { return max(in[0], {1}, true); }, {x}},
      {"softmax", [](const auto& in) { return softmax(in[0]); }, {x}},
      {"attention", [](const auto& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); }, {q4, k4, v4}},
  };
  for (const Case& c : read) {
    Outcome o = gradients(c, true);
    ASSERT_EQ(o.primitive, c.name) << "the op's result does not come from the primitive under test";
    EXPECT_TRUE(o.reads_output) << c.name << "'s vjp reads its output but the primitive says it does not";
    // Attention's backward reads its output on CUDA (dO . O per row); the CPU's takes that sum from
    // the recomputed probabilities instead, so only the declaration is checked there.
    if (c.name == "attention" && device().is_cpu()) continue;
    EXPECT_TRUE(any_nan(o.grads)) << c.name << ": overwriting the output did not reach its gradients";
  }
}

// An op whose primitive names an in-place input, built lazily so the node's primitive can be asked.
struct InPlaceCase {
  std::string name;
  int input;                                   // the in-place input it must declare
  std::function<Tensor(Tensor)> op;            // takes the in-place input by value
  std::function<Tensor()> make_input;          // a fresh, evaluated buffer
};

WICK_DEVICE_TEST(Properties, InPlaceInputsAreWrittenOnlyWhenNothingElseHoldsThem) {
  Tensor src = rand({1, 2}, Dtype::F32).t, x = rand({2, 4}, Dtype::F32).t;
  Tensor a = rand({2, 4}, Dtype::F32).t, b = rand({3, 2}, Dtype::F32).t;
  Tensor slots = ints({0, -1}, {2}, Dtype::I32), a_stack = rand({1, 2, 4}, Dtype::F32).t;
  Tensor b_stack = rand({1, 3, 2}, Dtype::F32).t, scales = make({0.5}, {1}, Dtype::F32);
  Tensor k = rand({1, 1, 2}, Dtype::F32).t, v = rand({1, 1, 2}, Dtype::F32).t;
  Tensor tables = ints({0, 1}, {1, 2}, Dtype::I32), rows = ints({0}, {1}, Dtype::I32), at = ints({5}, {1}, Dtype::I32);
  std::vector<InPlaceCase> cases{
      {"slice_update", 0, [&](Tensor dst) { return slice_update(std::move(dst), src, {1, 1}); },
       [&] { return rand({3, 4}, Dtype::F32).t; }},
      // lora_gather_add's node is its expand.
      {"lora_gather_expand", 0,
       [&](Tensor base) { return lora_gather_add(std::move(base), x, slots, a_stack, b_stack, scales); },
       [&] { return rand({2, 3}, Dtype::F32).t; }},
      {"paged_kv_write", 0, [&](Tensor cache) { return paged_kv_write(std::move(cache), k, v, tables, rows, at); },
       [&] { return rand({2, 2, 1, 4, 2}, Dtype::F32).t; }},
      // lora_add decides when it builds the node (the base must be evaluated by then).
      {"lora_add", 3, [&](Tensor base) { return lora_add(std::move(base), x, a, b, 2.0); },
       [&] { return rand({2, 3}, Dtype::F32).t; }},
  };
  for (const InPlaceCase& c : cases) {
    ExecModeScope lazy(ExecMode::Lazy);
    Tensor in = c.make_input().eval();
    const void* buffer = in.data_ptr();
    Tensor out = c.op(std::move(in));
    ASSERT_EQ(std::string(out.primitive()->name()), c.name);
    EXPECT_EQ(out.primitive()->in_place_input(), c.input) << c.name;
    EXPECT_EQ(out.eval().data_ptr(), buffer) << c.name << ": a buffer nothing else holds was not written in place";
    // Held elsewhere: the result goes to fresh memory and the input keeps its values.
    Tensor held = c.make_input().eval();
    Values before = values(held);
    Tensor copy = c.op(held);
    EXPECT_NE(copy.eval().data_ptr(), held.data_ptr()) << c.name;
    EXPECT_EQ(values(held), before) << c.name << ": an input someone holds was written";
  }
}

}  // namespace
}  // namespace wick
