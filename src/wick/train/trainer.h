// The LoRA training loop: batches with padding, gradient accumulation, global-norm clipping,
// AdamW, learning-rate schedules with warm-up, periodic validation, metrics.jsonl and the adapter.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "wick/lora/adapter.h"
#include "wick/train/adamw.h"
#include "wick/train/data.h"

namespace wick::train {

enum class Schedule { Constant, Linear, Cosine };
Schedule parse_schedule(const std::string& name);
// The learning rate of step (1-based) out of total, warming up linearly over `warmup` steps.
double learning_rate(Schedule schedule, double base, int64_t step, int64_t total, int64_t warmup);

struct TrainOptions {
  int64_t steps = 100;  // optimizer steps
  int64_t batch_size = 4;
  int64_t grad_accum = 1;
  double max_grad_norm = 1.0;  // 0: no clipping
  Schedule schedule = Schedule::Constant;
  int64_t warmup = 0;
  AdamWOptions adamw;
  uint64_t seed = 0;
  bool shuffle = true;
  int64_t eval_every = 0;  // steps between validation passes (0: only at the end, if there is data)
  std::string out_dir;     // metrics.jsonl is written here as training goes
  // Every this many steps (0: never) a checkpoint is written atomically to
  // out_dir/checkpoint-STEP: adapter, optimizer moments and steps, data order and position,
  // shuffling RNG state. Only the newest `keep_checkpoints` are kept.
  int64_t checkpoint_every = 0;
  int64_t keep_checkpoints = 2;
  // Continue from the newest checkpoint in out_dir, reproducing the uninterrupted run.
  bool resume = false;
};

struct StepMetrics {
  int64_t step;
  double loss, lr, grad_norm, tokens_per_second;
  int64_t tokens;
  double val_loss = -1;  // < 0 when not evaluated at this step
};

// Trains `adapter` on `train` over `model`; `on_step` sees each step's metrics.
void train_lora(const models::DecoderModel& model, lora::Adapter& adapter, const std::vector<Example>& train,
                const std::vector<Example>& validation, const TrainOptions& options,
                const std::function<void(const StepMetrics&)>& on_step = {});

// Mean token loss of the adapted model over `examples` (no gradients).
double evaluate_loss(const models::DecoderModel& model, const lora::Adapter& adapter, const std::vector<Example>& examples,
                     int64_t batch_size);

}  // namespace wick::train
