// The wick command-line tool: parses arguments, runs one command, turns errors into one line
// (`wick: error: ...`; exit code 2 for usage errors, 1 for the rest).
#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "wick/base/error.h"
#include "wick/cli/commands.h"
#include "wick/cli/usage.h"

namespace {

// Output lost to a full disk or a closed pipe is a failure, not a silent success.
bool flush_stdout() {
  errno = 0;
  std::cout.flush();
  return std::fflush(stdout) == 0 && !std::ferror(stdout) && std::cout.good();
}

// An empty list's captured default ("[]") says nothing; --help shows no default for it.
void hide_empty_list_defaults(CLI::App& app) {
  for (CLI::Option* opt : app.get_options([](CLI::Option*) { return true; }))
    if (opt->get_default_str() == "[]") opt->default_str("");
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) hide_empty_list_defaults(*sub);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wick: fine-tune, run and embed small language models on CPU and CUDA"};
  app.require_subcommand(1);
  // Every option's default appears in --help (subcommands inherit this).
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", [] { return wick::cli::version_text(); }, "print the version, commit and backends");
  wick::cli::register_commands(app);
  hide_empty_list_defaults(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return wick::cli::report_parse_error(app, e);
  } catch (const wick::cli::UsageError& e) {
    std::cerr << "wick: error: " << e.what() << "\n";
    return wick::cli::kUsageExit;
  } catch (const std::exception& e) {
    flush_stdout();
    std::cerr << "wick: error: " << e.what() << "\n";
    return 1;
  }
  if (!flush_stdout()) {
    std::cerr << "wick: error: writing to stdout failed" << (errno ? std::string(": ") + std::strerror(errno) : "")
              << "\n";
    return 1;
  }
  return 0;
}
