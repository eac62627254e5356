// The wick binary as a child process the test can signal and feed: stdin through a pipe, stdout
// and stderr to files, waiting with a deadline. For the tests of Ctrl-C and of full disks.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace wick_test {

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class WickProcess {
 public:
  // Starts WICK_BINARY with `args`; stdout and stderr go to `out_path` and `err_path`. With
  // `file_size_limit` > 0 the child may write no file larger than that (RLIMIT_FSIZE, as a full
  // disk would stop it: writes fail with EFBIG).
  WickProcess(const std::vector<std::string>& args, const std::string& out_path, const std::string& err_path,
              long file_size_limit = 0)
      : out_path_(out_path), err_path_(err_path) {
    int in[2];
    if (pipe(in) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      close(in[0]);
      close(in[1]);
      int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(out, 1);
      dup2(err, 2);
      if (file_size_limit > 0) {
        ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead of killing the process
        rlimit limit{rlim_t(file_size_limit), rlim_t(file_size_limit)};
        setrlimit(RLIMIT_FSIZE, &limit);
      }
      std::vector<char*> argv;
      std::string binary = WICK_BINARY;
      argv.push_back(binary.data());
      std::vector<std::string> copy = args;
      for (std::string& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]);
    stdin_ = in[1];
  }
  ~WickProcess() {
    if (stdin_ >= 0) close(stdin_);
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  void write_stdin(const std::string& text) {
    ssize_t ignored = ::write(stdin_, text.data(), text.size());
    (void)ignored;
  }
  void close_stdin() {
    close(stdin_);
    stdin_ = -1;
  }
  void signal(int sig) { kill(pid_, sig); }
  std::string out() const { return read_text(out_path_); }
  std::string err() const { return read_text(err_path_); }

  // Polls `ready` every 20 ms for up to `seconds`; false when it never held.
  static bool wait_for(const std::function<bool()>& ready, double seconds) {
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      if (ready()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return ready();
  }

  // The exit status (128 + signal when killed by one), or -1 when it is still running after
  // `seconds` (it is then killed).
  int wait(double seconds) {
    int status = 0;
    bool done = wait_for([&] { return waitpid(pid_, &status, WNOHANG) == pid_; }, seconds);
    if (!done) return -1;
    exited_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string out_path_, err_path_;
  pid_t pid_ = -1;
  int stdin_ = -1;
  bool exited_ = false;
};

}  // namespace wick_test
