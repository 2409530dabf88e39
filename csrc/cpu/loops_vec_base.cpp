// fastgan CPU kernels: the few hot loops where at::vec::Vectorized compiled at the baseline
// instruction set (its DEFAULT capability) beats loops.h's hand-written baseline variants, for
// CPUs without AVX2: the wgan sums, margin's real-side sum and the fp64 lsgan sum (1.5-2.8x in the
// benchmark, 1.2-1.9x at the operator); measured: benchmarks/results/cpu-vec-vs-handwritten.md,
// "CPUs without AVX2". (fp32 lerp, 10-24% faster in the benchmark's two-block loop, was 6-19%
// slower as generic_lerp at the operator, and keeps the hand-written loop.)
// loops.h's dispatchers take these `_vecbase` variants where the CPU has no AVX2.
//
// The loops are loops_vec.cpp's, written once in loops_vec_generic.h (anonymous namespace: this
// file's copies are its own). Compiled with the project's baseline flags; Vectorized's DEFAULT
// capability puts its functions in at::vec::DEFAULT, as torch's own baseline code does.
#include "loops.h"

#if FASTGAN_HAVE_VEC_BASE
#ifndef CPU_CAPABILITY
#define CPU_CAPABILITY DEFAULT
#endif
#ifndef CPU_CAPABILITY_DEFAULT
#define CPU_CAPABILITY_DEFAULT
#endif
#include <ATen/cpu/vec/vec.h>

#include "vec_math.h"           // terms::Math for Vectorized
#include "loops_vec_generic.h"  // generic_adv_sum

namespace fastgan {
namespace cpu {
namespace loops {

template <int K, bool REAL, typename T, typename A>
A adv_sum_vecbase(const T* x, int64_t n, A target, A margin) {
  static_assert(std::is_same_v<T, A>);
  return generic_adv_sum<K, REAL, T>(x, n, target, margin);
}

#define FASTGAN_INSTANTIATE_SUM(K, REAL, T) template T adv_sum_vecbase<K, REAL, T, T>(const T*, int64_t, T, T);
FASTGAN_INSTANTIATE_SUM(terms::kWGAN, true, float)
FASTGAN_INSTANTIATE_SUM(terms::kWGAN, false, float)
FASTGAN_INSTANTIATE_SUM(terms::kMargin, true, float)
FASTGAN_INSTANTIATE_SUM(terms::kWGAN, true, double)
FASTGAN_INSTANTIATE_SUM(terms::kWGAN, false, double)
FASTGAN_INSTANTIATE_SUM(terms::kMargin, true, double)
FASTGAN_INSTANTIATE_SUM(terms::kLSGAN, true, double)
FASTGAN_INSTANTIATE_SUM(terms::kLSGAN, false, double)
#undef FASTGAN_INSTANTIATE_SUM

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
#endif  // FASTGAN_HAVE_VEC_BASE
