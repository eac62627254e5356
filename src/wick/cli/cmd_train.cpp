// `wick train`: LoRA fine-tuning of a decoder on JSONL data; writes a PEFT adapter and
// metrics.jsonl into --out.
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include "wick/cli/commands.h"
#include "wick/cli/model_files.h"
#include "wick/cli/model_loading.h"
#include "wick/lora/adapter.h"
#include "wick/train/trainer.h"

namespace wick::cli {

namespace {

struct TrainCliOptions {
  std::string model, data, validation, out, init_adapter, schedule = "constant", targets = "q_proj,v_proj";
  int64_t rank = 8, max_length = 1024, epochs = 0;
  double alpha = 16, dropout = 0;
  bool no_shuffle = false, rslora = false, train_on_prompt = false;
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

void run_train(TrainCliOptions o) {
  WICK_CHECK(o.dropout == 0, "train: LoRA dropout is not implemented yet; pass --dropout 0");
  LoadedDecoder loaded = load_decoder(o.model, o.runtime);
  // A model without a tokenizer can still train on pre-tokenised data, and one without a chat
  // template on text and prompt/completion data; the data loader names what is missing.
  std::optional<tok::Tokenizer> tokenizer;
  std::optional<tok::ChatTemplateConfig> chat;
  try {
    tokenizer = load_tokenizer(loaded.path);
    chat = load_chat_template(loaded.path);
  } catch (const Error&) {
  }
  train::DataContext ctx{tokenizer ? &*tokenizer : nullptr, chat ? &*chat : nullptr,
                         loaded.eos_ids.empty() ? std::nullopt : std::optional<int32_t>(loaded.eos_ids.front())};
  train::DataOptions dopt{o.max_length, o.train_on_prompt};
  std::vector<train::Example> data = train::load_jsonl(o.data, ctx, dopt);
  std::vector<train::Example> val;
  if (!o.validation.empty()) val = train::load_jsonl(o.validation, ctx, dopt);
  for (const auto& e : data)
    for (int32_t id : e.ids)
      WICK_CHECK(id >= 0 && id < loaded.model.config().vocab_size, o.data, ":", e.line, ": token id ", id,
                 " is outside the vocabulary of ", loaded.model.config().vocab_size);
  if (o.epochs > 0) {
    int64_t per_step = o.t.batch_size * o.t.grad_accum;
    o.t.steps = (int64_t(data.size()) * o.epochs + per_step - 1) / per_step;
  }
  lora::Adapter adapter;
  if (o.t.resume) WICK_CHECK(o.init_adapter.empty(), "train: --resume and --init-adapter exclude each other");
  if (!o.init_adapter.empty()) {
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
  o.t.out_dir = o.out;
  bool tty = isatty(fileno(stderr));
  std::fprintf(stderr, "training %zu examples (%zu validation) for %lld steps, %zu LoRA modules, rank %lld\n", data.size(),
               val.size(), (long long)o.t.steps, adapter.modules().size(), (long long)adapter.config().r);
  train::train_lora(loaded.model, adapter, data, val, o.t, [&](const train::StepMetrics& m) {
    std::fprintf(stderr, "%sstep %lld/%lld  loss %.4f  lr %.2e  grad-norm %.3f  %.0f tok/s", tty ? "\r" : "",
                 (long long)m.step, (long long)o.t.steps, m.loss, m.lr, m.grad_norm, m.tokens_per_second);
    if (m.val_loss >= 0) std::fprintf(stderr, "  val %.4f", m.val_loss);
    std::fprintf(stderr, tty ? "   " : "\n");
  });
  if (tty) std::fprintf(stderr, "\n");
  adapter.save(o.out, loaded.path);
  std::fprintf(stderr, "adapter written to %s\n", o.out.c_str());
}

}  // namespace

void register_train(CLI::App& app) {
  auto o = std::make_shared<TrainCliOptions>();
  CLI::App* cmd = app.add_subcommand("train", "Fine-tune a LoRA adapter on JSONL data");
  cmd->add_option("--model", o->model, "model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--data", o->data, "training JSONL: {text} | {prompt, completion} | {messages} | {input_ids, labels?}")
      ->required();
  cmd->add_option("--validation", o->validation, "validation JSONL (same shapes)");
  cmd->add_option("--out", o->out, "folder for the PEFT adapter and metrics.jsonl")->required();
  cmd->add_option("--init-adapter", o->init_adapter, "start from this PEFT adapter");
  cmd->add_option("--rank", o->rank, "LoRA rank")->check(CLI::Range(1, 4096));
  cmd->add_option("--alpha", o->alpha, "LoRA alpha (scale alpha / rank)")->check(CLI::PositiveNumber);
  cmd->add_option("--dropout", o->dropout, "LoRA dropout");
  cmd->add_flag("--rslora", o->rslora, "scale alpha / sqrt(rank)");
  cmd->add_option("--targets", o->targets, "comma-separated projections, or all-linear");
  cmd->add_option("--lr", o->t.adamw.lr, "learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--weight-decay", o->t.adamw.weight_decay, "AdamW weight decay")->check(CLI::NonNegativeNumber);
  cmd->add_option("--steps", o->t.steps, "optimizer steps")->check(CLI::Range(1, 100000000));
  cmd->add_option("--epochs", o->epochs, "passes over the data (instead of --steps)")->check(CLI::Range(1, 100000));
  cmd->add_option("--batch-size", o->t.batch_size, "examples per micro-batch")->check(CLI::Range(1, 65536));
  cmd->add_option("--grad-accum", o->t.grad_accum, "micro-batches per optimizer step")->check(CLI::Range(1, 65536));
  cmd->add_option("--max-grad-norm", o->t.max_grad_norm, "global gradient-norm clip (0: off)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-length", o->max_length, "truncate examples to this many tokens")->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--schedule", o->schedule, "constant, linear or cosine")->check(CLI::IsMember({"constant", "linear", "cosine"}));
  cmd->add_option("--warmup", o->t.warmup, "warm-up steps")->check(CLI::NonNegativeNumber);
  cmd->add_option("--eval-every", o->t.eval_every, "steps between validation passes")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->t.seed, "seed of initialisation and shuffling");
  cmd->add_flag("--no-shuffle", o->no_shuffle, "keep the data's order");
  cmd->add_option("--checkpoint-every", o->t.checkpoint_every, "write DIR/checkpoint-STEP every N steps (0: never)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--keep-checkpoints", o->t.keep_checkpoints, "how many of the newest checkpoints to keep")
      ->check(CLI::Range(1, 1000000));
  cmd->add_flag("--resume", o->t.resume, "continue exactly from the newest checkpoint in --out");
  cmd->add_flag("--train-on-prompt", o->train_on_prompt, "take the loss on prompt tokens too");
  add_runtime_options(cmd, o->runtime);
  cmd->callback([o] { run_train(*o); });
}

}  // namespace wick::cli
