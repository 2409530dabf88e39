// fastgan CPU kernels: the fp64 terms of adversarial_loss with ATen's at::vec::Vectorized<double>
// (AVX2, Sleef's exp and log1p, both within 1 ulp), declared in csrc/cpu/loops.h and used there on
// an AVX2 CPU. The hand-written loops of loops.h have vector math for fp32 only and evaluate the
// fp64 terms with scalar libm calls: Vectorized sums them 1.8-50x faster and computes bce's
// gradients about 5x faster, the other gradients at least as fast (measured:
// benchmarks/results/cpu-vec-vs-handwritten.md).
//
// Vectorized picks its instruction set when the header is included (CPU_CAPABILITY_AVX2), so this
// file is compiled for AVX2 as a whole (the pragma below) and its functions are only called when
// the CPU has AVX2 (loops::cpu_has_avx2()). It includes nothing from torch but the vector header
// and uses nothing from it but Vectorized<double>, whose functions live in the namespace
// at::vec::AVX2 that no other file of fastgan uses: no inline function compiled for AVX2 here can
// stand in for a baseline copy of another file.
#include "loops.h"

#if FASTGAN_HAVE_VEC_AVX2
#pragma GCC target("avx2,fma")
// GCC's target pragma enables the instructions but not the macros that the vector and Sleef
// headers test: they are set here, for this file only, as -mavx2 -mfma would set them.
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include <ATen/cpu/vec/vec.h>

namespace fastgan {
namespace cpu {
namespace loops {

namespace {
using V = at::vec::Vectorized<double>;
constexpr int W = V::size();

// the terms of terms.h (adv_term / adv_term_grad) on four lanes; NaN in, NaN out
V zero() { return V(0.0); }
V where(const V& mask, const V& a, const V& b) { return V::blendv(b, a, mask); }
V relu(const V& t) { return where(t < zero(), zero(), t); }
V relu_grad(const V& t) { return where(t <= zero(), zero(), V(1.0)); }
V softplus(const V& x) { return where(x > zero(), x, zero()) + (zero() - x.abs()).exp().log1p(); }
V sigmoid(const V& x) {
  const V e = (zero() - x.abs()).exp();
  const V r = V(1.0) / (V(1.0) + e);
  return where(x >= zero(), r, e * r);
}

template <int K, bool REAL>
V term(const V& x, double target, double margin) {
  if constexpr (K == terms::kBCE) return REAL ? softplus(zero() - x) : softplus(x);
  if constexpr (K == terms::kWGAN) return REAL ? zero() - x : x;
  if constexpr (K == terms::kLSGAN) return V(0.5) * (x - V(target)) * (x - V(target));
  if constexpr (K == terms::kHinge) return REAL ? relu(V(margin) - x) : relu(V(margin) + x);
  return REAL ? x : relu(V(margin) - x);  // kMargin
}

template <int K, bool REAL>
V term_grad(const V& x, double target, double margin) {
  if constexpr (K == terms::kBCE) return REAL ? zero() - sigmoid(zero() - x) : sigmoid(x);
  if constexpr (K == terms::kWGAN) return V(REAL ? -1.0 : 1.0);
  if constexpr (K == terms::kLSGAN) return x - V(target);
  if constexpr (K == terms::kHinge) return REAL ? zero() - relu_grad(V(margin) - x) : relu_grad(V(margin) + x);
  return REAL ? V(1.0) : zero() - relu_grad(V(margin) - x);  // kMargin
}
}  // namespace

// Σ t(x_i): kRegs vector accumulators, their lanes added in a fixed order, a scalar tail (terms.h).
template <int K, bool REAL>
double adv_sum_vec(const double* x, int64_t n, double target, double margin) {
  V acc[kRegs] = {zero(), zero(), zero(), zero()};
  int64_t i = 0;
  for (; i + kRegs * W <= n; i += kRegs * W) {
    for (int r = 0; r < kRegs; ++r) acc[r] = acc[r] + term<K, REAL>(V::loadu(x + i + r * W), target, margin);
  }
  for (; i + W <= n; i += W) acc[0] = acc[0] + term<K, REAL>(V::loadu(x + i), target, margin);
  double tail = 0.0;
  for (; i < n; ++i) tail += terms::adv_term<K, REAL>(x[i], target, margin);
  double lanes[W];
  ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
  double s = 0.0;
  for (int w = 0; w < W; ++w) s += lanes[w];
  return s + tail;
}

// dx_i = s · t'(x_i)
template <int K, bool REAL>
void adv_grad_vec(const double* x, double* dx, double s, int64_t n, double target, double margin) {
  int64_t i = 0;
  for (; i + W <= n; i += W) (term_grad<K, REAL>(V::loadu(x + i), target, margin) * V(s)).store(dx + i);
  for (; i < n; ++i) dx[i] = s * terms::adv_term_grad<K, REAL>(x[i], target, margin);
}

#define FASTGAN_INSTANTIATE(K)                                                                  \
  template double adv_sum_vec<K, true>(const double*, int64_t, double, double);                 \
  template double adv_sum_vec<K, false>(const double*, int64_t, double, double);                \
  template void adv_grad_vec<K, true>(const double*, double*, double, int64_t, double, double); \
  template void adv_grad_vec<K, false>(const double*, double*, double, int64_t, double, double);
FASTGAN_INSTANTIATE(terms::kBCE)
FASTGAN_INSTANTIATE(terms::kWGAN)
FASTGAN_INSTANTIATE(terms::kLSGAN)
FASTGAN_INSTANTIATE(terms::kHinge)
FASTGAN_INSTANTIATE(terms::kMargin)
#undef FASTGAN_INSTANTIATE

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
#endif  // FASTGAN_HAVE_VEC_AVX2
