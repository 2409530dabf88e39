// grad_norm_penalty on CUDA: loss = mean_b φ(‖g_b‖₂ − center), norms_b = ‖g_b‖₂.
//
// Grid and blocks: B rows of M elements, cut into `chunks` chunks per row by plan_rows
// (common.cuh): one block of 256 threads per (row, chunk), a 1-D grid of B·chunks blocks, about
// 2048 blocks for any B when rows are long enough (B = 16 of 3×128×128 fp32: 12 blocks a row of
// 4096 elements each; B = 256: 8 blocks a row). Each thread reads 16-byte vectors (4 fp32,
// 2 fp64, 8 fp16/bf16) when every row starts 16-byte aligned, scalars otherwise, in the same order.
//
// Forward, one kernel: each block sums the squares of its chunk (fp32, fp64 for fp64) by a fixed
// tree, publishes the partial sum and takes a ticket from its row's counter; the row's last block
// adds the row's partials in chunk order, writes norms_b = sqrt, and takes a ticket from the batch
// counter; the batch's last block adds φ(norms_b − center) over b in a fixed order and writes the
// loss. No float atomics: bitwise the same result every run (see common.cuh). The launcher clears
// the B + 1 counters with one cudaMemsetAsync before the kernel (skipped for a single block).
//
// Backward, one kernel, element-wise: dg = s_b · g with s_b = grad_out · φ'(n_b − center) /
// (B · n_b) (0 where n_b = 0), from terms::penalty_grad_scale; grad_out and norms are read on the
// device, so the host never waits.
#include "common.cuh"

namespace fastgan {
namespace cuda {

// The per-sample sums of squares, the norms and the backward's scale are fp64 for every input
// dtype, as on the CPU (kNormsDtype; why: docs/design.md §6).
using NormAcc = double;

namespace {

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads)
    gnp_forward_kernel(const T* __restrict__ grads, int64_t B, int64_t M, Plan plan, NormAcc center, bool one_sided,
                       T* loss, NormAcc* norms, NormAcc* partials, unsigned int* counters) {
  using A = NormAcc;
  constexpr int V = VecWidth<T>::value;
  const Chunk ch = chunk_of(plan, M);
  const int64_t blk = ch.block, b = ch.row, n = ch.n;
  const T* g = grads + ch.offset;

  A s = A(0);
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A v[V];
    load_group<VEC>(g + e, cnt, v);
#pragma unroll
    for (int w = 0; w < V; ++w) {
      if (w < cnt) s += v[w] * v[w];
    }
  });
  s = block_sum(s);  // thread 0

  A row = s;
  if (plan.chunks > 1) {
    if (threadIdx.x == 0) partials[blk] = s;
    if (!arrive(counters == nullptr ? nullptr : counters + b, static_cast<unsigned int>(plan.chunks))) return;
    row = sum_published(partials + b * plan.chunks, plan.chunks);
  }
  if (threadIdx.x == 0) norms[b] = sqrt(row);
  if (!arrive(counters == nullptr ? nullptr : counters + B, static_cast<unsigned int>(B))) return;

  A t = A(0);
  for (int64_t i = threadIdx.x; i < B; i += kThreads) t += terms::penalty_phi(__ldcg(norms + i) - center, one_sided);
  t = block_sum(t);
  if (threadIdx.x == 0) *loss = from_acc<T>(t / static_cast<A>(B));
}

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads)
    gnp_backward_kernel(DeviceVector grad_out, const T* __restrict__ grads, DeviceVector norms, int64_t B, int64_t M,
                        Plan plan, NormAcc center, bool one_sided, T* __restrict__ dgrads) {
  using A = NormAcc;
  constexpr int V = VecWidth<T>::value;
  const Chunk ch = chunk_of(plan, M);
  const int64_t b = ch.row, n = ch.n, o = ch.offset;
  const A scale = terms::penalty_grad_scale(read_vector<A>(norms, b), center, one_sided, read_vector<A>(grad_out, 0),
                                            static_cast<A>(B));
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A v[V];
    load_group<VEC>(grads + o + e, cnt, v);
#pragma unroll
    for (int w = 0; w < V; ++w) v[w] = v[w] * scale;
    store_group<VEC>(dgrads + o + e, cnt, v);
  });
}

}  // namespace

std::size_t grad_norm_penalty_workspace_bytes(int64_t B, int64_t M, DType dtype) {
  const Plan plan = plan_rows(B, M, elem_size(dtype));
  return workspace_bytes(B + 1, plan.chunks > 1 ? B * plan.chunks : 0, DType::kFloat64);  // fp64 partials
}

cudaError_t grad_norm_penalty_forward(const void* grads, int64_t B, int64_t M, DType dtype, double center,
                                      bool one_sided, void* loss, void* norms, void* workspace, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = NormAcc;
    const Plan plan = plan_rows(B, M, sizeof(T));
    dim3 grid;
    if (!grid_for(B * plan.chunks, &grid) || B + 1 > static_cast<int64_t>(UINT_MAX)) {
      return cudaErrorInvalidConfiguration;
    }
    unsigned int* counters = nullptr;
    A* partials = nullptr;
    if (grid.x > 1) {
      const cudaError_t err = prepare_workspace(workspace, B + 1, stream, &counters, &partials);
      if (err != cudaSuccess) return err;
    }
    const bool vec = aligned16(grads) && (B == 1 || M % VecWidth<T>::value == 0);
    const T* g = static_cast<const T*>(grads);
    T* l = static_cast<T*>(loss);
    A* nr = static_cast<A*>(norms);
    if (vec) {
      gnp_forward_kernel<T, true><<<grid, kThreads, 0, stream>>>(g, B, M, plan, static_cast<A>(center), one_sided, l,
                                                                 nr, partials, counters);
    } else {
      gnp_forward_kernel<T, false><<<grid, kThreads, 0, stream>>>(g, B, M, plan, static_cast<A>(center), one_sided, l,
                                                                  nr, partials, counters);
    }
    return cudaGetLastError();
  });
}

cudaError_t grad_norm_penalty_backward(DeviceVector grad_out, const void* grads, DeviceVector norms, int64_t B,
                                       int64_t M, DType dtype, double center, bool one_sided, void* dgrads,
                                       cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = NormAcc;
    const Plan plan = plan_rows(B, M, sizeof(T));
    dim3 grid;
    if (!grid_for(B * plan.chunks, &grid)) return cudaErrorInvalidConfiguration;
    const bool vec = aligned16(grads) && aligned16(dgrads) && (B == 1 || M % VecWidth<T>::value == 0);
    const T* g = static_cast<const T*>(grads);
    T* d = static_cast<T*>(dgrads);
    if (vec) {
      gnp_backward_kernel<T, true><<<grid, kThreads, 0, stream>>>(grad_out, g, norms, B, M, plan,
                                                                  static_cast<A>(center), one_sided, d);
    } else {
      gnp_backward_kernel<T, false><<<grid, kThreads, 0, stream>>>(grad_out, g, norms, B, M, plan,
                                                                   static_cast<A>(center), one_sided, d);
    }
    return cudaGetLastError();
  });
}

}  // namespace cuda
}  // namespace fastgan
