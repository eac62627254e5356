// `wick train`: LoRA fine-tuning of a decoder on JSONL data; writes a PEFT adapter,
// metrics.jsonl, loss.svg and (with validation) best/ into --out, showing progress on stderr.
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <thread>

#include "wick/cli/commands.h"
#include "wick/cli/interrupt.h"
#include "wick/cli/runtime_options.h"
#include "wick/cli/validators.h"
#include "wick/lora/adapter.h"
#include "wick/core/backend_hooks.h"
#include "wick/train/nccl_group.h"
#include "wick/train/progress.h"
#include "wick/train/rendezvous.h"
#include "wick/train/trainer.h"

namespace wick::cli {

namespace {

struct TrainCliOptions {
  std::string model, data, validation, out, init_adapter, schedule = "constant", targets = "q_proj,v_proj", exec = "eager";
  int64_t rank = 8, max_length = 1024, epochs = 0;
  int64_t log_every = -1;  // not given: 1 when stderr is not a terminal, 0 on one
  double alpha = 16, dropout = 0;
  bool no_shuffle = false, rslora = false, train_on_prompt = false, overwrite = false, unfused_loss = false, packing = false;
  std::vector<std::string> adapter_flags;  // the adapter-shaping options given on the command line
  int gpus = 1;                              // data-parallel ranks in this process, one per GPU
  train::RendezvousFlags rendezvous;         // a run of several processes
  double dist_timeout = 300;                 // seconds a rank waits for the others
  train::TrainOptions t;
  RuntimeOptions runtime;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Each step on stderr: on a terminal one progress bar redrawn in place, with the lines that stay
// (validation passes, --log-every) printed above it; elsewhere plain lines.
class ProgressDisplay {
 public:
  ProgressDisplay(int64_t total, int64_t log_every)
      : tty_(isatty(fileno(stderr))), total_(total), log_every_(log_every >= 0 ? log_every : (tty_ ? 0 : 1)) {}

  void step(const train::StepMetrics& m) {
    eta_.step_done(seconds());
    if (steps_++ == 0) first_loss_ = m.loss;
    last_loss_ = m.loss;
    train::ProgressFields p{.step = m.step,
                            .total = total_,
                            .loss = m.loss,
                            .lr = m.lr,
                            .grad_norm = m.grad_norm,
                            .tokens_per_second = m.tokens_per_second,
                            .elapsed_seconds = eta_.elapsed_seconds(),
                            .eta_seconds = eta_.eta_seconds(total_ - m.step),
                            .val_loss = m.val_loss,
                            .best = m.best};
    if (m.val_loss >= 0 || (log_every_ > 0 && (m.step % log_every_ == 0 || m.step == total_)))
      std::fprintf(stderr, "%s%s\n", tty_ ? "\r\x1b[K" : "", train::render_progress_line(p).c_str());
    if (tty_) {
      // One column spare: a line that fills the terminal would wrap before the next redraw.
      std::fprintf(stderr, "\r%s\x1b[K", train::render_progress_bar(p, columns() - 1).c_str());
      bar_ = true;
    }
    std::fflush(stderr);
  }

  // Ends the bar's line, so what follows starts on a line of its own.
  void finish() {
    if (bar_) std::fputs("\n", stderr);
    bar_ = false;
  }

  void summary(const train::TrainResult& r, const std::string& out) const {
    std::fprintf(stderr, "trained to step %lld of %lld in %s", (long long)r.steps, (long long)total_,
                 train::format_duration(seconds()).c_str());
    if (steps_ > 0) std::fprintf(stderr, ": loss %.4f -> %.4f", first_loss_, last_loss_);
    if (r.best_step > 0)
      std::fprintf(stderr, "; best validation loss %.4f at step %lld, its adapter in %s/best", r.best_val_loss,
                   (long long)r.best_step, out.c_str());
    std::fprintf(stderr, "\n");
  }

 private:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }
  static int columns() {
    winsize w{};
    return ioctl(fileno(stderr), TIOCGWINSZ, &w) == 0 && w.ws_col > 0 ? int(w.ws_col) : 80;
  }

  bool tty_;
  int64_t total_, log_every_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  train::EtaEstimator eta_;
  int64_t steps_ = 0;
  double first_loss_ = 0, last_loss_ = 0;
  bool bar_ = false;
};

namespace fs = std::filesystem;

// What a run writes into --out, which --overwrite removes (anything else there is left alone).
bool written_by_a_run(const std::string& name) {
  static const char* const kFiles[] = {"metrics.jsonl", "loss.svg", "adapter_config.json", "adapter_model.safetensors",
                                       "best", "best.tmp", "best.old"};
  return std::find(std::begin(kFiles), std::end(kFiles), name) != std::end(kFiles) || name.rfind("checkpoint-", 0) == 0;
}

// A run starts in an empty --out, continues one (--resume) or replaces one (--overwrite): never
// mixes its files with an earlier run's.
void prepare_out_dir(const TrainCliOptions& o) {
  WICK_CHECK(!(o.t.resume && o.overwrite), "train: --resume and --overwrite exclude each other");
  if (o.t.resume) {
    WICK_CHECK(!train::latest_checkpoint(o.out).empty(), "train: --resume found no checkpoint-N folder in ", o.out,
               " (checkpoints are written every --checkpoint-every steps and when a run is interrupted)");
    return;
  }
  if (!fs::exists(o.out)) return;
  WICK_CHECK(fs::is_directory(o.out), "train: --out ", o.out, " is a file, not a folder");
  if (fs::is_empty(o.out)) return;
  WICK_CHECK(o.overwrite, "train: --out ", o.out,
             " is not empty (an earlier run?): add --resume to continue from its newest checkpoint, or --overwrite "
             "to replace it");
  for (const auto& entry : fs::directory_iterator(o.out))
    if (written_by_a_run(entry.path().filename().string())) fs::remove_all(entry.path());
}

// On --resume the adapter's shape comes from the checkpoint; an adapter option given that says
// otherwise is an error rather than a shape mismatch deep in loading.
void check_resumed_adapter(const lora::LoraConfig& c, const TrainCliOptions& o, const std::string& checkpoint) {
  auto given = [&](const char* flag) {
    return std::find(o.adapter_flags.begin(), o.adapter_flags.end(), flag) != o.adapter_flags.end();
  };
  auto differs = [&](const char* flag, const std::string& asked, const std::string& has) {
    fail("train: ", flag, " ", asked, " differs from the checkpoint's ", has, " (", checkpoint,
         "); a resumed run keeps the checkpoint's adapter: leave ", flag, " out");
  };
  if (given("--rank") && o.rank != c.r) differs("--rank", std::to_string(o.rank), "rank " + std::to_string(c.r));
  if (given("--alpha") && o.alpha != c.alpha) differs("--alpha", str_cat(o.alpha), str_cat("alpha ", c.alpha));
  if (given("--dropout") && o.dropout != c.dropout) differs("--dropout", str_cat(o.dropout), str_cat("dropout ", c.dropout));
  if (given("--rslora") && o.rslora != c.use_rslora) differs("--rslora", "", c.use_rslora ? "rsLoRA" : "plain LoRA scaling");
  if (given("--targets")) {
    std::vector<std::string> asked = split_list(o.targets), has = c.target_modules;
    if (asked == std::vector<std::string>{"all-linear"}) asked = lora::decoder_projections();
    if (has == std::vector<std::string>{"all-linear"}) has = lora::decoder_projections();
    std::sort(asked.begin(), asked.end());
    std::sort(has.begin(), has.end());
    std::string list;
    for (const std::string& t : has) list += (list.empty() ? "" : ",") + t;
    if (asked != has) differs("--targets", o.targets, "targets " + list);
  }
}

int64_t checkpoint_step(const std::string& checkpoint) {
  return std::stoll(fs::path(checkpoint).filename().string().substr(std::string("checkpoint-").size()));
}

void train_rank(TrainCliOptions o, train::Collective* group, bool handles_signals);

void run_train(TrainCliOptions o) {
  WICK_CHECK(o.dropout >= 0 && o.dropout < 1, "train: --dropout must be in [0, 1), got ", o.dropout);
  o.t.exec = train::parse_exec_choice(o.exec);
  train::check_options(o.t, !o.validation.empty());
  WICK_CHECK(!o.t.resume || o.init_adapter.empty(), "train: --resume and --init-adapter exclude each other");
  if (!o.init_adapter.empty()) {
    std::string given;
    for (const std::string& f : o.adapter_flags) given += (given.empty() ? "" : ", ") + f;
    WICK_CHECK(given.empty(), "train: ", given, " cannot be combined with --init-adapter (its adapter_config.json sets them)");
    bool in_out = fs::exists(o.out) && fs::exists(o.init_adapter) && fs::equivalent(o.init_adapter, o.out);
    WICK_CHECK(!(o.overwrite && in_out), "train: --init-adapter ", o.init_adapter,
               " is the --out folder that --overwrite would clear");
  }
  // Data parallel: --gpus N (threads of this process, cuda:0 ... cuda:N-1) or several processes
  // (WORLD_SIZE/--world-size, each on cuda:LOCAL_RANK), summing gradients through NCCL.
  train::Rendezvous rv = train::rendezvous_from([](const char* v) -> const char* { return std::getenv(v); }, o.rendezvous);
  const int ranks = std::max(o.gpus, rv.world_size);
  if (ranks > 1) {
    WICK_CHECK(o.gpus == 1 || rv.world_size == 1, "train: --gpus runs every rank in this process; in a run of several "
               "processes (WORLD_SIZE, --world-size) each process takes one GPU (LOCAL_RANK): give one or the other");
    WICK_CHECK(train::nccl_available(), "train: training on several GPUs (--gpus, WORLD_SIZE/--world-size) needs a "
               "build with CUDA and NCCL; this one has no NCCL");
    WICK_CHECK(o.runtime.device == "auto" || o.runtime.device == "cuda", "train: --device ", o.runtime.device,
               " cannot be combined with several GPUs, which take cuda:0 ... (--gpus) or cuda:LOCAL_RANK themselves");
    const int have = cuda::device_count();
    const int need = rv.world_size > 1 ? rv.local_rank + 1 : o.gpus;
    WICK_CHECK(need <= have, "train: ", rv.world_size > 1 ? str_cat("LOCAL_RANK ", rv.local_rank) : str_cat("--gpus ", o.gpus),
               " needs ", need, " CUDA devices; this machine has ", have);
  }
  const auto timeout = std::chrono::milliseconds(int64_t(o.dist_timeout * 1000));
  if (rv.rank == 0) prepare_out_dir(o);
  if (rv.world_size > 1) {
    std::string id = train::share_from_rank0(rv, rv.rank == 0 ? train::nccl_unique_id() : std::string(), timeout);
    std::unique_ptr<train::Collective> group = train::nccl_join(id, rv.rank, rv.world_size, rv.local_rank, timeout);
    o.runtime.device = "cuda:" + std::to_string(rv.local_rank);
    train_rank(o, group.get(), true);
    return;
  }
  if (o.gpus == 1) {
    train_rank(o, nullptr, true);
    return;
  }
  const std::string id = train::nccl_unique_id();
  std::vector<std::string> errors(size_t(o.gpus));
  std::vector<std::thread> workers;
  for (int r = 0; r < o.gpus; ++r)
    workers.emplace_back([&, r] {
      try {
        TrainCliOptions mine = o;
        mine.runtime.device = "cuda:" + std::to_string(r);
        std::unique_ptr<train::Collective> group = train::nccl_join(id, r, o.gpus, r, timeout);
        train_rank(mine, group.get(), r == 0);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (std::thread& w : workers) w.join();
  // The first rank's error, with the others' when they say something else.
  std::string message;
  for (int r = 0; r < o.gpus; ++r)
    if (!errors[size_t(r)].empty()) message += str_cat(message.empty() ? "" : "\n", "rank ", r, ": ", errors[size_t(r)]);
  WICK_CHECK(message.empty(), message);
}

// One rank's training (the whole run when there is one): load, train, write (rank 0).
void train_rank(TrainCliOptions o, train::Collective* group, bool handles_signals) {
  const int ranks = group ? group->size() : 1;
  const bool lead = group == nullptr || group->rank() == 0;
  o.t.group = group;
  models::LoadedDecoder loaded = models::load_decoder(o.model, o.runtime.load_options());
  // A model without a tokenizer can still train on pre-tokenised data, and one without a chat
  // template on text and prompt/completion data; the data loader names what is missing and why.
  const tok::Tokenizer* tokenizer = loaded.tokenizer ? &*loaded.tokenizer : nullptr;
  const chat::ChatTemplateConfig* chat_template = tokenizer && loaded.chat_template ? &*loaded.chat_template : nullptr;
  train::DataContext ctx{tokenizer, chat_template,
                         loaded.eos_ids.empty() ? std::nullopt : std::optional<int32_t>(loaded.eos_ids.front()),
                         loaded.tokenizer_error, loaded.chat_template_error};
  train::DataOptions dopt{o.max_length, o.train_on_prompt};
  std::vector<train::Example> data = train::load_jsonl(o.data, ctx, dopt);
  std::vector<train::Example> val;
  if (!o.validation.empty()) val = train::load_jsonl(o.validation, ctx, dopt);
  for (const auto& e : data)
    for (int32_t id : e.ids)
      WICK_CHECK(id >= 0 && id < loaded.model.config().vocab_size, o.data, ":", e.line, ": token id ", id,
                 " is outside the vocabulary of ", loaded.model.config().vocab_size);
  if (o.packing) {
    size_t examples = data.size();
    data = train::pack_examples(data, o.max_length);
    if (!val.empty()) val = train::pack_examples(val, o.max_length);
    if (lead)
      std::fprintf(stderr, "packed %zu examples into %zu rows of up to %lld tokens\n", examples, data.size(),
                   (long long)o.max_length);
  }
  if (o.epochs > 0) {
    int64_t per_step = o.t.batch_size * o.t.grad_accum * ranks;
    o.t.steps = (int64_t(data.size()) * o.epochs + per_step - 1) / per_step;
  }
  lora::Adapter adapter;
  std::string checkpoint = o.t.resume ? train::latest_checkpoint(o.out) : "";
  if (o.t.resume) {
    adapter = lora::Adapter::load(checkpoint, loaded.model);
    check_resumed_adapter(adapter.config(), o, checkpoint);
  } else if (!o.init_adapter.empty()) {
    adapter = lora::Adapter::load(o.init_adapter, loaded.model);
  } else {
    lora::LoraConfig cfg;
    cfg.r = o.rank;
    cfg.alpha = o.alpha;
    cfg.dropout = o.dropout;
    cfg.use_rslora = o.rslora;
    cfg.target_modules = split_list(o.targets);
    adapter = lora::Adapter::init(loaded.model, cfg, o.t.seed);
  }
  o.t.schedule = train::parse_schedule(o.schedule);
  o.t.shuffle = !o.no_shuffle;
  o.t.fused_loss = !o.unfused_loss;
  o.t.out_dir = o.out;
  o.t.base_model = loaded.path;
  if (!o.runtime.quantized_base.empty() && lead)
    std::fprintf(stderr, "base linear layers kept quantized (%s): %.1f MiB\n", o.runtime.quantized_base.c_str(),
                 double(loaded.model.linear_weight_bytes()) / (1 << 20));
  ProgressDisplay progress(o.t.steps, o.log_every);
  train::TrainResult result;
  {
    // Installed before the first line about training, so a Ctrl-C at any time after it is seen
    // finishes a step instead of killing the process. One scope per process: with --gpus the
    // first rank's; the group then stops every rank after the same step.
    std::optional<InterruptScope> interrupt;
    if (handles_signals) {
      interrupt.emplace("\nwick: interrupted: finishing this step, then writing the adapter and a checkpoint "
                        "(Ctrl-C again to exit at once)\n");
      o.t.interrupt = &interrupt->requested();
    }
    if (lead)
      std::fprintf(stderr, "training %zu %s (%zu validation) for %lld steps, %zu LoRA modules, rank %lld\n",
                 data.size(), o.packing ? "packed rows" : "examples", val.size(), (long long)o.t.steps, adapter.modules().size(), (long long)adapter.config().r);
    if (lead && ranks > 1)
      std::fprintf(stderr, "data parallel: %d ranks, %lld examples per rank per micro-batch\n", ranks,
                   (long long)o.t.batch_size);
    if (o.t.resume && lead)
      std::fprintf(stderr, "resuming from %s (step %lld of %lld)\n", checkpoint.c_str(),
                   (long long)checkpoint_step(checkpoint), (long long)o.t.steps);
    try {
      result = train::train_lora(loaded.model, adapter, data, val, o.t, [&](const train::StepMetrics& m) { progress.step(m); });
    } catch (...) {
      progress.finish();  // the error goes on a line of its own
      throw;
    }
  }
  progress.finish();
  if (!lead) return;  // rank 0 reports and writes
  if (result.stopped_early)
    std::fprintf(stderr, "stopped after step %lld of %lld: %s\n", (long long)result.steps, (long long)o.t.steps,
                 result.stop_reason.c_str());
  progress.summary(result, o.out);
  adapter.save(o.out, loaded.path);
  std::fprintf(stderr, "adapter written to %s (loss curve: %s/loss.svg)\n", o.out.c_str(), o.out.c_str());
  if (result.interrupted) {
    std::fprintf(stderr, "interrupted after step %lld of %lld; checkpoint %s. To continue, run the same command with --resume\n",
                 (long long)result.steps, (long long)o.t.steps, result.checkpoint.c_str());
    std::fflush(stderr);
    std::exit(130);  // as a process ended by SIGINT reports it
  }
}

}  // namespace

void register_train(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Fine-tune a LoRA adapter on JSONL data");
  cmd->add_option("-m,--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--data", o->data, "training JSONL: {text} | {prompt, completion} | {messages} | {input_ids, labels?}")
      ->required();
  cmd->add_option("--validation", o->validation, "validation JSONL (same shapes)");
  cmd->add_option("-o,--out", o->out, "folder for the PEFT adapter and metrics.jsonl")->required();
  cmd->add_option("--init-adapter", o->init_adapter, "start from this PEFT adapter");
  cmd->add_option("--rank", o->rank, "LoRA rank")->check(CLI::Range(1, 4096));
  cmd->add_option("--alpha", o->alpha, "LoRA alpha (scale alpha / rank)")->check(positive());
  cmd->add_option("--dropout", o->dropout, "LoRA dropout on the adapters' input, training only (PEFT's lora_dropout)");
  cmd->add_flag("--rslora", o->rslora, "scale alpha / sqrt(rank)");
  cmd->add_option("--targets", o->targets, "comma-separated projections, or all-linear");
  cmd->add_option("--lr", o->t.adamw.lr, "learning rate")->check(positive());
  cmd->add_option("--weight-decay", o->t.adamw.weight_decay, "AdamW weight decay")->check(non_negative());
  cmd->add_option("--steps", o->t.steps, "optimizer steps")->check(CLI::Range(1, 100000000));
  cmd->add_option("--epochs", o->epochs, "passes over the data (instead of --steps)")->check(CLI::Range(1, 100000));
  cmd->add_option("--batch-size", o->t.batch_size, "examples per micro-batch")->check(CLI::Range(1, 65536));
  cmd->add_option("--grad-accum", o->t.grad_accum, "micro-batches per optimizer step")->check(CLI::Range(1, 65536));
  cmd->add_option("--max-grad-norm", o->t.max_grad_norm, "global gradient-norm clip (0: off)")->check(non_negative());
  cmd->add_option("--max-length", o->max_length, "truncate examples to this many tokens")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--schedule", o->schedule, "constant, linear or cosine")->check(CLI::IsMember({"constant", "linear", "cosine"}));
  cmd->add_option("--warmup", o->t.warmup, "warm-up steps")->check(non_negative());
  cmd->add_option("--eval-every", o->t.eval_every, "steps between validation passes")->check(non_negative());
  cmd->add_option("--seed", o->t.seed, "seed of initialisation, shuffling and dropout");
  cmd->add_flag("--no-shuffle", o->no_shuffle, "keep the data's order");
  cmd->add_option("--checkpoint-every", o->t.checkpoint_every, "write DIR/checkpoint-STEP every N steps (0: never)")
      ->check(non_negative());
  cmd->add_option("--keep-checkpoints", o->t.keep_checkpoints, "how many of the newest checkpoints to keep (the best validation's stays too)")
      ->check(CLI::Range(1, 1000000));
  cmd->add_flag("--resume", o->t.resume, "continue exactly from the newest checkpoint in --out (its adapter settings)");
  cmd->add_flag("--overwrite", o->overwrite, "replace an earlier run in --out (its adapter, checkpoints, best/, metrics)");
  cmd->add_option("--early-stopping-patience", o->t.early_stopping_patience,
                  "stop after N validation passes in a row without improvement (0: off; needs --validation, --eval-every)")
      ->check(non_negative());
  cmd->add_option("--early-stopping-delta", o->t.early_stopping_delta,
                  "how much the validation loss must fall to count as an improvement")
      ->check(non_negative());
  cmd->add_option("--log-every", o->log_every,
                  "a progress line every N steps (default: 1 when stderr is not a terminal; on one, 0: the bar only)")
      ->check(non_negative());
  cmd->add_flag("--train-on-prompt", o->train_on_prompt, "take the loss on prompt tokens too");
  cmd->add_flag("--packing", o->packing,
                "pack several examples into each row of --max-length tokens, each attending only to itself with its "
                "own positions (no padding; --batch-size then counts rows)");
  cmd->add_flag("--unfused-loss", o->unfused_loss,
                "apply the LM head and the loss one after the other, holding the logits [batch, seq, vocab] and their "
                "gradient (the default takes them a chunk of rows at a time)");
  cmd->add_flag("--gradient-checkpointing", o->t.activation_checkpointing,
               "keep only each layer's input for the backward and recompute the rest (less memory, more compute; "
               "eager steps)");
  cmd->add_option("--exec", o->exec,
                  "eager (default, fastest) or lazy: each step recorded and run as one graph that frees activations "
                  "after their last use (less memory)")
      ->check(CLI::IsMember({"eager", "lazy"}));
  cmd->add_option("--gpus", o->gpus,
                  "data parallel: train on N GPUs of this machine (cuda:0 ... N-1), each taking --batch-size examples "
                  "of every micro-batch; gradients are summed through NCCL")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--world-size", o->rendezvous.world_size,
                  "data parallel over processes (default: WORLD_SIZE): how many; each uses cuda:LOCAL_RANK")
      ->check(CLI::Range(1, 65536));
  cmd->add_option("--process-rank", o->rendezvous.rank, "this process's rank in the run (default: RANK; --rank is the LoRA rank)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--local-rank", o->rendezvous.local_rank, "this process's GPU on its host (default: LOCAL_RANK)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--master-addr", o->rendezvous.master_addr, "host of rank 0 (default: MASTER_ADDR, else 127.0.0.1)");
  cmd->add_option("--master-port", o->rendezvous.master_port, "port of rank 0 (default: MASTER_PORT, else 29500)")
      ->check(CLI::Range(1, 65535));
  cmd->add_option("--dist-timeout", o->dist_timeout,
                  "seconds a rank waits for the others (joining, each gradient sum) before the run stops with an error")
      ->check(positive());
  add_runtime_options(cmd, o->runtime);
  add_quantized_base_option(cmd, o->runtime);
  cmd->callback([o, cmd] {
    WICK_CHECK(cmd->count("--steps") == 0 || cmd->count("--epochs") == 0,
               "train: give --steps or --epochs, not both");
    for (const char* flag : {"--rank", "--alpha", "--dropout", "--rslora", "--targets"})
      if (cmd->count(flag) > 0) o->adapter_flags.push_back(flag);
    run_train(*o);
  });
}

}  // namespace wick::cli
