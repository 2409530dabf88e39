// fastgan CUDA kernels: what every operator shares — the work split, 16-byte vector access, the
// conversions to and from the accumulation type, and the deterministic reductions.
//
// Work split. A batched tensor is B rows of M elements in memory order. Each row is cut into
// chunks of `Plan::chunk` elements, one thread block (kThreads threads) per (row, chunk), on a
// 1-D grid of B·chunks blocks. The chunk length depends only on B, M and the element size (never
// on the device), aiming at about kTargetBlocks blocks in all — so that B = 16 still gives an
// H200's 132 SMs several blocks each — while giving every thread at least kMinGroupsPerThread
// 16-byte loads to keep enough bytes in flight.
//
// Element order. Inside a chunk, elements come in groups of V = 16 / sizeof(element) (one
// 16-byte vector); thread t takes groups t, t + kThreads, t + 2·kThreads, … and the last,
// partial group (if any) goes to the thread next in that order. The vector path (every pointer
// 16-byte aligned and every row starting on a 16-byte boundary, checked at run time by the
// launchers) and the scalar fallback visit the same elements in the same order and accumulate
// them identically: results do not depend on which path ran.
//
// Deterministic reductions, without float atomics. A block's per-thread sums are combined by a
// fixed tree (warp shuffles, then the warps' sums in warp order). When a row spans several
// chunks, each block publishes its partial sum in a workspace and takes a ticket from an integer
// counter (atomicAdd on unsigned, after __threadfence()); the block that draws the last ticket
// of the row sums the row's partials in chunk order (again a fixed per-thread stride and tree)
// and finishes the row, in the same launch. Which block finishes depends on timing; what it
// computes does not. The same pattern with a counter over rows finishes a scalar over the batch.
// Every result is therefore bitwise reproducible run to run for the same sizes and dtype.
#pragma once

#include "launchers.h"
#include "../common/terms.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace fastgan {
namespace cuda {

constexpr int kThreads = 256;                  // threads per block (every kernel)
constexpr int kWarps = kThreads / 32;          // warps per block
constexpr int64_t kTargetBlocks = 2048;        // ≈ 132 SMs × 8 resident blocks × 2 waves
constexpr int64_t kMinGroupsPerThread = 4;     // 16-byte loads per thread per chunk, at least
constexpr std::size_t kCounterAlign = 256;     // partials start this far into the workspace

// ------------------------------------------------------------------------------ types
template <typename T>
struct AccOf {
  using type = float;  // fp32 accumulation for fp32, fp16 and bf16
};
template <>
struct AccOf<double> {
  using type = double;
};
template <typename T>
using Acc = typename AccOf<T>::type;

// elements per 16-byte vector
template <typename T>
struct VecWidth {
  static constexpr int value = static_cast<int>(16 / sizeof(T));
};

template <typename T>
struct alignas(16) Pack {
  T v[VecWidth<T>::value];
};
static_assert(sizeof(Pack<float>) == 16 && sizeof(Pack<double>) == 16 && sizeof(Pack<__half>) == 16 &&
                  sizeof(Pack<__nv_bfloat16>) == 16,
              "a Pack is one 16-byte vector");

// Explicit conversions (torch builds with __CUDA_NO_HALF_CONVERSIONS__ and
// __CUDA_NO_BFLOAT16_CONVERSIONS__); narrowing rounds to nearest even, as torch's casts do.
__device__ __forceinline__ float to_acc(float x) { return x; }
__device__ __forceinline__ double to_acc(double x) { return x; }
__device__ __forceinline__ float to_acc(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 x) { return __bfloat162float(x); }

__device__ __forceinline__ void convert(float a, float& out) { out = a; }
__device__ __forceinline__ void convert(double a, double& out) { out = a; }
__device__ __forceinline__ void convert(float a, __half& out) { out = __float2half_rn(a); }
__device__ __forceinline__ void convert(float a, __nv_bfloat16& out) { out = __float2bfloat16_rn(a); }

template <typename T>
__device__ __forceinline__ T from_acc(Acc<T> a) {
  T t;
  convert(a, t);
  return t;
}

// Element i of a DeviceVector, in the accumulation type A.
template <typename A>
__device__ __forceinline__ A read_vector(const DeviceVector& v, int64_t i) {
  const int64_t o = i * v.stride;
  switch (v.dtype) {
    case DType::kFloat64:
      return static_cast<A>(static_cast<const double*>(v.data)[o]);
    case DType::kFloat16:
      return static_cast<A>(__half2float(static_cast<const __half*>(v.data)[o]));
    case DType::kBFloat16:
      return static_cast<A>(__bfloat162float(static_cast<const __nv_bfloat16*>(v.data)[o]));
    default:
      return static_cast<A>(static_cast<const float*>(v.data)[o]);
  }
}

// ------------------------------------------------------------------------ group access
// The group at p holds cnt elements (cnt = V except for a chunk's last, partial group). Elements
// past cnt read as 0 and are never written.
template <bool VEC, typename T, typename A, int V>
__device__ __forceinline__ void load_group(const T* p, int cnt, A (&a)[V]) {
  static_assert(V == VecWidth<T>::value, "one group is one 16-byte vector");
  if (VEC && cnt == V) {
    Pack<T> pk;
    const uint4 u = __ldg(reinterpret_cast<const uint4*>(p));  // one 16-byte load
    memcpy(&pk, &u, sizeof(pk));
#pragma unroll
    for (int w = 0; w < V; ++w) a[w] = to_acc(pk.v[w]);
  } else {
#pragma unroll
    for (int w = 0; w < V; ++w) a[w] = w < cnt ? static_cast<A>(to_acc(p[w])) : A(0);
  }
}

template <bool VEC, typename T, typename A, int V>
__device__ __forceinline__ void store_group(T* p, int cnt, const A (&a)[V]) {
  static_assert(V == VecWidth<T>::value, "one group is one 16-byte vector");
  if (VEC && cnt == V) {
    Pack<T> pk;
#pragma unroll
    for (int w = 0; w < V; ++w) pk.v[w] = from_acc<T>(a[w]);
    uint4 u;
    memcpy(&u, &pk, sizeof(pk));
    __stcg(reinterpret_cast<uint4*>(p), u);  // one 16-byte store (the intrinsic keeps it one)
  } else {
#pragma unroll
    for (int w = 0; w < V; ++w) {
      if (w < cnt) p[w] = from_acc<T>(a[w]);
    }
  }
}

// f(e, cnt) for this thread's groups of a chunk of n elements, in increasing order: e is the
// group's first element (relative to the chunk), cnt its length.
template <int V, typename F>
__device__ __forceinline__ void for_each_group(int64_t n, F&& f) {
  const int64_t full = n / V;
  const int tid = static_cast<int>(threadIdx.x);
#pragma unroll 4
  for (int64_t g = tid; g < full; g += kThreads) f(g * V, V);
  const int rem = static_cast<int>(n - full * V);
  if (rem != 0 && tid == static_cast<int>(full % kThreads)) f(full * V, rem);
}

// ------------------------------------------------------------------------- reductions
// Sum over the warp by a fixed tree; the result is in lane 0.
template <typename A>
__device__ __forceinline__ A warp_sum(A v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum over the block by a fixed tree; the result is in thread 0. Every thread must call it.
template <typename A>
__device__ __forceinline__ A block_sum(A v) {
  __shared__ A warp_sums[kWarps];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? warp_sums[lane] : A(0);
    v = warp_sum(v);
  }
  __syncthreads();  // warp_sums may be reused by the next call
  return v;
}

// Thread 0 has published this block's results (global stores); takes a ticket from *counter and
// returns, in every thread, whether this block arrived last of the `expected` blocks counting
// there. A null counter means this block is the only one (no ticket needed). Every thread must
// call it; the result is the same in the whole block.
__device__ __forceinline__ bool arrive(unsigned int* counter, unsigned int expected) {
  __shared__ unsigned int ticket;
  if (threadIdx.x == 0) {
    __threadfence();  // our published results before our ticket
    ticket = counter == nullptr ? expected - 1u : atomicAdd(counter, 1u);
  }
  __syncthreads();
  const bool last = ticket == expected - 1u;
  __syncthreads();  // ticket may be reused by the next call
  if (last) __threadfence();  // the others' results before our reads
  return last;
}

// Σ p[0 .. n) as published by other blocks (read past L1), in a fixed order; result in thread 0.
template <typename A>
__device__ __forceinline__ A sum_published(const A* p, int64_t n) {
  A s = A(0);
  for (int64_t i = threadIdx.x; i < n; i += kThreads) s += __ldcg(p + i);
  return block_sum(s);
}

// ------------------------------------------------------------------------------ host side
inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

struct Plan {
  int64_t chunk;   // elements per block (a multiple of kThreads · V)
  int64_t chunks;  // blocks per row
};

// What the calling block covers under `plan` for rows of M elements: its index, its row, its n
// elements and their flat offset (row · M + the chunk's start).
struct Chunk {
  int64_t block, row, n, offset;
};

__device__ __forceinline__ Chunk chunk_of(const Plan& plan, int64_t M) {
  const int64_t blk = blockIdx.x, row = blk / plan.chunks, begin = (blk % plan.chunks) * plan.chunk;
  return {blk, row, plan.chunk < M - begin ? plan.chunk : M - begin, row * M + begin};
}

// The chunking of B rows of M elements of `elem_bytes` bytes: sizes only, never the device.
inline Plan plan_rows(int64_t B, int64_t M, std::size_t elem_bytes) {
  const int64_t step = static_cast<int64_t>(kThreads) * static_cast<int64_t>(16 / elem_bytes);
  const int64_t want = std::max<int64_t>(1, ceil_div(kTargetBlocks, std::max<int64_t>(B, 1)));
  int64_t chunk = round_up(std::max<int64_t>(ceil_div(M, want), 1), step);
  chunk = std::max(chunk, kMinGroupsPerThread * step);
  return {chunk, ceil_div(M, chunk)};
}

inline std::size_t elem_size(DType d) {
  switch (d) {
    case DType::kFloat64: return 8;
    case DType::kFloat16:
    case DType::kBFloat16: return 2;
    default: return 4;
  }
}
inline std::size_t acc_size(DType d) { return d == DType::kFloat64 ? 8 : 4; }

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// Workspace: `counters` unsigned counters, then `partials` values of the accumulation type.
inline std::size_t counters_bytes(int64_t counters) {
  return static_cast<std::size_t>(round_up(counters * static_cast<int64_t>(sizeof(unsigned int)),
                                           static_cast<int64_t>(kCounterAlign)));
}
inline std::size_t workspace_bytes(int64_t counters, int64_t partials, DType d) {
  return counters_bytes(counters) + static_cast<std::size_t>(partials) * acc_size(d);
}

// Clears the counters of a workspace on the stream and returns where the partials start.
template <typename A>
inline cudaError_t prepare_workspace(void* workspace, int64_t counters, cudaStream_t stream, unsigned int** cnt,
                                     A** partials) {
  *cnt = static_cast<unsigned int*>(workspace);
  *partials = reinterpret_cast<A*>(static_cast<char*>(workspace) + counters_bytes(counters));
  return cudaMemsetAsync(workspace, 0, static_cast<std::size_t>(counters) * sizeof(unsigned int), stream);
}

// A 1-D grid of `blocks` blocks, or false when that is more than CUDA allows.
inline bool grid_for(int64_t blocks, dim3* grid) {
  if (blocks < 1 || blocks > static_cast<int64_t>(INT_MAX)) return false;
  *grid = dim3(static_cast<unsigned int>(blocks));
  return true;
}

template <typename T>
struct TypeTag {
  using type = T;
};

// f(TypeTag<element type>{}) for a DType.
template <typename F>
inline cudaError_t dispatch_dtype(DType d, F&& f) {
  switch (d) {
    case DType::kFloat32: return f(TypeTag<float>{});
    case DType::kFloat64: return f(TypeTag<double>{});
    case DType::kFloat16: return f(TypeTag<__half>{});
    case DType::kBFloat16: return f(TypeTag<__nv_bfloat16>{});
  }
  return cudaErrorInvalidValue;
}

}  // namespace cuda
}  // namespace fastgan
