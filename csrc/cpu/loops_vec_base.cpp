// fastgan CPU kernels: the few hot loops where at::vec::Vectorized compiled at the baseline
// instruction set (its DEFAULT capability) beats loops.h's hand-written baseline variants, for
// CPUs without AVX2: the wgan sums, margin's real-side sum, the fp64 lsgan sum (1.5-2.8x) and fp32
// lerp (10-24%); measured: benchmarks/results/cpu-vec-vs-handwritten.md, "CPUs without AVX2".
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
#include "loops_vec_generic.h"  // generic_lerp, generic_adv_sum

namespace fastgan {
namespace cpu {
namespace loops {

template <typename T, typename A>
void lerp_vecbase(const T* real, const T* fake, T* out, A a, int64_t n) {
  static_assert(std::is_same_v<T, A>);
  generic_lerp<T>(real, fake, out, a, n);
}

template <int K, bool REAL, typename T, typename A>
A adv_sum_vecbase(const T* x, int64_t n, A target, A margin) {
  static_assert(std::is_same_v<T, A>);
  return generic_adv_sum<K, REAL, T>(x, n, target, margin);
}

template void lerp_vecbase<float, float>(const float*, const float*, float*, float, int64_t);
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
