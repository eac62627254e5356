// Registration of the CLI's subcommands; each lives in its own cmd_*.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace wick::cli {

void register_commands(CLI::App& app);

void register_demo(CLI::App& app);
void register_text_commands(CLI::App& app);
void register_info(CLI::App& app);
void register_generate(CLI::App& app);
void register_embed(CLI::App& app);
void register_train(CLI::App& app);
void register_logits(CLI::App& app);
void register_merge(CLI::App& app);
void register_chat(CLI::App& app);
void register_pull(CLI::App& app);
void register_bench(CLI::App& app);
void register_serve(CLI::App& app);

struct RuntimeOptions;
// --device, --dtype and --threads, shared by every command that runs a model.
void add_runtime_options(CLI::App* cmd, RuntimeOptions& runtime);
// --quantized-base, for the commands that load a decoder.
void add_quantized_base_option(CLI::App* cmd, RuntimeOptions& runtime);

}  // namespace wick::cli
