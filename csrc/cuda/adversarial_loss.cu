// adversarial_loss on CUDA: loss = mean t_real(real) + mean t_fake(fake), either side optional,
// with the per-kind terms of csrc/common/terms.h (bce, wgan, lsgan, hinge, margin).
//
// Grid and blocks: each present side is one "row" of all its elements in memory order, cut into
// chunks by plan_rows (common.cuh) — up to about 2048 blocks a side for large inputs, one block for
// the usual (B, 1) logits. One 1-D grid covers both sides: blocks [0, Cr) take the real side,
// blocks [Cr, Cr + Cf) the fake side, 256 threads each, 16-byte vector loads when the side's
// pointers are 16-byte aligned (scalar loads otherwise, in the same order). The kind is a
// template parameter, so each kernel holds one kind's terms only.
//
// Forward, one kernel: each block sums its terms (fp32, fp64 for fp64) by a fixed tree, publishes
// the partial and takes a ticket from one counter; the last block adds the real partials in chunk
// order, divides by the real numel, then the same for the fake side, and writes the loss (the
// order of the CPU kernel: 0 + mean_real + mean_fake). Deterministic without float atomics
// (common.cuh). The launcher clears the counter with one cudaMemsetAsync unless a single block
// does everything.
//
// Backward, one kernel, element-wise over both sides: dx = grad_out / numel · t'(x)
// (terms::adv_term_grad); grad_out is read on the device, the host never waits.
#include "common.cuh"

namespace fastgan {
namespace cuda {

namespace {

struct Side {
  int64_t numel;
  Plan plan;
  int64_t blocks;  // plan.chunks, or 0 when the side is absent / not computed
};

Side make_side(bool present, int64_t numel, std::size_t elem_bytes) {
  if (!present || numel <= 0) return {0, {1, 0}, 0};
  const Plan plan = plan_rows(1, numel, elem_bytes);
  return {numel, plan, plan.chunks};
}

template <bool VEC, int K, bool REAL, typename T>
__device__ __forceinline__ Acc<T> side_sum(const T* __restrict__ p, int64_t n, Acc<T> target, Acc<T> margin) {
  using A = Acc<T>;
  constexpr int V = VecWidth<T>::value;
  A s = A(0);
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A v[V];
    load_group<VEC>(p + e, cnt, v);
#pragma unroll
    for (int w = 0; w < V; ++w) {
      if (w < cnt) s += terms::adv_term<K, REAL>(v[w], target, margin);
    }
  });
  return s;
}

template <bool VEC, int K, bool REAL, typename T>
__device__ __forceinline__ void side_grad(const T* __restrict__ p, T* __restrict__ d, int64_t n, Acc<T> scale,
                                          Acc<T> target, Acc<T> margin) {
  using A = Acc<T>;
  constexpr int V = VecWidth<T>::value;
  for_each_group<V>(n, [&](int64_t e, int cnt) {
    A v[V];
    load_group<VEC>(p + e, cnt, v);
#pragma unroll
    for (int w = 0; w < V; ++w) v[w] = scale * terms::adv_term_grad<K, REAL>(v[w], target, margin);
    store_group<VEC>(d + e, cnt, v);
  });
}

// The chunk of the side this block works on: [begin, begin + n) of that side.
__device__ __forceinline__ void block_chunk(const Side& real, const Side& fake, bool* is_real, int64_t* begin,
                                           int64_t* n) {
  const int64_t blk = blockIdx.x;
  *is_real = blk < real.blocks;
  const Side& s = *is_real ? real : fake;
  const int64_t c = *is_real ? blk : blk - real.blocks;
  *begin = c * s.plan.chunk;
  *n = s.plan.chunk < s.numel - *begin ? s.plan.chunk : s.numel - *begin;
}

template <typename T, bool VEC, int K>
__global__ void __launch_bounds__(kThreads)
    adv_forward_kernel(const T* __restrict__ real, Side rs, const T* __restrict__ fake, Side fs, Acc<T> real_target,
                       Acc<T> fake_target, Acc<T> margin, T* loss, Acc<T>* partials, unsigned int* counter) {
  using A = Acc<T>;
  bool is_real;
  int64_t begin, n;
  block_chunk(rs, fs, &is_real, &begin, &n);
  A s = is_real ? side_sum<VEC, K, true>(real + begin, n, real_target, margin)
                : side_sum<VEC, K, false>(fake + begin, n, fake_target, margin);
  s = block_sum(s);  // thread 0

  A total = A(0);
  if (gridDim.x == 1) {  // one block, one side
    total += s / static_cast<A>(is_real ? rs.numel : fs.numel);
  } else {
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
    if (!arrive(counter, static_cast<unsigned int>(rs.blocks + fs.blocks))) return;
    if (rs.blocks > 0) {
      const A sum = sum_published(partials, rs.blocks);
      total += sum / static_cast<A>(rs.numel);
    }
    if (fs.blocks > 0) {
      const A sum = sum_published(partials + rs.blocks, fs.blocks);
      total += sum / static_cast<A>(fs.numel);
    }
  }
  if (threadIdx.x == 0) *loss = from_acc<T>(total);
}

template <typename T, bool VEC, int K>
__global__ void __launch_bounds__(kThreads)
    adv_backward_kernel(DeviceVector grad_out, const T* __restrict__ real, Side rs, const T* __restrict__ fake,
                        Side fs, Acc<T> real_target, Acc<T> fake_target, Acc<T> margin, T* __restrict__ dreal,
                        T* __restrict__ dfake) {
  using A = Acc<T>;
  bool is_real;
  int64_t begin, n;
  block_chunk(rs, fs, &is_real, &begin, &n);
  const A gout = read_vector<A>(grad_out, 0);
  if (is_real) {
    side_grad<VEC, K, true>(real + begin, dreal + begin, n, gout / static_cast<A>(rs.numel), real_target, margin);
  } else {
    side_grad<VEC, K, false>(fake + begin, dfake + begin, n, gout / static_cast<A>(fs.numel), fake_target, margin);
  }
}

}  // namespace

std::size_t adversarial_loss_workspace_bytes(int64_t n_real, int64_t n_fake, DType dtype) {
  const Side rs = make_side(n_real > 0, n_real, elem_size(dtype));
  const Side fs = make_side(n_fake > 0, n_fake, elem_size(dtype));
  const int64_t blocks = rs.blocks + fs.blocks;
  return blocks > 1 ? workspace_bytes(1, blocks, dtype) : 0;
}

cudaError_t adversarial_loss_forward(const void* real, int64_t n_real, const void* fake, int64_t n_fake, DType dtype,
                                     int kind, double real_target, double fake_target, double margin, void* loss,
                                     void* workspace, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    const Side rs = make_side(real != nullptr, n_real, sizeof(T));
    const Side fs = make_side(fake != nullptr, n_fake, sizeof(T));
    dim3 grid;
    if (!grid_for(rs.blocks + fs.blocks, &grid)) return cudaErrorInvalidConfiguration;
    unsigned int* counter = nullptr;
    A* partials = nullptr;
    if (grid.x > 1) {
      const cudaError_t err = prepare_workspace(workspace, 1, stream, &counter, &partials);
      if (err != cudaSuccess) return err;
    }
    const bool vec = aligned16(real) && aligned16(fake);  // null is aligned
    const T* rp = static_cast<const T*>(real);
    const T* fp = static_cast<const T*>(fake);
    T* lp = static_cast<T*>(loss);
    const A rt = static_cast<A>(real_target), ft = static_cast<A>(fake_target), mg = static_cast<A>(margin);
    return terms::dispatch_kind(kind, [&](auto kc) -> cudaError_t {
      constexpr int K = decltype(kc)::value;
      if (vec) {
        adv_forward_kernel<T, true, K><<<grid, kThreads, 0, stream>>>(rp, rs, fp, fs, rt, ft, mg, lp, partials,
                                                                      counter);
      } else {
        adv_forward_kernel<T, false, K><<<grid, kThreads, 0, stream>>>(rp, rs, fp, fs, rt, ft, mg, lp, partials,
                                                                       counter);
      }
      return cudaGetLastError();
    }, [] { return cudaErrorInvalidValue; });
  });
}

cudaError_t adversarial_loss_backward(DeviceVector grad_out, const void* real, int64_t n_real, const void* fake,
                                      int64_t n_fake, DType dtype, int kind, double real_target, double fake_target,
                                      double margin, void* dreal, void* dfake, cudaStream_t stream) {
  return dispatch_dtype(dtype, [&](auto tag) -> cudaError_t {
    using T = typename decltype(tag)::type;
    using A = Acc<T>;
    const bool need_real = real != nullptr && dreal != nullptr, need_fake = fake != nullptr && dfake != nullptr;
    const Side rs = make_side(need_real, n_real, sizeof(T));
    const Side fs = make_side(need_fake, n_fake, sizeof(T));
    if (rs.blocks + fs.blocks == 0) return cudaSuccess;
    dim3 grid;
    if (!grid_for(rs.blocks + fs.blocks, &grid)) return cudaErrorInvalidConfiguration;
    const bool vec = (!need_real || (aligned16(real) && aligned16(dreal))) &&
                     (!need_fake || (aligned16(fake) && aligned16(dfake)));
    const T* rp = static_cast<const T*>(real);
    const T* fp = static_cast<const T*>(fake);
    T* drp = static_cast<T*>(dreal);
    T* dfp = static_cast<T*>(dfake);
    const A rt = static_cast<A>(real_target), ft = static_cast<A>(fake_target), mg = static_cast<A>(margin);
    return terms::dispatch_kind(kind, [&](auto kc) -> cudaError_t {
      constexpr int K = decltype(kc)::value;
      if (vec) {
        adv_backward_kernel<T, true, K><<<grid, kThreads, 0, stream>>>(grad_out, rp, rs, fp, fs, rt, ft, mg, drp,
                                                                       dfp);
      } else {
        adv_backward_kernel<T, false, K><<<grid, kThreads, 0, stream>>>(grad_out, rp, rs, fp, fs, rt, ft, mg, drp,
                                                                        dfp);
      }
      return cudaGetLastError();
    }, [] { return cudaErrorInvalidValue; });
  });
}

}  // namespace cuda
}  // namespace fastgan
