// How the processes of a data-parallel run find one another, as torchrun and Slurm launchers set
// it up: each process knows its rank, the world size and where rank 0 listens (MASTER_ADDR,
// MASTER_PORT); rank 0 hands every other rank a blob (the collective library's unique id) over TCP.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace wick::train {

struct Rendezvous {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // the process's place on its host (its GPU there)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// What the command line gave (each overrides its environment variable).
struct RendezvousFlags {
  std::optional<int> rank, world_size, local_rank, master_port;
  std::optional<std::string> master_addr;
};

// The rendezvous from the environment variables RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
// MASTER_PORT (read through `env`, which returns nullptr for an unset one) and the flags. A value
// that is not a whole number in range is an error naming its variable or flag.
Rendezvous rendezvous_from(const std::function<const char*(const char*)>& env, const RendezvousFlags& flags);

// Rank 0 listens on master_port and sends `blob` to each of the other world_size - 1 ranks, which
// connect to master_addr:master_port (retrying while rank 0 is not up yet) and return it; rank 0
// returns its own blob. A rank that cannot finish within `timeout` (rank 0 missing, a rank missing,
// a peer with another world size or a rank already seen) gets an error saying which.
std::string share_from_rank0(const Rendezvous& r, const std::string& blob, std::chrono::milliseconds timeout);

}  // namespace wick::train
