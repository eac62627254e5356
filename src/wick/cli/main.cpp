// The wick command-line tool: parses arguments, runs one command, turns errors into one line.
#include <CLI/CLI.hpp>

#include <iostream>

#include "wick/cli/commands.h"
#include "wick/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"wick: fine-tune, run and embed small language models on CPU and CUDA"};
  app.require_subcommand(1);
  wick::cli::register_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "wick: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
