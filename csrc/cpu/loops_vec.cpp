// fastgan CPU kernels: the hot loops of csrc/cpu/loops.h with ATen's at::vec::Vectorized<T> (AVX2,
// Sleef's exp and log1p, both within 1 ulp), for fp32 and fp64 inputs: the loops' `_vec`
// variants, which loops.h's dispatchers take on an AVX2 CPU where Vectorized matches or beats the
// hand-written vector code (lerp, lerp_grad, lerp_backward, fp64 scale, the rec_* loops, the
// adversarial terms except the fp32 bce sum; measured: benchmarks/results/cpu-vec-vs-handwritten.md).
// The terms are terms.h's formulas; this file supplies only their primitives for Vectorized
// (terms::Math below).
//
// Vectorized picks its instruction set when the header is included (CPU_CAPABILITY_AVX2), so this
// file is compiled for AVX2 as a whole (the pragma below) and its functions are only called when
// the CPU has AVX2 (loops::cpu_has_avx2()); on other CPUs loops.h's baseline variants run. It
// includes nothing from torch but the vector header and uses nothing from it but Vectorized<float>
// and Vectorized<double>, whose functions live in the namespace at::vec::AVX2 that no other file
// of fastgan uses, and its own loops are defined here only: no inline function compiled for AVX2
// here can stand in for a baseline copy of another file. (terms.h's templates are declared before
// the pragma, so they keep the baseline target, and are always inlined.)
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
#ifndef CPU_CAPABILITY  // (set already where benchmarks/vec_vs_handwritten.py compiles this file)
#define CPU_CAPABILITY AVX2
#endif
#ifndef CPU_CAPABILITY_AVX2
#define CPU_CAPABILITY_AVX2
#endif
#include <ATen/cpu/vec/vec.h>

// The math primitives of terms.h (terms::Math) for Vectorized: comparisons give lane masks,
// blendv selects with them; exp and log1p are Sleef's (u10).
namespace fastgan {
namespace terms {
template <typename T>
struct Math<at::vec::Vectorized<T>> : GenericMath<Math<at::vec::Vectorized<T>>, at::vec::Vectorized<T>, T> {
  typedef at::vec::Vectorized<T> V;
  static V splat(T c) { return V(c); }
  static V select(const V& mask, const V& a, const V& b) { return V::blendv(b, a, mask); }
  static V neg(const V& x) { return x.neg(); }
  static V abs(const V& x) { return x.abs(); }
  static V exp(const V& x) { return x.exp(); }
  static V log1p(const V& x) { return x.log1p(); }
};
}  // namespace terms

namespace cpu {
namespace loops {

namespace {
template <typename T>
using Vc = at::vec::Vectorized<T>;

// Σ f(i) over vectors with kRegs accumulators, a scalar tail g(i), lanes added in a fixed order
// (the structure of loops.h's reduce)
template <typename T, typename F, typename G>
T vreduce(int64_t n, const F& f, const G& g) {
  using V = Vc<T>;
  constexpr int W = V::size();
  V acc[kRegs] = {V(T(0)), V(T(0)), V(T(0)), V(T(0))};
  int64_t i = 0;
  for (; i + kRegs * W <= n; i += kRegs * W) {
    for (int r = 0; r < kRegs; ++r) acc[r] = acc[r] + f(i + r * W);
  }
  for (; i + W <= n; i += W) acc[0] = acc[0] + f(i);
  T tail = T(0);
  for (; i < n; ++i) tail += g(i);
  T lanes[W];
  ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
  T s = T(0);
  for (int w = 0; w < W; ++w) s += lanes[w];
  return s + tail;
}
}  // namespace

// The loops of loops.h, element for element: each term is terms.h's, on Vectorized and on the
// scalar tail.
template <typename T, typename A>
void scale_vec(const T* x, T* out, A s, int64_t n) {
  static_assert(std::is_same_v<T, A>);
  using V = Vc<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) (V::loadu(x + i) * V(s)).store(out + i);
  for (; i < n; ++i) out[i] = x[i] * s;
}

template <typename T, typename A>
A sum_abs_pow_diff_vec(const T* x, const T* r, int64_t n, int p) {
  using V = Vc<T>;
  if (p == 1) {
    return vreduce<T>(
        n, [&](int64_t i) { return terms::rec_term(V::loadu(x + i) - V::loadu(r + i), 1); },
        [&](int64_t i) { return terms::rec_term(x[i] - r[i], 1); });
  }
  return vreduce<T>(
      n, [&](int64_t i) { return terms::rec_term(V::loadu(x + i) - V::loadu(r + i), 2); },
      [&](int64_t i) { return terms::rec_term(x[i] - r[i], 2); });
}

template <typename T, typename A>
void rec_grad_vec(const T* x, const T* r, T* dx, T* dr, A s, int64_t n, int p) {
  using V = Vc<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    const V g = terms::rec_term_grad(V::loadu(x + i) - V::loadu(r + i), p) * V(s);
    if (dx) g.store(dx + i);
    if (dr) g.neg().store(dr + i);
  }
  for (; i < n; ++i) {
    const T g = s * terms::rec_term_grad(x[i] - r[i], p);
    if (dx) dx[i] = g;
    if (dr) dr[i] = -g;
  }
}

template <typename T, typename A>
void lerp_vec(const T* real, const T* fake, T* out, A a, int64_t n) {
  using V = Vc<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) terms::lerp(V::loadu(real + i), V::loadu(fake + i), a).store(out + i);
  for (; i < n; ++i) out[i] = terms::lerp(real[i], fake[i], a);
}

template <typename T, typename A>
void lerp_grad_vec(const T* g, T* dreal, T* dfake, A a, int64_t n) {
  using V = Vc<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    const V v = V::loadu(g + i);
    if (dreal) terms::lerp_grad_real(v, a).store(dreal + i);
    if (dfake) terms::lerp_grad_fake(v, a).store(dfake + i);
  }
  for (; i < n; ++i) {
    if (dreal) dreal[i] = terms::lerp_grad_real(g[i], a);
    if (dfake) dfake[i] = terms::lerp_grad_fake(g[i], a);
  }
}

template <typename T, typename A>
A lerp_backward_vec(const T* g, const T* real, const T* fake, T* dreal, T* dfake, A a, int64_t n) {
  using V = Vc<T>;
  return vreduce<T>(
      n,
      [&](int64_t i) {
        const V v = V::loadu(g + i);
        if (dreal) terms::lerp_grad_real(v, a).store(dreal + i);
        if (dfake) terms::lerp_grad_fake(v, a).store(dfake + i);
        return terms::lerp_grad_alpha(v, V::loadu(real + i), V::loadu(fake + i));
      },
      [&](int64_t i) {
        if (dreal) dreal[i] = terms::lerp_grad_real(g[i], a);
        if (dfake) dfake[i] = terms::lerp_grad_fake(g[i], a);
        return terms::lerp_grad_alpha(g[i], real[i], fake[i]);
      });
}

// Σ t(x_i)
template <int K, bool REAL, typename T, typename A>
A adv_sum_vec(const T* x, int64_t n, A target, A margin) {
  using V = Vc<T>;
  return vreduce<T>(
      n, [&](int64_t i) { return terms::adv_term<K, REAL>(V::loadu(x + i), target, margin); },
      [&](int64_t i) { return terms::adv_term<K, REAL>(x[i], target, margin); });
}

// dx_i = s · t'(x_i)
template <int K, bool REAL, typename T, typename A>
void adv_grad_vec(const T* x, T* dx, A s, int64_t n, A target, A margin) {
  using V = Vc<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    (terms::adv_term_grad<K, REAL>(V::loadu(x + i), target, margin) * V(s)).store(dx + i);
  }
  for (; i < n; ++i) dx[i] = s * terms::adv_term_grad<K, REAL>(x[i], target, margin);
}

// fp32 and fp64; scale for fp64 only (fp32 scales with an fp64 factor). All kinds and sides of
// the adversarial terms, the fp32 bce sum included (loops.h does not call that one; the benchmark
// measures it).
#define FASTGAN_INSTANTIATE_T(T)                                                                  \
  template T sum_abs_pow_diff_vec<T, T>(const T*, const T*, int64_t, int);                        \
  template void rec_grad_vec<T, T>(const T*, const T*, T*, T*, T, int64_t, int);                  \
  template void lerp_vec<T, T>(const T*, const T*, T*, T, int64_t);                               \
  template void lerp_grad_vec<T, T>(const T*, T*, T*, T, int64_t);                                \
  template T lerp_backward_vec<T, T>(const T*, const T*, const T*, T*, T*, T, int64_t);
FASTGAN_INSTANTIATE_T(float)
FASTGAN_INSTANTIATE_T(double)
template void scale_vec<double, double>(const double*, double*, double, int64_t);

#define FASTGAN_INSTANTIATE_KIND(K, T)                                               \
  template T adv_sum_vec<K, true, T, T>(const T*, int64_t, T, T);                    \
  template T adv_sum_vec<K, false, T, T>(const T*, int64_t, T, T);                   \
  template void adv_grad_vec<K, true, T, T>(const T*, T*, T, int64_t, T, T);         \
  template void adv_grad_vec<K, false, T, T>(const T*, T*, T, int64_t, T, T);
#define FASTGAN_INSTANTIATE_KINDS(T)       \
  FASTGAN_INSTANTIATE_KIND(terms::kBCE, T)   \
  FASTGAN_INSTANTIATE_KIND(terms::kWGAN, T)  \
  FASTGAN_INSTANTIATE_KIND(terms::kLSGAN, T) \
  FASTGAN_INSTANTIATE_KIND(terms::kHinge, T) \
  FASTGAN_INSTANTIATE_KIND(terms::kMargin, T)
FASTGAN_INSTANTIATE_KINDS(float)
FASTGAN_INSTANTIATE_KINDS(double)
#undef FASTGAN_INSTANTIATE_KINDS
#undef FASTGAN_INSTANTIATE_KIND
#undef FASTGAN_INSTANTIATE_T

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
#endif  // FASTGAN_HAVE_VEC_AVX2
