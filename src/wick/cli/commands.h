// Registration of the CLI's subcommands; each lives in its own cmd_*.cpp.
#pragma once

#include <CLI/CLI.hpp>

namespace wick::cli {

void register_commands(CLI::App& app);

void register_demo(CLI::App& app);
void register_text_commands(CLI::App& app);
void register_info(CLI::App& app);

}  // namespace wick::cli
