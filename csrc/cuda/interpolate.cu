// interpolate on CUDA: out = fake + alpha_b (real − fake) (terms::lerp), and its backward.
//
// Grid and blocks: as the other batched operators (common.cuh, plan_rows): one block of 256
// threads per (row, chunk), B·chunks blocks, about 2048 for long rows whatever B; 16-byte vector
// loads and stores when every pointer is 16-byte aligned and every row starts aligned, scalar
// access otherwise. alpha_b is read once per block, on the device, with its own stride.
//
// Forward, one kernel, element-wise: reads real and fake once, writes out once.
//
// Backward, one kernel: dreal = alpha_b·g and dfake = (1 − alpha_b)·g (those asked for); when
// alpha's gradient is asked for, the same pass reads real and fake and sums g·(real − fake) per
// row (fp32, fp64 for fp64) — per block by a fixed tree, then, with several chunks a row, through
// published partials and a per-row ticket counter: the row's last block adds the partials in chunk
// order and writes dalpha_b. Deterministic without float atomics (common.cuh). The launcher
// clears the B counters with one cudaMemsetAsync only in that case.
#include "common.cuh"

namespace fastgan {
namespace cuda {

namespace {

template <typename T, bool VEC>
__global__ void __launch_bounds__(kThreads)
    lerp_forward_kernel(const T* __restrict__ real, const T* __restrict__ fake, DeviceVector alpha, int64_t M,
                        Plan plan, T* __restrict__ out) {
  using A = Acc<T>;
  constexpr int V = VecWidth<T>::value;
  const Chunk ch = chunk_of(plan, M);
  const int64_t b = ch.row, n = ch.n, o = ch.offset;
  const A a = read_vector<A>(alpha, b);
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A rv[V], fv[V];
    load_group<VEC>(real + o + e, cnt, rv);
    load_group<VEC>(fake + o + e, cnt, fv);
#pragma unroll
    for (int w = 0; w < V; ++w) rv[w] = terms::lerp(rv[w], fv[w], a);
    store_group<VEC>(out + o + e, cnt, rv);
  });
}

template <typename T, bool VEC, bool NEED_ALPHA>
__global__ void __launch_bounds__(kThreads)
    lerp_backward_kernel(const T* __restrict__ grad, const T* __restrict__ real, const T* __restrict__ fake,
                         DeviceVector alpha, int64_t M, Plan plan, T* __restrict__ dreal, T* __restrict__ dfake,
                         T* dalpha, Acc<T>* partials, unsigned int* counters) {
  using A = Acc<T>;
  constexpr int V = VecWidth<T>::value;
  const Chunk ch = chunk_of(plan, M);
  const int64_t blk = ch.block, b = ch.row, n = ch.n, o = ch.offset;
  const A a = read_vector<A>(alpha, b);
  const A one_minus_a = A(1) - a;
  A s = A(0);
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A gv[V], dv[V];
    load_group<VEC>(grad + o + e, cnt, gv);
    if (dreal != nullptr) {
#pragma unroll
      for (int w = 0; w < V; ++w) dv[w] = a * gv[w];
      store_group<VEC>(dreal + o + e, cnt, dv);
    }
    if (dfake != nullptr) {
#pragma unroll
      for (int w = 0; w < V; ++w) dv[w] = one_minus_a * gv[w];
      store_group<VEC>(dfake + o + e, cnt, dv);
    }
    if (NEED_ALPHA) {
      A rv[V], fv[V];
      load_group<VEC>(real + o + e, cnt, rv);
      load_group<VEC>(fake + o + e, cnt, fv);
#pragma unroll
      for (int w = 0; w < V; ++w) {
        if (w < cnt) s += gv[w] * (rv[w] - fv[w]);
      }
    }
  });
  if (!NEED_ALPHA) return;

  s = block_sum(s);  // thread 0
  A row = s;
  if (plan.chunks > 1) {
    if (threadIdx.x == 0) partials[blk] = s;
    if (!arrive(counters + b, static_cast<unsigned int>(plan.chunks))) return;
    row = sum_published(partials + b * plan.chunks, plan.chunks);
  }
  if (threadIdx.x == 0) dalpha[b] = from_acc<T>(row);
}

}  // namespace

cudaError_t interpolate_forward(const void* real, const void* fake, DeviceVector alpha, int64_t B, int64_t M,
                                DType dtype, void* out, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    const Plan plan = plan_rows(B, M, sizeof(T));
    dim3 grid;
    if (!grid_for(B * plan.chunks, &grid)) return cudaErrorInvalidConfiguration;
    const bool vec = aligned16(real) && aligned16(fake) && aligned16(out) && (B == 1 || M % VecWidth<T>::value == 0);
    const T* rp = static_cast<const T*>(real);
    const T* fp = static_cast<const T*>(fake);
    T* op = static_cast<T*>(out);
    if (vec) {
      lerp_forward_kernel<T, true><<<grid, kThreads, 0, stream>>>(rp, fp, alpha, M, plan, op);
    } else {
      lerp_forward_kernel<T, false><<<grid, kThreads, 0, stream>>>(rp, fp, alpha, M, plan, op);
    }
    return cudaGetLastError();
  });
}

std::size_t interpolate_backward_workspace_bytes(int64_t B, int64_t M, DType dtype) {
  const Plan plan = plan_rows(B, M, elem_size(dtype));
  return plan.chunks > 1 ? workspace_bytes(B, B * plan.chunks, dtype) : 0;
}

cudaError_t interpolate_backward(const void* grad, const void* real, const void* fake, DeviceVector alpha, int64_t B,
                                 int64_t M, DType dtype, void* dreal, void* dfake, void* dalpha, void* workspace,
                                 cudaStream_t stream) {
  if (dreal == nullptr && dfake == nullptr && dalpha == nullptr) return cudaSuccess;
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    const Plan plan = plan_rows(B, M, sizeof(T));
    dim3 grid;
    if (!grid_for(B * plan.chunks, &grid) || plan.chunks > static_cast<int64_t>(UINT_MAX)) {
      return cudaErrorInvalidConfiguration;
    }
    const bool need_alpha = dalpha != nullptr;
    unsigned int* counters = nullptr;
    A* partials = nullptr;
    if (need_alpha && plan.chunks > 1) {
      const cudaError_t err = prepare_workspace(workspace, B, stream, &counters, &partials);
      if (err != cudaSuccess) return err;
    }
    bool vec = aligned16(grad) && aligned16(dreal) && aligned16(dfake) && (B == 1 || M % VecWidth<T>::value == 0);
    if (need_alpha) vec = vec && aligned16(real) && aligned16(fake);  // null is aligned
    const T* gp = static_cast<const T*>(grad);
    const T* rp = need_alpha ? static_cast<const T*>(real) : nullptr;
    const T* fp = need_alpha ? static_cast<const T*>(fake) : nullptr;
    T* drp = static_cast<T*>(dreal);
    T* dfp = static_cast<T*>(dfake);
    T* dap = static_cast<T*>(dalpha);
    if (need_alpha) {
      if (vec) {
        lerp_backward_kernel<T, true, true><<<grid, kThreads, 0, stream>>>(gp, rp, fp, alpha, M, plan, drp, dfp, dap,
                                                                           partials, counters);
      } else {
        lerp_backward_kernel<T, false, true><<<grid, kThreads, 0, stream>>>(gp, rp, fp, alpha, M, plan, drp, dfp, dap,
                                                                            partials, counters);
      }
    } else {
      if (vec) {
        lerp_backward_kernel<T, true, false><<<grid, kThreads, 0, stream>>>(gp, rp, fp, alpha, M, plan, drp, dfp,
                                                                            dap, partials, counters);
      } else {
        lerp_backward_kernel<T, false, false><<<grid, kThreads, 0, stream>>>(gp, rp, fp, alpha, M, plan, drp, dfp,
                                                                             dap, partials, counters);
      }
    }
    return cudaGetLastError();
  });
}

}  // namespace cuda
}  // namespace fastgan
