// reconstruction_error on CUDA: out_b = mean over row b of |x − recon|^p, p ∈ {1, 2}, shape (B,).
//
// Grid and blocks: as grad_norm_penalty (common.cuh, plan_rows): one block of 256 threads per
// (row, chunk), B·chunks blocks, about 2048 for long rows whatever B; 16-byte vector loads of x
// and recon when both are 16-byte aligned and every row starts aligned, scalar loads otherwise, in
// the same element order.
//
// Forward, one kernel: each block sums |x − recon|^p over its chunk (fp32, fp64 for fp64) by a
// fixed tree; with more than one chunk a row, it publishes the partial and takes a ticket from
// its row's counter, and the row's last block adds the row's partials in chunk order and writes
// out_b = sum / M. Deterministic without float atomics (common.cuh). The launcher clears the B
// counters with one cudaMemsetAsync first, only when rows span several chunks.
//
// Backward, one kernel, element-wise: dx = grad_out_b / M · d|d|^p/dd at d = x − recon,
// drecon = −dx (terms::rec_term_grad), writing only the outputs asked for. grad_out is read on
// the device with its own stride (an expanded (B,) gradient needs no copy); the host never waits.
#include "common.cuh"

namespace fastgan {
namespace cuda {

namespace {

template <typename T, bool VEC, int P>
__global__ void __launch_bounds__(kThreads)
    rec_forward_kernel(const T* __restrict__ x, const T* __restrict__ recon, int64_t M, Plan plan, T* out,
                       Acc<T>* partials, unsigned int* counters) {
  using A = Acc<T>;
  constexpr int V = VecWidth<T>::value;
  const Chunk ch = chunk_of(plan, M);
  const int64_t blk = ch.block, b = ch.row, n = ch.n, o = ch.offset;

  A s = A(0);
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A xv[V], rv[V];
    load_group<VEC>(x + o + e, cnt, xv);
    load_group<VEC>(recon + o + e, cnt, rv);
#pragma unroll
    for (int w = 0; w < V; ++w) {
      if (w < cnt) s += terms::rec_term(xv[w] - rv[w], P);
    }
  });
  s = block_sum(s);  // thread 0

  A row = s;
  if (plan.chunks > 1) {
    if (threadIdx.x == 0) partials[blk] = s;
    if (!arrive(counters + b, static_cast<unsigned int>(plan.chunks))) return;
    row = sum_published(partials + b * plan.chunks, plan.chunks);
  }
  if (threadIdx.x == 0) out[b] = from_acc<T>(row / static_cast<A>(M));
}

template <typename T, bool VEC, int P>
__global__ void __launch_bounds__(kThreads)
    rec_backward_kernel(DeviceVector grad_out, const T* __restrict__ x, const T* __restrict__ recon, int64_t M,
                        Plan plan, T* __restrict__ dx, T* __restrict__ drecon) {
  using A = Acc<T>;
  constexpr int V = VecWidth<T>::value;
  const Chunk ch = chunk_of(plan, M);
  const int64_t b = ch.row, n = ch.n, o = ch.offset;
  const A s = read_vector<A>(grad_out, b) * (A(1) / static_cast<A>(M));
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A xv[V], rv[V];
    load_group<VEC>(x + o + e, cnt, xv);
    load_group<VEC>(recon + o + e, cnt, rv);
#pragma unroll
    for (int w = 0; w < V; ++w) xv[w] = s * terms::rec_term_grad(xv[w] - rv[w], P);
    if (dx != nullptr) store_group<VEC>(dx + o + e, cnt, xv);
    if (drecon != nullptr) {
#pragma unroll
      for (int w = 0; w < V; ++w) xv[w] = -xv[w];
      store_group<VEC>(drecon + o + e, cnt, xv);
    }
  });
}

// kernel<P>(args...) for p ∈ {1, 2}
template <typename F>
cudaError_t dispatch_p(int p, F&& f) {
  if (p == 1) return f(std::integral_constant<int, 1>());
  if (p == 2) return f(std::integral_constant<int, 2>());
  return cudaErrorInvalidValue;
}

}  // namespace

std::size_t reconstruction_error_workspace_bytes(int64_t B, int64_t M, DType dtype) {
  const Plan plan = plan_rows(B, M, elem_size(dtype));
  return plan.chunks > 1 ? workspace_bytes(B, B * plan.chunks, dtype) : 0;
}

cudaError_t reconstruction_error_forward(const void* x, const void* recon, int64_t B, int64_t M, DType dtype, int p,
                                         void* out, void* workspace, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    const Plan plan = plan_rows(B, M, sizeof(T));
    dim3 grid;
    if (!grid_for(B * plan.chunks, &grid) || plan.chunks > static_cast<int64_t>(UINT_MAX)) {
      return cudaErrorInvalidConfiguration;
    }
    unsigned int* counters = nullptr;
    A* partials = nullptr;
    if (plan.chunks > 1) {
      const cudaError_t err = prepare_workspace(workspace, B, stream, &counters, &partials);
      if (err != cudaSuccess) return err;
    }
    const bool vec = aligned16(x) && aligned16(recon) && (B == 1 || M % VecWidth<T>::value == 0);
    const T* xp = static_cast<const T*>(x);
    const T* rp = static_cast<const T*>(recon);
    T* op = static_cast<T*>(out);
    return dispatch_p(p, [&](auto pc) -> cudaError_t {
      constexpr int P = decltype(pc)::value;
      if (vec) {
        rec_forward_kernel<T, true, P><<<grid, kThreads, 0, stream>>>(xp, rp, M, plan, op, partials, counters);
      } else {
        rec_forward_kernel<T, false, P><<<grid, kThreads, 0, stream>>>(xp, rp, M, plan, op, partials, counters);
      }
      return cudaGetLastError();
    });
  });
}

cudaError_t reconstruction_error_backward(DeviceVector grad_out, const void* x, const void* recon, int64_t B,
                                          int64_t M, DType dtype, int p, void* dx, void* drecon, cudaStream_t stream) {
  if (dx == nullptr && drecon == nullptr) return cudaSuccess;
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    const Plan plan = plan_rows(B, M, sizeof(T));
    dim3 grid;
    if (!grid_for(B * plan.chunks, &grid)) return cudaErrorInvalidConfiguration;
    const bool vec = aligned16(x) && aligned16(recon) && aligned16(dx) && aligned16(drecon) &&
                     (B == 1 || M % VecWidth<T>::value == 0);  // null is aligned
    const T* xp = static_cast<const T*>(x);
    const T* rp = static_cast<const T*>(recon);
    T* dxp = static_cast<T*>(dx);
    T* drp = static_cast<T*>(drecon);
    return dispatch_p(p, [&](auto pc) -> cudaError_t {
      constexpr int P = decltype(pc)::value;
      if (vec) {
        rec_backward_kernel<T, true, P><<<grid, kThreads, 0, stream>>>(grad_out, xp, rp, M, plan, dxp, drp);
      } else {
        rec_backward_kernel<T, false, P><<<grid, kThreads, 0, stream>>>(grad_out, xp, rp, M, plan, dxp, drp);
      }
      return cudaGetLastError();
    });
  });
}

}  // namespace cuda
}  // namespace fastgan
