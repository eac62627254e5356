// The list of subcommands.
#include "wick/cli/commands.h"

namespace wick::cli {

void register_commands(CLI::App& app) {
  register_demo(app);
  register_text_commands(app);
  register_info(app);
  register_generate(app);
  register_embed(app);
  register_train(app);
  register_logits(app);
  register_merge(app);
  register_chat(app);
  register_pull(app);
  register_bench(app);
  register_serve(app);
}

}  // namespace wick::cli
