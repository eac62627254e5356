// `wick pull ORG/NAME`: downloads a model from the Hugging Face Hub (or HF_ENDPOINT) into the
// huggingface_hub cache and prints the snapshot folder, which every --model option then accepts
// (as the folder, or as ORG/NAME).
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "wick/cli/commands.h"
#include "wick/hub/hub_client.h"

namespace wick::cli {

namespace {

struct PullCliOptions {
  std::string repo, revision = "main", cache_dir;
  std::vector<std::string> include, exclude;
  bool quiet = false;
};

std::string human_bytes(uint64_t n) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  double v = double(n);
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

void run_pull(const PullCliOptions& o) {
  hub::HubOptions opts = hub::HubOptions::from_env();
  if (!o.cache_dir.empty()) opts.cache_dir = o.cache_dir;
  opts.include = o.include;
  opts.exclude = o.exclude;
  bool tty = isatty(fileno(stderr));
  if (!o.quiet) {
    opts.progress = [tty](const hub::FileProgress& p) {
      if (p.finished) {
        std::fprintf(stderr, "%s  %-40s %10s  done%s\n", tty ? "\r" : "", p.file.c_str(), human_bytes(p.total).c_str(),
                     tty ? "          " : "");
      } else if (tty) {
        int pct = p.total > 0 ? int(100.0 * double(p.done) / double(p.total)) : 100;
        std::fprintf(stderr, "\r  %-40s %10s  %3d%%", p.file.c_str(), human_bytes(p.total).c_str(), pct);
      }
    };
  }
  hub::PullResult r = hub::pull(o.repo, o.revision, opts);
  if (!o.quiet) {
    if (r.from_cache) {
      std::fprintf(stderr, "%s at %s: %zu files from the cache (no network)\n", o.repo.c_str(), r.commit.c_str(),
                   r.files.size());
    } else {
      std::fprintf(stderr, "%s at %s: %zu files, %zu downloaded (%s)\n", o.repo.c_str(), r.commit.c_str(),
                   r.files.size(), r.files_downloaded, human_bytes(r.bytes_downloaded).c_str());
    }
  }
  std::cout << r.snapshot << "\n";
}

}  // namespace

void register_pull(CLI::App& app) {
  auto o = std::make_shared<PullCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "pull",
      "Download a model from the Hugging Face Hub into the huggingface_hub cache; prints its folder.\n"
      "Honours HF_ENDPOINT, HF_TOKEN, HF_HOME/HF_HUB_CACHE and HF_HUB_OFFLINE=1.");
  cmd->add_option("repo", o->repo, "model id, ORG/NAME")->required();
  cmd->add_option("--revision", o->revision, "branch, tag or commit (default main)");
  cmd->add_option("--include", o->include, "only files matching these glob patterns (e.g. '*.safetensors' '*.json')");
  cmd->add_option("--exclude", o->exclude, "skip files matching these glob patterns");
  cmd->add_option("--cache-dir", o->cache_dir, "cache folder instead of $HF_HUB_CACHE / $HF_HOME/hub");
  cmd->add_flag("--quiet", o->quiet, "print only the snapshot folder");
  cmd->callback([o] { run_pull(*o); });
}

}  // namespace wick::cli
