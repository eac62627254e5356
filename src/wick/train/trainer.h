// The LoRA training loop: batches with padding, gradient accumulation, global-norm clipping,
// AdamW, learning-rate schedules with warm-up, periodic validation, metrics.jsonl and the adapter,
// the best validation's adapter (out_dir/best), early stopping and the loss curve (out_dir/loss.svg).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "wick/lora/adapter.h"
#include "wick/train/adamw.h"
#include "wick/train/collective.h"
#include "wick/train/data.h"

namespace wick::train {

enum class Schedule { Constant, Linear, Cosine };
Schedule parse_schedule(const std::string& name);
// The learning rate of step (1-based) out of total, warming up linearly over `warmup` steps.
double learning_rate(Schedule schedule, double base, int64_t step, int64_t total, int64_t warmup);

// How a training step runs: eager (ops run as created; the fastest) or lazy (the step is recorded
// and evaluated as one graph that frees each activation after its last use: less memory).
enum class ExecChoice { Eager, Lazy };
ExecChoice parse_exec_choice(const std::string& name);

struct TrainOptions {
  int64_t steps = 100;  // optimizer steps
  int64_t batch_size = 4;
  int64_t grad_accum = 1;
  ExecChoice exec = ExecChoice::Eager;
  // Each decoder layer keeps only its input for the backward and is run again there (less memory,
  // about a third more compute); steps then run eagerly.
  bool activation_checkpointing = false;
  // The LM head and the loss as one op that takes the logits a chunk of rows at a time
  // (linear_cross_entropy): the logits [batch, seq, vocab] and their gradient never exist whole.
  // false: the logits in the compute dtype, then the loss (more memory, one product more).
  bool fused_loss = true;
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
  // shuffling RNG state. Only the newest `keep_checkpoints` are kept, and the best validation's.
  int64_t checkpoint_every = 0;
  int64_t keep_checkpoints = 2;
  // Continue from the newest checkpoint in out_dir, reproducing the uninterrupted run.
  bool resume = false;
  // Stop after this many validation passes in a row (0: never) that do not improve on the best
  // validation loss by more than `early_stopping_delta`. Needs validation data and eval_every > 0.
  int64_t early_stopping_patience = 0;
  double early_stopping_delta = 0;
  std::string base_model;  // recorded in the adapters of out_dir/best and of the checkpoints
  // Set (by a signal handler) to stop the run after the step in progress: that step is finished and
  // a checkpoint written (to out_dir, which is then required), so --resume continues exactly.
  const std::atomic<bool>* interrupt = nullptr;
  // Data-parallel training (collective.h): this worker's place in its group. Every rank draws the
  // same global batch of size() * batch_size rows and trains on its share; gradients, losses and
  // counts are summed over the group before the update, so every rank applies the same one and the
  // run equals one worker with a batch size() times larger. Only rank 0 writes to out_dir and calls
  // on_step; validation runs on rank 0 and its loss is shared.
  Collective* group = nullptr;
};

struct StepMetrics {
  int64_t step;
  double loss, lr, grad_norm, tokens_per_second;
  int64_t tokens;
  double val_loss = -1;  // < 0 when not evaluated at this step
  bool best = false;     // val_loss is the lowest so far; this step's adapter is in out_dir/best
};

struct TrainResult {
  int64_t steps = 0;           // the last step done
  bool stopped_early = false;  // by early stopping, before options.steps
  std::string stop_reason;     // why, when stopped_early
  int64_t best_step = 0;       // the best validation's step (0: no validation)
  double best_val_loss = 0;
  bool interrupted = false;    // stopped by options.interrupt before options.steps
  std::string checkpoint;      // the newest checkpoint of out_dir at the end ("" if none)
};

// Checks what of `options` needs no model or data (train_lora does too), naming the CLI's flags,
// so a command can fail before loading a model.
void check_options(const TrainOptions& options, bool has_validation);

// The newest checkpoint folder (out_dir/checkpoint-N) a --resume would continue from; "" if none.
std::string latest_checkpoint(const std::string& out_dir);

// Trains `adapter` on `train` over `model`; `on_step` sees each step's metrics. With an out_dir,
// writes metrics.jsonl as it goes, the adapter of the best validation pass to out_dir/best, and
// out_dir/loss.svg at each checkpoint and at the end, also when the run stops on an error (a loss
// that is not finite stops it before that step's update, keeping the checkpoints written so far).
TrainResult train_lora(const models::DecoderModel& model, lora::Adapter& adapter, const std::vector<Example>& train,
                       const std::vector<Example>& validation, const TrainOptions& options,
                       const std::function<void(const StepMetrics&)>& on_step = {});

// The key of the LoRA dropout masks of micro-batch `micro` of optimizer step `step`: a pure
// function of the seed, so a resumed run draws the masks the uninterrupted one drew.
RandomKey dropout_key(uint64_t seed, int64_t step, int64_t micro);

// Mean token loss of the adapted model over `examples` (no gradients, no dropout).
double evaluate_loss(const models::DecoderModel& model, const lora::Adapter& adapter, const std::vector<Example>& examples,
                     int64_t batch_size);

}  // namespace wick::train
