// A CPU stand-in for the CUDA execution model, for tests/test_cuda_build.py only: it lets the host
// compiler build csrc/cuda/*.cu (after the test rewrites each `kernel<<<grid, block, 0, s>>>(…)`
// into `::emu::launch(grid, block, 0, s)(kernel, …)`) and run the kernels on CPU memory.
//
// A launch runs as blockDim std::threads that take the blocks one after another, in a shuffled
// order (so that any block may be the one that arrives last); __syncthreads is a barrier over the
// block, warp shuffles exchange through a per-warp buffer between two barriers over the warp,
// __shared__ variables are statics (one block at a time), atomics are GCC atomics.
// cudaMemsetAsync and cudaGetLastError act on host memory / always succeed.
//
// It checks the kernels' logic — indexing, chunking, tails, vector and scalar paths, the
// reductions and the last-block hand-over — not their timing or the GPU memory model.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#undef __launch_bounds__
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline
#define __launch_bounds__(...)

namespace emu {

constexpr int kMaxThreads = 1024;

struct Dim {
  unsigned int x = 0, y = 0, z = 0;
};
inline thread_local Dim thread_idx, block_idx, grid_dim;

struct BlockSync {
  std::unique_ptr<std::barrier<>> block;
  std::vector<std::unique_ptr<std::barrier<>>> warps;
  alignas(16) unsigned char shfl[kMaxThreads / 32][32][8];
};
inline BlockSync* sync = nullptr;

inline std::uint64_t& seed() {
  static std::uint64_t s = 12345;
  return s;
}

struct Launch {
  dim3 grid;
  unsigned int threads;
  template <typename K, typename... Args>
  void operator()(K kernel, Args... args) const {
    const unsigned int blocks = grid.x;
    std::vector<unsigned int> order(blocks);
    for (unsigned int i = 0; i < blocks; ++i) order[i] = i;
    std::mt19937_64 rng(seed()++);
    std::shuffle(order.begin(), order.end(), rng);
    BlockSync s;
    s.block = std::make_unique<std::barrier<>>(threads);
    for (unsigned int w = 0; w < (threads + 31) / 32; ++w) s.warps.push_back(std::make_unique<std::barrier<>>(32));
    sync = &s;
    // one thread per CUDA thread, running the blocks in turn; the barrier between blocks keeps
    // one block at a time (the statics standing for __shared__ belong to the running block)
    std::vector<std::thread> pool;
    pool.reserve(threads);
    for (unsigned int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        thread_idx = {t, 0, 0};
        grid_dim = {blocks, 1, 1};
        for (unsigned int b : order) {
          block_idx = {b, 0, 0};
          kernel(args...);
          s.block->arrive_and_wait();
        }
      });
    }
    for (auto& th : pool) th.join();
    sync = nullptr;
  }
};

inline Launch launch(dim3 grid, unsigned int threads, int /*smem*/ = 0, cudaStream_t /*stream*/ = nullptr) {
  return {grid, threads};
}

}  // namespace emu

#define threadIdx (::emu::thread_idx)
#define blockIdx (::emu::block_idx)
#define gridDim (::emu::grid_dim)

inline void __syncthreads() { emu::sync->block->arrive_and_wait(); }
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

template <typename T>
inline T __shfl_down_sync(unsigned int /*mask*/, T v, int offset) {
  static_assert(sizeof(T) <= 8, "one lane holds at most 8 bytes here");
  const unsigned int lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  std::memcpy(emu::sync->shfl[warp][lane], &v, sizeof(T));
  emu::sync->warps[warp]->arrive_and_wait();
  T r = v;
  if (lane + static_cast<unsigned int>(offset) < 32u) std::memcpy(&r, emu::sync->shfl[warp][lane + offset], sizeof(T));
  emu::sync->warps[warp]->arrive_and_wait();
  return r;
}

inline unsigned int atomicAdd(unsigned int* p, unsigned int v) { return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST); }

inline uint4 __ldg(const uint4* p) { return *p; }
inline void __stcg(uint4* p, uint4 v) { *p = v; }
inline float __ldcg(const float* p) { return *p; }
inline double __ldcg(const double* p) { return *p; }

inline cudaError_t emu_memset_async(void* p, int value, std::size_t bytes, cudaStream_t) {
  std::memset(p, value, bytes);
  return cudaSuccess;
}
inline cudaError_t emu_get_last_error() { return cudaSuccess; }
#define cudaMemsetAsync emu_memset_async
#define cudaGetLastError emu_get_last_error
