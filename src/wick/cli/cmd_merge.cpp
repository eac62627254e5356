// `wick merge`: folds a LoRA adapter into its base model and writes a Hugging Face folder that
// transformers (and wick) load without the adapter.
#include <cstdio>
#include <filesystem>

#include "wick/cli/commands.h"
#include "wick/cli/runtime_options.h"
#include "wick/lora/adapter.h"

namespace wick::cli {

void register_merge(CLI::App& app) {
  struct Options {
    std::string model, adapter, out, dtype = "f32";
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("merge", "Merge a LoRA adapter into its base model (writes a Hugging Face folder)");
  cmd->add_option("-m,--model", o->model, "the base: model folder, .gguf file or ORG/NAME")->required();
  cmd->add_option("--adapter", o->adapter, "the PEFT adapter folder")->required();
  cmd->add_option("-o,--out", o->out, "the folder to write")->required();
  cmd->add_option("--dtype", o->dtype, "dtype of the written weights")->check(CLI::IsMember({"f32", "bf16", "f16"}));
  cmd->callback([o] {
    RuntimeOptions runtime;
    runtime.device = "cpu";
    runtime.dtype = "f32";  // merge in f32, round once when writing
    models::LoadedDecoder loaded = models::load_decoder(o->model, runtime.load_options(false));
    lora::Adapter adapter = lora::Adapter::load(o->adapter, loaded.model);
    models::save_decoder(lora::merge(loaded.model, adapter), o->out, parse_dtype(o->dtype));
    // A folder base brings its tokenizer and generation files along.
    namespace fs = std::filesystem;
    if (fs::is_directory(loaded.path))
      for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "special_tokens_map.json"})
        if (fs::exists(fs::path(loaded.path) / f))
          fs::copy_file(fs::path(loaded.path) / f, fs::path(o->out) / f, fs::copy_options::overwrite_existing);
    std::fprintf(stderr, "merged %zu modules into %s\n", adapter.modules().size(), o->out.c_str());
  });
}

}  // namespace wick::cli
