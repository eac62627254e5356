// Data-parallel ranks on GPUs, joined through NCCL (the collective library PyTorch's DDP uses):
// gradients are summed on the devices, on each device's wick stream. One rank per GPU, in threads of
// one process or in processes (their ranks found through rendezvous.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "wick/train/collective.h"

namespace wick::train {

// Whether this build has NCCL (a CUDA build that found nccl.h and libnccl).
bool nccl_available();

// The id of a new group (NCCL's unique id, 128 bytes): made by rank 0 and handed to every rank.
std::string nccl_unique_id();

// This rank's member of group `id` on CUDA device `device` (made the calling thread's current
// device). Joining and every sum wait at most `timeout`: a rank that died or hangs makes the others
// abort the group and throw an error saying so, instead of waiting for ever.
std::unique_ptr<Collective> nccl_join(const std::string& id, int rank, int size, int device,
                                      std::chrono::milliseconds timeout = std::chrono::minutes(5));

}  // namespace wick::train
