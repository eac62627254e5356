// Choosing the next token where the logits are: sample_tokens applies transformers' logits
// processors (repetition penalty, temperature, top-k, top-p, min-p) to each row of logits and draws
// one token per row from a given uniform number, so only the chosen ids and their log-probabilities
// leave the device. Same semantics as models::Sampler::sample given the same uniform draw.
#pragma once

#include <cstdint>
#include <string>

#include "wick/core/primitive.h"

namespace wick {

// The columns of sample_tokens' params: one row of options per row of logits.
enum SamplingParam : int {
  kSampleTemperature = 0,        // >= 0 and finite; 0 = greedy
  kSampleTopK = 1,               // a non-negative integer; 0 or >= vocabulary = off
  kSampleTopP = 2,               // in (0, 1]; 1 = off
  kSampleMinP = 3,               // in [0, 1]; 0 = off
  kSampleRepetitionPenalty = 4,  // > 0; 1 = off
  kSampleParamCount = 5,
};

// Per row r, on the device of the logits:
//   logits   [R, V] f32 (NaN and +inf are errors; -inf marks a token that can never be chosen)
//   params   [R, 5] f64 (SamplingParam columns; f64 so that options given as doubles, like
//                        models::SamplingOptions, give the same distribution)
//   history  [R, H] i32 (the ids seen so far, for the repetition penalty; -1 pads; H may be 0)
//   uniforms [R]    f64 (the draw u in [0, 1); not read for greedy rows)
// Returns [R, 2] f64: column 0 the chosen id (exact: ids stay below 2^31), column 1 its
// log-probability (greedy: under softmax of the penalised logits; sampled: of the final
// distribution).
//
// In float64, per row (the CPU evaluation does exactly this, in the order of models::Sampler):
//   s = logits, each id of history divided by the penalty where positive and multiplied where
//       negative (once per distinct id);
//   greedy (temperature 0): the first maximum of s, log-probability -log(sum exp(s - max s));
//   else s /= temperature; top-k keeps s >= the k-th largest (ties stay); top-p walks the tokens
//   by decreasing s (equal s: larger index first) and keeps a token while the probability mass
//   before it is below top_p (the first always stays); min-p drops p < min_p * max p; p =
//   softmax(s); the id is the first (in vocabulary order) whose cumulative probability exceeds u
//   (the last token of non-zero probability if rounding leaves u above the total).
//
// The CUDA evaluation takes one block per row, keeps everything on chip and never waits for the
// host (it can be captured in a CUDA graph). Its choices equal the CPU's except where rounding
// decides: a cumulative mass within ~1e-14 of top_p, min_p * max p or u; and two tokens whose
// penalised logits differ but whose quotients by the temperature are equal doubles (it orders by
// the penalised logits before the division). Bad values (params out of range, NaN or +inf
// logits, history ids outside [0, V) other than -1, u outside [0, 1) on a sampled row) raise an
// error on the CPU; on the GPU they make that row's result (-1, NaN) and raise the device error
// flag, reported as the same message at the next synchronisation.
Tensor sample_tokens(const Tensor& logits, const Tensor& params, const Tensor& history, const Tensor& uniforms);

// What is wrong with one row of params (an empty string when it is valid); the message names the
// field and the value.
std::string sampling_params_error(const double* row_params);
// The messages of sample_tokens' bad values, shared by both backends.
std::string sampling_error_message(int64_t row, const std::string& what);

class SampleTokens : public Primitive {
 public:
  const char* name() const override { return "sample_tokens"; }
  WICK_DECLARE_EVAL
};

}  // namespace wick
