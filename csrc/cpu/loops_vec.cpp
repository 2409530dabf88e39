// fastgan CPU kernels: the hot loops of csrc/cpu/loops.h with ATen's at::vec::Vectorized<T> (AVX2,
// Sleef's exp and log1p, both within 1 ulp), for fp32 and fp64 inputs: the loops' `_vec`
// variants, which loops.h's dispatchers take on an AVX2 CPU where Vectorized matches or beats the
// hand-written vector code (lerp, lerp_grad, lerp_backward, fp64 scale, the rec_* loops, the
// adversarial terms except the fp32 bce sum; and for bf16 / fp16 inputs, in namespace lowp below,
// most loops; measured: benchmarks/results/cpu-vec-vs-handwritten.md).
// The terms are terms.h's formulas; this file supplies only their primitives for Vectorized
// (terms::Math below).
//
// Vectorized picks its instruction set when the header is included (CPU_CAPABILITY_AVX2), so this
// file is compiled for AVX2 as a whole (the pragma below) and its functions are only called when
// the CPU has AVX2 (loops::cpu_has_avx2()); on other CPUs loops.h's baseline variants run (and
// loops_vec_base.cpp's, Vectorized at the baseline ISA, for a few loops). It
// includes nothing from torch but the vector headers and uses nothing from them but
// Vectorized<float>, Vectorized<double> and the bf16 / fp16 conversions to and from
// Vectorized<float>, whose functions live in the namespace at::vec::AVX2 that no other file of
// fastgan uses, and its own loops are defined here only (those shared with loops_vec_base.cpp,
// loops_vec_generic.h, in an anonymous namespace): no inline function compiled for AVX2 here
// can stand in for a baseline copy of another file. (terms.h's templates are declared before
// the pragma, so they keep the baseline target, and are always inlined.)
#include "loops.h"

#if FASTGAN_HAVE_VEC_AVX2
#pragma GCC target("avx2,fma,f16c")
// GCC's target pragma enables the instructions but not the macros that the vector and Sleef
// headers test: they are set here, for this file only, as -mavx2 -mfma -mf16c would set them
// (F16C: Vectorized's fp16 conversions; every AVX2 CPU has it).
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
#ifndef CPU_CAPABILITY  // (set already where benchmarks/vec_vs_handwritten.py compiles this file)
#define CPU_CAPABILITY AVX2
#endif
#ifndef CPU_CAPABILITY_AVX2
#define CPU_CAPABILITY_AVX2
#endif
#include <ATen/cpu/vec/vec.h>
#include <ATen/cpu/vec/functional.h>  // load_to_float / convert_from_float (bf16, fp16)

#include "vec_math.h"  // terms::Math for Vectorized
#include "loops_vec_generic.h"  // vreduce, generic_lerp, generic_adv_sum

namespace fastgan {
namespace cpu {
namespace loops {

// bf16 / fp16 inputs, fp32 arithmetic (fp64 for sum_squares and scale): 16 elements load into two
// Vectorized<float> (at::vec::load_to_float) and store back through convert_from_float; the
// reductions take two such blocks per step into four accumulators. (benchmarks/
// vec_vs_handwritten.cpp's gv loops, the code measured there.)
template <typename T>
constexpr bool kLowp = std::is_same_v<T, c10::BFloat16> || std::is_same_v<T, c10::Half>;
namespace lowp {
using F = Vc<float>;
using D = Vc<double>;
constexpr int64_t W = F::size();
template <typename T> inline void load2(const T* p, F& a, F& b) { at::vec::load_to_float(p, a, b); }
template <typename T> inline void store2(T* p, const F& a, const F& b) {
  at::vec::convert_from_float<T>(a, b).store(p);
}
inline at::vec::VectorizedN<double, 2> widen(const F& v) {
  return at::vec::convert<double, 2, float, 1>(at::vec::VectorizedN<float, 1>(v));
}
template <typename V, typename S, typename Fn, typename G> S reduce(int64_t n, const Fn& f, const G& g) {
  V acc[kRegs] = {V(S(0)), V(S(0)), V(S(0)), V(S(0))};
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    f(i, acc[0], acc[1]);
    f(i + 2 * W, acc[2], acc[3]);
  }
  for (; i + 2 * W <= n; i += 2 * W) f(i, acc[0], acc[1]);
  S tail = S(0);
  for (; i < n; ++i) tail += g(i);
  S lanes[V::size()];
  ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
  S s = S(0);
  for (int w = 0; w < V::size(); ++w) s += lanes[w];
  return s + tail;
}
template <typename T> inline float at(const T* p, int64_t i) { return static_cast<float>(p[i]); }

template <typename T> double sum_squares(const T* x, int64_t n) {
  return reduce<D, double>(
      n,
      [&](int64_t i, D& s0, D& s1) {
        F a, b;
        load2(x + i, a, b);
        const auto da = widen(a), db = widen(b);
        s0 = s0 + (da[0] * da[0] + db[0] * db[0]);
        s1 = s1 + (da[1] * da[1] + db[1] * db[1]);
      },
      [&](int64_t i) { return double(x[i]) * double(x[i]); });
}
template <typename T> void scale(const T* x, T* out, double s, int64_t n) {
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    F a, b;
    load2(x + i, a, b);
    auto da = widen(a), db = widen(b);
    for (int k = 0; k < 2; ++k) {
      da[k] = da[k] * D(s);
      db[k] = db[k] * D(s);
    }
    store2(out + i, at::vec::convert<float, 1, double, 2>(da), at::vec::convert<float, 1, double, 2>(db));
  }
  for (; i < n; ++i) out[i] = static_cast<T>(static_cast<double>(x[i]) * s);
}
template <typename T> float rec_sum(const T* x, const T* r, int64_t n, int p) {
  return reduce<F, float>(
      n,
      [&](int64_t i, F& s0, F& s1) {
        F xa, xb, ra, rb;
        load2(x + i, xa, xb);
        load2(r + i, ra, rb);
        s0 = s0 + terms::rec_term(xa - ra, p);
        s1 = s1 + terms::rec_term(xb - rb, p);
      },
      [&](int64_t i) { return terms::rec_term(at(x, i) - at(r, i), p); });
}
template <typename T> void rec_grad(const T* x, const T* r, T* dx, T* dr, float s, int64_t n, int p) {
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    F xa, xb, ra, rb;
    load2(x + i, xa, xb);
    load2(r + i, ra, rb);
    const F ga = terms::rec_term_grad(xa - ra, p) * F(s), gb = terms::rec_term_grad(xb - rb, p) * F(s);
    if (dx) store2(dx + i, ga, gb);
    if (dr) store2(dr + i, ga.neg(), gb.neg());
  }
  for (; i < n; ++i) {
    const float g = s * terms::rec_term_grad(at(x, i) - at(r, i), p);
    if (dx) dx[i] = static_cast<T>(g);
    if (dr) dr[i] = static_cast<T>(-g);
  }
}
template <typename T> void lerp(const T* real, const T* fake, T* out, float a, int64_t n) {
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    F ra, rb, fa, fb;
    load2(real + i, ra, rb);
    load2(fake + i, fa, fb);
    store2(out + i, terms::lerp(ra, fa, a), terms::lerp(rb, fb, a));
  }
  for (; i < n; ++i) out[i] = static_cast<T>(terms::lerp(at(real, i), at(fake, i), a));
}
// dreal / dfake of 2W elements at i from g's vectors (either output may be null)
template <typename T> inline void lerp_grads(T* dreal, T* dfake, int64_t i, const F& va, const F& vb, float a) {
  if (dreal) store2(dreal + i, terms::lerp_grad_real(va, a), terms::lerp_grad_real(vb, a));
  if (dfake) store2(dfake + i, terms::lerp_grad_fake(va, a), terms::lerp_grad_fake(vb, a));
}
template <typename T> void lerp_grad(const T* g, T* dreal, T* dfake, float a, int64_t n) {
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    F va, vb;
    load2(g + i, va, vb);
    lerp_grads(dreal, dfake, i, va, vb, a);
  }
  for (; i < n; ++i) {
    if (dreal) dreal[i] = static_cast<T>(terms::lerp_grad_real(at(g, i), a));
    if (dfake) dfake[i] = static_cast<T>(terms::lerp_grad_fake(at(g, i), a));
  }
}
template <typename T>
float lerp_backward(const T* g, const T* real, const T* fake, T* dreal, T* dfake, float a, int64_t n) {
  return reduce<F, float>(
      n,
      [&](int64_t i, F& s0, F& s1) {
        F va, vb, ra, rb, fa, fb;
        load2(g + i, va, vb);
        load2(real + i, ra, rb);
        load2(fake + i, fa, fb);
        lerp_grads(dreal, dfake, i, va, vb, a);
        s0 = s0 + terms::lerp_grad_alpha(va, ra, fa);
        s1 = s1 + terms::lerp_grad_alpha(vb, rb, fb);
      },
      [&](int64_t i) {
        const float v = at(g, i);
        if (dreal) dreal[i] = static_cast<T>(terms::lerp_grad_real(v, a));
        if (dfake) dfake[i] = static_cast<T>(terms::lerp_grad_fake(v, a));
        return terms::lerp_grad_alpha(v, at(real, i), at(fake, i));
      });
}
template <int K, bool REAL, typename T> float adv_sum(const T* x, int64_t n, float t, float m) {
  return reduce<F, float>(
      n,
      [&](int64_t i, F& s0, F& s1) {
        F a, b;
        load2(x + i, a, b);
        s0 = s0 + terms::adv_term<K, REAL>(a, t, m);
        s1 = s1 + terms::adv_term<K, REAL>(b, t, m);
      },
      [&](int64_t i) { return terms::adv_term<K, REAL>(at(x, i), t, m); });
}
template <int K, bool REAL, typename T> void adv_grad(const T* x, T* dx, float s, int64_t n, float t, float m) {
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    F a, b;
    load2(x + i, a, b);
    store2(dx + i, terms::adv_term_grad<K, REAL>(a, t, m) * F(s), terms::adv_term_grad<K, REAL>(b, t, m) * F(s));
  }
  for (; i < n; ++i) dx[i] = static_cast<T>(s * terms::adv_term_grad<K, REAL>(at(x, i), t, m));
}
}  // namespace lowp

// sum_squares: bf16 / fp16 only (fp32 and fp64 keep the hand-written loop)
template <typename T, typename A>
A sum_squares_vec(const T* x, int64_t n) {
  static_assert(kLowp<T> && std::is_same_v<A, double>);
  return lowp::sum_squares(x, n);
}

// The loops of loops.h, element for element: each term is terms.h's, on Vectorized and on the
// scalar tail.
template <typename T, typename A>
void scale_vec(const T* x, T* out, A s, int64_t n) {
  if constexpr (kLowp<T>) {
    lowp::scale(x, out, s, n);
  } else {
    static_assert(std::is_same_v<T, A>);
    using V = Vc<T>;
    int64_t i = 0;
    for (; i + V::size() <= n; i += V::size()) (V::loadu(x + i) * V(s)).store(out + i);
    for (; i < n; ++i) out[i] = x[i] * s;
  }
}

template <typename T, typename A>
A sum_abs_pow_diff_vec(const T* x, const T* r, int64_t n, int p) {
  if constexpr (kLowp<T>) {
    return lowp::rec_sum(x, r, n, p);
  } else {
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
}

template <typename T, typename A>
void rec_grad_vec(const T* x, const T* r, T* dx, T* dr, A s, int64_t n, int p) {
  if constexpr (kLowp<T>) {
    lowp::rec_grad(x, r, dx, dr, s, n, p);
  } else {
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
}

template <typename T, typename A>
void lerp_vec(const T* real, const T* fake, T* out, A a, int64_t n) {
  if constexpr (kLowp<T>) {
    lowp::lerp(real, fake, out, a, n);
  } else {
    generic_lerp<T>(real, fake, out, a, n);
  }
}

template <typename T, typename A>
void lerp_grad_vec(const T* g, T* dreal, T* dfake, A a, int64_t n) {
  if constexpr (kLowp<T>) {
    lowp::lerp_grad(g, dreal, dfake, a, n);
  } else {
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
}

template <typename T, typename A>
A lerp_backward_vec(const T* g, const T* real, const T* fake, T* dreal, T* dfake, A a, int64_t n) {
  if constexpr (kLowp<T>) {
    return lowp::lerp_backward(g, real, fake, dreal, dfake, a, n);
  } else {
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
}

// Σ t(x_i)
template <int K, bool REAL, typename T, typename A>
A adv_sum_vec(const T* x, int64_t n, A target, A margin) {
  if constexpr (kLowp<T>) {
    return lowp::adv_sum<K, REAL>(x, n, target, margin);
  } else {
    return generic_adv_sum<K, REAL, T>(x, n, target, margin);
  }
}

// dx_i = s · t'(x_i)
template <int K, bool REAL, typename T, typename A>
void adv_grad_vec(const T* x, T* dx, A s, int64_t n, A target, A margin) {
  if constexpr (kLowp<T>) {
    lowp::adv_grad<K, REAL>(x, dx, s, n, target, margin);
  } else {
    using V = Vc<T>;
    int64_t i = 0;
    for (; i + V::size() <= n; i += V::size()) {
      (terms::adv_term_grad<K, REAL>(V::loadu(x + i), target, margin) * V(s)).store(dx + i);
    }
    for (; i < n; ++i) dx[i] = s * terms::adv_term_grad<K, REAL>(x[i], target, margin);
  }
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

// bf16 and fp16 (fp32 arithmetic; sum_squares and scale in fp64): every loop; the dispatchers of
// loops.h take the measured winners (benchmarks/results/cpu-vec-vs-handwritten.md)
#define FASTGAN_INSTANTIATE_LOWP(T)                                                                           \
  template double sum_squares_vec<T, double>(const T*, int64_t);                                              \
  template void scale_vec<T, double>(const T*, T*, double, int64_t);                                          \
  template float sum_abs_pow_diff_vec<T, float>(const T*, const T*, int64_t, int);                            \
  template void rec_grad_vec<T, float>(const T*, const T*, T*, T*, float, int64_t, int);                      \
  template void lerp_vec<T, float>(const T*, const T*, T*, float, int64_t);                                   \
  template void lerp_grad_vec<T, float>(const T*, T*, T*, float, int64_t);                                    \
  template float lerp_backward_vec<T, float>(const T*, const T*, const T*, T*, T*, float, int64_t);
#define FASTGAN_INSTANTIATE_KIND_LOWP(K, T)                                                     \
  template float adv_sum_vec<K, true, T, float>(const T*, int64_t, float, float);               \
  template float adv_sum_vec<K, false, T, float>(const T*, int64_t, float, float);              \
  template void adv_grad_vec<K, true, T, float>(const T*, T*, float, int64_t, float, float);    \
  template void adv_grad_vec<K, false, T, float>(const T*, T*, float, int64_t, float, float);
#define FASTGAN_INSTANTIATE_KINDS_LOWP(T)       \
  FASTGAN_INSTANTIATE_LOWP(T)                   \
  FASTGAN_INSTANTIATE_KIND_LOWP(terms::kBCE, T)   \
  FASTGAN_INSTANTIATE_KIND_LOWP(terms::kWGAN, T)  \
  FASTGAN_INSTANTIATE_KIND_LOWP(terms::kLSGAN, T) \
  FASTGAN_INSTANTIATE_KIND_LOWP(terms::kHinge, T) \
  FASTGAN_INSTANTIATE_KIND_LOWP(terms::kMargin, T)
FASTGAN_INSTANTIATE_KINDS_LOWP(c10::BFloat16)
FASTGAN_INSTANTIATE_KINDS_LOWP(c10::Half)
#undef FASTGAN_INSTANTIATE_KINDS_LOWP
#undef FASTGAN_INSTANTIATE_KIND_LOWP
#undef FASTGAN_INSTANTIATE_LOWP
#undef FASTGAN_INSTANTIATE_KINDS
#undef FASTGAN_INSTANTIATE_KIND
#undef FASTGAN_INSTANTIATE_T

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
#endif  // FASTGAN_HAVE_VEC_AVX2
