// CUDA graphs for core/capture.h: the device's stream is recorded (relaxed mode, so the caching
// allocator may still call cudaMalloc while recording), the graph instantiated once, and each
// replay is one cudaGraphLaunch on the same stream.
#include <cuda_runtime.h>

#include "wick/backend/cuda/runtime.h"
#include "wick/core/backend_hooks.h"

namespace wick::cuda {

struct Graph {
  int device = 0;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  std::shared_ptr<PrivatePool> pool;
  ~Graph() {
    // A replay may still be queued: let it finish before its memory is handed to others.
    if (cudaStreamSynchronize(stream(device)) != cudaSuccess) cudaGetLastError();
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    if (pool) allocator_close_pool(device, *pool);
  }
};

void capture_begin(int device) {
  cudaStream_t s = stream(device);
  allocator_capture_begin(device);
  cudaError_t e = cudaStreamBeginCapture(s, cudaStreamCaptureModeRelaxed);
  if (e != cudaSuccess) {
    allocator_capture_end(device);
    check_cuda(e, "cudaStreamBeginCapture", __FILE__, __LINE__);
  }
}

void capture_abort(int device) {
  cudaGraph_t g = nullptr;
  if (cudaStreamEndCapture(stream(device), &g) == cudaSuccess && g) cudaGraphDestroy(g);
  cudaGetLastError();
  std::shared_ptr<PrivatePool> pool = allocator_capture_end(device);
  // Blocks still held by the failed capture's tensors return to the shared list when released.
  if (pool) allocator_close_pool(device, *pool);
}

std::shared_ptr<Graph> capture_end(int device) {
  auto graph = std::make_shared<Graph>();
  graph->device = device;
  cudaError_t e = cudaStreamEndCapture(stream(device), &graph->graph);
  graph->pool = allocator_capture_end(device);
  check_cuda(e, "cudaStreamEndCapture", __FILE__, __LINE__);
  WICK_CUDA_CHECK(cudaGraphInstantiate(&graph->exec, graph->graph, 0));
  return graph;
}

void graph_launch(const Graph& graph, int device) {
  WICK_CUDA_CHECK(cudaGraphLaunch(graph.exec, stream(device)));
}

}  // namespace wick::cuda
