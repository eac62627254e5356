// sample_tokens: argument checks and node creation (the primitive's evaluations live in
// backend/cpu/sampling.cpp and backend/cuda/sampling.cu), and the messages both backends give for
// bad values.
#include "wick/core/ops/sampling.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "wick/base/error.h"

namespace wick {

namespace {

std::string shortest(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

}  // namespace

std::string sampling_params_error(const double* p) {
  double t = p[kSampleTemperature], k = p[kSampleTopK], top_p = p[kSampleTopP], min_p = p[kSampleMinP],
         penalty = p[kSampleRepetitionPenalty];
  if (!(t >= 0 && std::isfinite(t))) return "temperature must be >= 0 and finite, got " + shortest(t);
  if (!(k >= 0 && std::isfinite(k) && k == std::floor(k)))
    return "top_k must be a non-negative integer, got " + shortest(k);
  if (!(top_p > 0 && top_p <= 1)) return "top_p must be in (0, 1], got " + shortest(top_p);
  if (!(min_p >= 0 && min_p <= 1)) return "min_p must be in [0, 1], got " + shortest(min_p);
  if (!(penalty > 0)) return "repetition_penalty must be > 0, got " + shortest(penalty);
  return "";
}

std::string sampling_error_message(int64_t row, const std::string& what) {
  return str_cat("sample_tokens: row ", row, ": ", what);
}

Tensor sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& history, const Tensor& uniforms) {
  const char* op = "sample_tokens";
  WICK_CHECK(logits.ndim() == 2, op, ": logits must be [rows, vocab], got ", shape_str(logits.shape()));
  WICK_CHECK(logits.dtype() == Dtype::F32, op, ": logits must be f32, got ", dtype_name(logits.dtype()));
  int64_t rows = logits.shape(0), vocab = logits.shape(1);
  WICK_CHECK(vocab > 0, op, ": logits have an empty vocabulary (shape ", shape_str(logits.shape()), ")");
  WICK_CHECK(vocab <= std::numeric_limits<int32_t>::max(), op, ": a vocabulary of ", vocab,
             " tokens does not fit i32 ids");
  WICK_CHECK(params.ndim() == 2 && params.shape(0) == rows && params.shape(1) == kSampleParamCount, op,
             ": params must be [", rows, ", ", int(kSampleParamCount),
             "] (temperature, top_k, top_p, min_p, repetition_penalty per row), got ", shape_str(params.shape()));
  WICK_CHECK(params.dtype() == Dtype::F64, op, ": params must be f64, got ", dtype_name(params.dtype()));
  WICK_CHECK(history.ndim() == 2 && history.shape(0) == rows, op, ": history must be [", rows,
             ", H] (ids seen per row, -1 pads), got ", shape_str(history.shape()));
  WICK_CHECK(history.dtype() == Dtype::I32, op, ": history must be i32, got ", dtype_name(history.dtype()));
  WICK_CHECK(uniforms.ndim() == 1 && uniforms.shape(0) == rows, op, ": uniforms must be [", rows, "], got ",
             shape_str(uniforms.shape()));
  WICK_CHECK(uniforms.dtype() == Dtype::F64, op, ": uniforms must be f64, got ", dtype_name(uniforms.dtype()));
  for (const Tensor* t : {&params, &history, &uniforms})
    WICK_CHECK(t->device() == logits.device(), op, ": every input must be on the logits' device (",
               logits.device().str(), "), got one on ", t->device().str());
  return Tensor::make({rows, 2}, Dtype::F64, logits.device(), std::make_shared<SampleTokens>(),
                      {logits, params, history, uniforms});
}

}  // namespace wick
