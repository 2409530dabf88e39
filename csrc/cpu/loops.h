// fastgan CPU kernels: the hot loops, written once with GCC/Clang vector extensions and compiled
// twice — for the baseline instruction set and for AVX2 — with the variant chosen at run time.
//
// Each loop body is an always-inline template over the element type; `FASTGAN_MULTIVERSION`
// wraps it in a baseline function, an AVX2 function (`target("avx2")`: the same code, 256-bit
// registers) and a dispatcher. Vectors hold kVecBytes of the accumulation type (fp32 for fp16,
// bf16 and fp32; fp64 for fp64); loads convert element-wise. Per-chunk reductions keep four
// vector accumulators and add their lanes in a fixed order, so results do not depend on the
// thread count, only (within the last bits) on the instruction set. The element-wise terms are
// terms.h's formulas (csrc/common/terms.h), written once; this file supplies their primitives for
// its vectors (terms::Math<Vec<float>>: Cephes exp / log1p). On an AVX2 CPU most fp32 and fp64
// loops run at::vec::Vectorized code instead (csrc/cpu/loops_vec.cpp, the `_vec` variants below),
// and so do most bf16 / fp16 loops; the hand-written vector code runs on an AVX2 CPU where it wins
// (fp32 sum_squares, the fp32 bce sum, scale with fp32 input; for bf16 the adversarial sums and
// the wgan / margin-real gradients), and on a CPU without AVX2 in every loop but the few where
// Vectorized's DEFAULT capability wins (loops_vec_base.cpp, the `_vecbase` variants: the wgan and
// margin-real sums, the fp64 lsgan sum). Which loop uses which code, measured:
// benchmarks/results/cpu-vec-vs-handwritten.md.
#pragma once

#include "simd.h"
#include "../common/terms.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace fastgan {
namespace cpu {
namespace loops {

#define FASTGAN_INLINE inline __attribute__((always_inline))
// Lambdas in the loop bodies must be inlined too: an out-of-line lambda would be compiled for the
// baseline target and return its 256-bit vector with a different calling convention than the
// AVX2 caller expects.
#define FASTGAN_LAMBDA_INLINE __attribute__((always_inline))
// With every lambda inlined no 256-bit vector crosses a call, so GCC's note that such a return
// "changes the ABI" without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

constexpr int kVecBytes = 32;
template <typename acc_t>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(kVecBytes)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(kVecBytes)));
};
template <typename acc_t>
using Vec = typename VecOf<acc_t>::type;
template <typename acc_t>
constexpr int kWidth = kVecBytes / sizeof(acc_t);
constexpr int kRegs = 4;  // independent accumulators per reduction

template <typename acc_t, typename scalar_t>
FASTGAN_INLINE Vec<acc_t> load(const scalar_t* p) {
  Vec<acc_t> v;
  if constexpr (sizeof(scalar_t) == sizeof(acc_t)) {
    std::memcpy(&v, p, sizeof(v));
  } else {
    for (int w = 0; w < kWidth<acc_t>; ++w) v[w] = static_cast<acc_t>(p[w]);
  }
  return v;
}

template <typename acc_t, typename scalar_t>
FASTGAN_INLINE void store(scalar_t* p, const Vec<acc_t>& v) {
  if constexpr (sizeof(scalar_t) == sizeof(acc_t)) {
    std::memcpy(p, &v, sizeof(v));
  } else {
    for (int w = 0; w < kWidth<acc_t>; ++w) p[w] = static_cast<scalar_t>(v[w]);
  }
}

// a vector of c in every lane
template <typename acc_t>
FASTGAN_INLINE Vec<acc_t> splat(acc_t c) {
  return Vec<acc_t>{} + c;
}

template <typename acc_t>
FASTGAN_INLINE acc_t hsum(const Vec<acc_t> (&acc)[kRegs]) {
  Vec<acc_t> v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  acc_t s = acc_t(0);
  for (int w = 0; w < kWidth<acc_t>; ++w) s += v[w];
  return s;
}

// Σ f(vector at i) over [0, n) with a scalar tail g(i); f and g compute the same term.
template <typename acc_t, typename VF, typename SF>
FASTGAN_INLINE acc_t reduce(int64_t n, const VF& f, const SF& g) {
  constexpr int W = kWidth<acc_t>;
  Vec<acc_t> acc[kRegs];
  for (int r = 0; r < kRegs; ++r) acc[r] = splat<acc_t>(0);
  int64_t i = 0;
  for (; i + kRegs * W <= n; i += kRegs * W) {
    for (int r = 0; r < kRegs; ++r) acc[r] += f(i + r * W);
  }
  for (; i + W <= n; i += W) acc[0] += f(i);
  acc_t tail = acc_t(0);
  for (; i < n; ++i) tail += g(i);
  return hsum<acc_t>(acc) + tail;
}

// ---------------------------------------------------------------------------- loop bodies
template <typename scalar_t, typename acc_t>
FASTGAN_INLINE acc_t sum_squares_impl(const scalar_t* x, int64_t n) {
  return reduce<acc_t>(
      n, [&](int64_t i) FASTGAN_LAMBDA_INLINE { const auto v = load<acc_t>(x + i); return v * v; },
      [&](int64_t i) FASTGAN_LAMBDA_INLINE { const acc_t v = static_cast<acc_t>(x[i]); return v * v; });
}

template <typename scalar_t, typename acc_t>
FASTGAN_INLINE void scale_impl(const scalar_t* x, scalar_t* out, acc_t s, int64_t n) {
  constexpr int W = kWidth<acc_t>;
  int64_t i = 0;
  for (; i + W <= n; i += W) store<acc_t>(out + i, load<acc_t>(x + i) * s);
  for (; i < n; ++i) out[i] = static_cast<scalar_t>(static_cast<acc_t>(x[i]) * s);
}

template <typename scalar_t, typename acc_t>
FASTGAN_INLINE acc_t sum_abs_pow_diff_impl(const scalar_t* x, const scalar_t* r, int64_t n, int p) {
  if (p == 1) {
    return reduce<acc_t>(
        n, [&](int64_t i) FASTGAN_LAMBDA_INLINE { return terms::rec_term(load<acc_t>(x + i) - load<acc_t>(r + i), 1); },
        [&](int64_t i) FASTGAN_LAMBDA_INLINE { return terms::rec_term(static_cast<acc_t>(x[i]) - static_cast<acc_t>(r[i]), 1); });
  }
  return reduce<acc_t>(
      n, [&](int64_t i) FASTGAN_LAMBDA_INLINE { return terms::rec_term(load<acc_t>(x + i) - load<acc_t>(r + i), 2); },
      [&](int64_t i) FASTGAN_LAMBDA_INLINE { return terms::rec_term(static_cast<acc_t>(x[i]) - static_cast<acc_t>(r[i]), 2); });
}

// dx = s · d|x − r|^p/dx, dr = −dx (either output may be null)
template <typename scalar_t, typename acc_t>
FASTGAN_INLINE void rec_grad_impl(const scalar_t* x, const scalar_t* r, scalar_t* dx, scalar_t* dr, acc_t s,
                                  int64_t n, int p) {
  constexpr int W = kWidth<acc_t>;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const auto d = load<acc_t>(x + i) - load<acc_t>(r + i);
    const auto g = terms::rec_term_grad(d, p) * s;
    if (dx) store<acc_t>(dx + i, g);
    if (dr) store<acc_t>(dr + i, -g);
  }
  for (; i < n; ++i) {
    const acc_t g = s * terms::rec_term_grad(static_cast<acc_t>(x[i]) - static_cast<acc_t>(r[i]), p);
    if (dx) dx[i] = static_cast<scalar_t>(g);
    if (dr) dr[i] = static_cast<scalar_t>(-g);
  }
}

template <typename scalar_t, typename acc_t>
FASTGAN_INLINE void lerp_impl(const scalar_t* real, const scalar_t* fake, scalar_t* out, acc_t a, int64_t n) {
  constexpr int W = kWidth<acc_t>;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    store<acc_t>(out + i, terms::lerp(load<acc_t>(real + i), load<acc_t>(fake + i), a));
  }
  for (; i < n; ++i) {
    out[i] = static_cast<scalar_t>(terms::lerp(static_cast<acc_t>(real[i]), static_cast<acc_t>(fake[i]), a));
  }
}

// dreal = a·g, dfake = (1 − a)·g (either may be null)
template <typename scalar_t, typename acc_t>
FASTGAN_INLINE void lerp_grad_impl(const scalar_t* g, scalar_t* dreal, scalar_t* dfake, acc_t a, int64_t n) {
  constexpr int W = kWidth<acc_t>;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const auto v = load<acc_t>(g + i);
    if (dreal) store<acc_t>(dreal + i, terms::lerp_grad_real(v, a));
    if (dfake) store<acc_t>(dfake + i, terms::lerp_grad_fake(v, a));
  }
  for (; i < n; ++i) {
    const acc_t v = static_cast<acc_t>(g[i]);
    if (dreal) dreal[i] = static_cast<scalar_t>(terms::lerp_grad_real(v, a));
    if (dfake) dfake[i] = static_cast<scalar_t>(terms::lerp_grad_fake(v, a));
  }
}

// The backward of interpolate in one pass when alpha's gradient is asked for: returns
// Σ g·(real − fake) and writes dreal = a·g, dfake = (1 − a)·g where those are non-null.
template <typename scalar_t, typename acc_t>
FASTGAN_INLINE acc_t lerp_backward_impl(const scalar_t* g, const scalar_t* real, const scalar_t* fake, scalar_t* dreal,
                                        scalar_t* dfake, acc_t a, int64_t n) {
  constexpr int W = kWidth<acc_t>;
  Vec<acc_t> acc[kRegs];
  for (int r = 0; r < kRegs; ++r) acc[r] = splat<acc_t>(0);
  const auto step = [&](int64_t j, Vec<acc_t>& sum) FASTGAN_LAMBDA_INLINE {
    const auto v = load<acc_t>(g + j);
    if (dreal) store<acc_t>(dreal + j, terms::lerp_grad_real(v, a));
    if (dfake) store<acc_t>(dfake + j, terms::lerp_grad_fake(v, a));
    sum += terms::lerp_grad_alpha(v, load<acc_t>(real + j), load<acc_t>(fake + j));
  };
  int64_t i = 0;
  for (; i + kRegs * W <= n; i += kRegs * W) {
    for (int r = 0; r < kRegs; ++r) step(i + r * W, acc[r]);
  }
  for (; i + W <= n; i += W) step(i, acc[0]);
  acc_t tail = acc_t(0);
  for (; i < n; ++i) {
    const acc_t v = static_cast<acc_t>(g[i]);
    if (dreal) dreal[i] = static_cast<scalar_t>(terms::lerp_grad_real(v, a));
    if (dfake) dfake[i] = static_cast<scalar_t>(terms::lerp_grad_fake(v, a));
    tail += terms::lerp_grad_alpha(v, static_cast<acc_t>(real[i]), static_cast<acc_t>(fake[i]));
  }
  return hsum<acc_t>(acc) + tail;
}

// ---------------------------------------------------------------- adversarial_loss terms
// Vector exp / log1p for fp32 (Cephes' single-precision polynomials, ~1 ulp); fp64 uses libm.
FASTGAN_INLINE Vec<float> vexp(Vec<float> x) {
  typedef int32_t VecI __attribute__((vector_size(kVecBytes)));
  x = x > 88.3762626647949f ? splat(88.3762626647949f) : x;  // NaN passes through
  x = x < -88.3762626647949f ? splat(-88.3762626647949f) : x;
  Vec<float> fx = x * 1.44269504088896341f + 0.5f;
  VecI t = __builtin_convertvector(fx, VecI);  // truncation; floor below
  Vec<float> tf = __builtin_convertvector(t, Vec<float>);
  tf = tf > fx ? tf - 1.0f : tf;
  t = __builtin_convertvector(tf, VecI);
  x = x - tf * 0.693359375f + tf * 2.12194440e-4f;
  Vec<float> y = splat(1.9875691500e-4f);
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * (x * x) + x + 1.0f;
  VecI bits = (t + 127) << 23;  // 2^t
  Vec<float> scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return y * scale;
}

// log(w) for w in [1, 2] (Cephes logf after splitting off a factor 2 above sqrt(2)).
FASTGAN_INLINE Vec<float> vlog_1_2(Vec<float> w) {
  const auto big = w > 1.41421356237f;
  Vec<float> e = big ? splat(1.0f) : splat(0.0f);
  Vec<float> z = (big ? w * 0.5f : w) - 1.0f;
  Vec<float> y = splat(7.0376836292e-2f);
  y = y * z - 1.1514610310e-1f;
  y = y * z + 1.1676998740e-1f;
  y = y * z - 1.2420140846e-1f;
  y = y * z + 1.4249322787e-1f;
  y = y * z - 1.6668057665e-1f;
  y = y * z + 2.0000714765e-1f;
  y = y * z - 2.4999993993e-1f;
  y = y * z + 3.3333331174e-1f;
  const Vec<float> z2 = z * z;
  y = y * z2 * z - 2.12194440e-4f * e - 0.5f * z2;
  return z + y + 0.693359375f * e;
}

// log1p(u) for u in [0, 1], accurate for tiny u: log(w) for w = 1 + u, plus the rounding error
// of w carried through 1/w ≈ 1 − u (its error, (u − (w − 1))·u²/(1 + u), is below 6e-8·u²).
FASTGAN_INLINE Vec<float> vlog1p_01(Vec<float> u) {
  const Vec<float> w = 1.0f + u;
  return vlog_1_2(w) + (u - (w - 1.0f)) * (1.0f - u);
}

}  // namespace loops
}  // namespace cpu

// The math primitives of terms.h (terms::Math) for the GCC vectors: comparisons give lane masks
// that the vector ?: selects with; abs clears the sign bit (NaN stays NaN).
namespace terms {
template <typename acc_t>
struct VecMath : GenericMath<Math<cpu::loops::Vec<acc_t>>, cpu::loops::Vec<acc_t>, acc_t> {
  typedef cpu::loops::Vec<acc_t> V;
  static FASTGAN_INLINE V splat(acc_t c) { return cpu::loops::splat<acc_t>(c); }
  template <typename Mask>
  static FASTGAN_INLINE V select(Mask m, V a, V b) {
    return m ? a : b;
  }
  static FASTGAN_INLINE V neg(V x) { return -x; }
  // |x| by clearing the sign bit, as the scalar tail's fabs does (NaN stays NaN, -0 gives +0): a
  // select on x < 0 costs 20x more than d*d at the baseline ISA (SSE2), where GCC splits the
  // 32-byte compare and blend (benchmarks/results/cpu-vec-vs-handwritten.md, rec_p1)
  static FASTGAN_INLINE V abs(V x) {
    typedef std::conditional_t<sizeof(acc_t) == 4, int32_t, int64_t> I;
    typedef I VI __attribute__((vector_size(sizeof(V))));
    return (V)((VI)x & std::numeric_limits<I>::max());
  }
};
// fp32: Cephes exp and log1p (above); fp64 vectors have no exp / log1p (the fp64 terms of
// adversarial_loss run as scalars here, or with Vectorized in loops_vec.cpp)
template <>
struct Math<cpu::loops::Vec<float>> : VecMath<float> {
  static FASTGAN_INLINE V exp(V x) { return cpu::loops::vexp(x); }
  // log1p's argument exp(-|x|) lies in [0, 1], the range of vlog1p_01
  static FASTGAN_INLINE V softplus(V x) {
    return (x > 0.0f ? x : splat(0.0f)) + cpu::loops::vlog1p_01(exp(neg(abs(x))));
  }
};
template <>
struct Math<cpu::loops::Vec<double>> : VecMath<double> {};
}  // namespace terms

namespace cpu {
namespace loops {

// Σ t(x_i) and dx_i = s · t'(x_i): vector code for fp32 accumulation, libm for fp64 (on an AVX2
// CPU fp32 and fp64 inputs take the Vectorized adv_sum_vec / adv_grad_vec instead, except the
// fp32 bce sum; below).
template <int K, bool REAL, typename scalar_t, typename acc_t>
FASTGAN_INLINE acc_t adv_sum_impl(const scalar_t* x, int64_t n, acc_t target, acc_t margin) {
  if constexpr (std::is_same_v<acc_t, float>) {
    return reduce<float>(
        n, [&](int64_t i) FASTGAN_LAMBDA_INLINE { return terms::adv_term<K, REAL>(load<float>(x + i), target, margin); },
        [&](int64_t i) FASTGAN_LAMBDA_INLINE {
          return terms::adv_term<K, REAL>(static_cast<float>(x[i]), target, margin);
        });
  } else {
    acc_t s = acc_t(0);
    for (int64_t i = 0; i < n; ++i) s += terms::adv_term<K, REAL>(static_cast<acc_t>(x[i]), target, margin);
    return s;
  }
}

template <int K, bool REAL, typename scalar_t, typename acc_t>
FASTGAN_INLINE void adv_grad_impl(const scalar_t* x, scalar_t* dx, acc_t s, int64_t n, acc_t target, acc_t margin) {
  int64_t i = 0;
  if constexpr (std::is_same_v<acc_t, float>) {
    constexpr int W = kWidth<float>;
    for (; i + W <= n; i += W) {
      store<float>(dx + i, terms::adv_term_grad<K, REAL>(load<float>(x + i), target, margin) * s);
    }
  }
  for (; i < n; ++i) {
    dx[i] = static_cast<scalar_t>(s * terms::adv_term_grad<K, REAL>(static_cast<acc_t>(x[i]), target, margin));
  }
}

// ------------------------------------------------------ baseline / AVX2 / Vectorized variants
// cpu_has_avx2(): csrc/cpu/simd.h
//
// Each loop has a baseline and an AVX2 variant of the code above (name_base, name_avx2) and may
// have a third, name_vec: the same loop with at::vec::Vectorized (AVX2, Sleef exp / log1p), in
// csrc/cpu/loops_vec.cpp, for fp32 and fp64 inputs (scalar_t == acc_t) and bf16 / fp16 inputs. The dispatcher `name`
// takes name_vec on an AVX2 CPU where the loop's condition VEC holds, else name_avx2 on an AVX2
// CPU, else name_base; on a CPU without AVX2 it takes name_vecbase (csrc/cpu/loops_vec_base.cpp,
// Vectorized at the baseline ISA) where the condition VECBASE holds. Which loop uses which code,
// and why (measured):
// benchmarks/results/cpu-vec-vs-handwritten.md.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FASTGAN_AVX2_TARGET __attribute__((noinline, target("avx2")))
#define FASTGAN_HAVE_AVX2_VARIANT 1
#else
#define FASTGAN_AVX2_TARGET __attribute__((noinline))
#define FASTGAN_HAVE_AVX2_VARIANT 0
#endif

// loops_vec.cpp is compiled (GCC only: it relies on GCC's target pragma)
#if FASTGAN_HAVE_AVX2_VARIANT && !defined(__clang__)
#define FASTGAN_HAVE_VEC_AVX2 1
#else
#define FASTGAN_HAVE_VEC_AVX2 0
#endif

// loops_vec_base.cpp is compiled: Vectorized at the baseline ISA (DEFAULT) for the few loops it
// wins on a CPU without AVX2 (the `_vecbase` variants; measured on x86-64 with GCC)
#define FASTGAN_HAVE_VEC_BASE FASTGAN_HAVE_VEC_AVX2
template <typename scalar_t, typename acc_t, typename want_t>
constexpr bool kVecBase = FASTGAN_HAVE_VEC_BASE && std::is_same_v<scalar_t, want_t> && std::is_same_v<acc_t, want_t>;

// fp32 or fp64 in, the same type accumulated: the types loops_vec.cpp instantiates
template <typename scalar_t, typename acc_t>
constexpr bool kVecTypes = FASTGAN_HAVE_VEC_AVX2 && std::is_same_v<scalar_t, acc_t> &&
                           (std::is_same_v<acc_t, float> || std::is_same_v<acc_t, double>);
// bf16 or fp16 in (loops_vec.cpp instantiates these with fp32 accumulation, and with fp64 for
// sum_squares and scale)
template <typename scalar_t>
constexpr bool kVecLowp = FASTGAN_HAVE_VEC_AVX2 &&
                          (std::is_same_v<scalar_t, c10::BFloat16> || std::is_same_v<scalar_t, c10::Half>);

#define FASTGAN_MULTIVERSION(ret, name, params, args, VEC, VECBASE)                                     \
  template <typename scalar_t, typename acc_t>                                                          \
  __attribute__((noinline)) ret name##_base params {                                                    \
    return name##_impl<scalar_t, acc_t> args;                                                           \
  }                                                                                                     \
  template <typename scalar_t, typename acc_t>                                                          \
  FASTGAN_AVX2_TARGET ret name##_avx2 params {                                                          \
    return name##_impl<scalar_t, acc_t> args;                                                           \
  }                                                                                                     \
  template <typename scalar_t, typename acc_t>                                                          \
  ret name##_vec params;                                                                                \
  template <typename scalar_t, typename acc_t>                                                          \
  ret name##_vecbase params;                                                                            \
  template <typename scalar_t, typename acc_t>                                                          \
  inline ret name params {                                                                              \
    if constexpr (VEC) {                                                                                \
      if (cpu_has_avx2()) return name##_vec<scalar_t, acc_t> args;                                      \
    }                                                                                                   \
    if constexpr (VECBASE) {                                                                            \
      if (!cpu_has_avx2()) return name##_vecbase<scalar_t, acc_t> args;                                 \
    }                                                                                                   \
    return cpu_has_avx2() ? name##_avx2<scalar_t, acc_t> args : name##_base<scalar_t, acc_t> args;      \
  }

// sum_squares: the hand-written loop wins for fp32 in (fp64 sums: Vectorized converts through
// memory); Vectorized for bf16 / fp16 in (its conversions beat the element-wise ones)
FASTGAN_MULTIVERSION(acc_t, sum_squares, (const scalar_t* x, int64_t n), (x, n),
                     (kVecLowp<scalar_t> && std::is_same_v<acc_t, double>), false)
// scale: Vectorized for fp64, bf16 and fp16; fp32 in with an fp64 factor keeps the hand-written loop
FASTGAN_MULTIVERSION(void, scale, (const scalar_t* x, scalar_t* out, acc_t s, int64_t n), (x, out, s, n),
                     ((kVecTypes<scalar_t, acc_t> || kVecLowp<scalar_t>) && std::is_same_v<acc_t, double>), false)
FASTGAN_MULTIVERSION(acc_t, sum_abs_pow_diff, (const scalar_t* x, const scalar_t* r, int64_t n, int p), (x, r, n, p),
                     (kVecTypes<scalar_t, acc_t> || (kVecLowp<scalar_t> && std::is_same_v<acc_t, float>)), false)
FASTGAN_MULTIVERSION(void, rec_grad,
                     (const scalar_t* x, const scalar_t* r, scalar_t* dx, scalar_t* dr, acc_t s, int64_t n, int p),
                     (x, r, dx, dr, s, n, p), (kVecTypes<scalar_t, acc_t> || (kVecLowp<scalar_t> && std::is_same_v<acc_t, float>)),
                     false)
FASTGAN_MULTIVERSION(void, lerp, (const scalar_t* real, const scalar_t* fake, scalar_t* out, acc_t a, int64_t n),
                     (real, fake, out, a, n), (kVecTypes<scalar_t, acc_t> || (kVecLowp<scalar_t> && std::is_same_v<acc_t, float>)),
                     false)
FASTGAN_MULTIVERSION(void, lerp_grad, (const scalar_t* g, scalar_t* dreal, scalar_t* dfake, acc_t a, int64_t n),
                     (g, dreal, dfake, a, n), (kVecTypes<scalar_t, acc_t> || (kVecLowp<scalar_t> && std::is_same_v<acc_t, float>)),
                     false)
FASTGAN_MULTIVERSION(acc_t, lerp_backward,
                     (const scalar_t* g, const scalar_t* real, const scalar_t* fake, scalar_t* dreal, scalar_t* dfake,
                      acc_t a, int64_t n),
                     (g, real, fake, dreal, dfake, a, n), (kVecTypes<scalar_t, acc_t> || (kVecLowp<scalar_t> && std::is_same_v<acc_t, float>)),
                     false)

#define FASTGAN_MULTIVERSION_KIND(ret, name, params, args, VEC, VECBASE)                            \
  template <int K, bool REAL, typename scalar_t, typename acc_t>                                    \
  __attribute__((noinline)) ret name##_base params {                                                \
    return name##_impl<K, REAL, scalar_t, acc_t> args;                                              \
  }                                                                                                 \
  template <int K, bool REAL, typename scalar_t, typename acc_t>                                    \
  FASTGAN_AVX2_TARGET ret name##_avx2 params {                                                      \
    return name##_impl<K, REAL, scalar_t, acc_t> args;                                              \
  }                                                                                                 \
  template <int K, bool REAL, typename scalar_t, typename acc_t>                                    \
  ret name##_vec params;                                                                            \
  template <int K, bool REAL, typename scalar_t, typename acc_t>                                    \
  ret name##_vecbase params;                                                                        \
  template <int K, bool REAL, typename scalar_t, typename acc_t>                                    \
  inline ret name params {                                                                          \
    if constexpr (VEC) {                                                                            \
      if (cpu_has_avx2()) return name##_vec<K, REAL, scalar_t, acc_t> args;                         \
    }                                                                                               \
    if constexpr (VECBASE) {                                                                        \
      if (!cpu_has_avx2()) return name##_vecbase<K, REAL, scalar_t, acc_t> args;                    \
    }                                                                                               \
    return cpu_has_avx2() ? name##_avx2<K, REAL, scalar_t, acc_t> args                              \
                          : name##_base<K, REAL, scalar_t, acc_t> args;                             \
  }

// Σ t(x_i): Vectorized except the fp32 bce sum, where the hand-written Cephes exp / log1p win, and
// bf16 (the hand-written loop wins by 1-22%: bf16 -> fp32 is a shift GCC vectorises); fp64 has no
// hand-written vector math (libm per element); fp16: Vectorized (F16C conversions)
// Without AVX2: Vectorized's DEFAULT capability (loops_vec_base.cpp) for the wgan sums, margin's
// real side and the fp64 lsgan sum (1.5-2.8x faster there), the baseline variant otherwise
FASTGAN_MULTIVERSION_KIND(acc_t, adv_sum, (const scalar_t* x, int64_t n, acc_t target, acc_t margin),
                          (x, n, target, margin),
                          ((kVecTypes<scalar_t, acc_t> && (std::is_same_v<acc_t, double> || K != terms::kBCE)) ||
                           (kVecLowp<scalar_t> && std::is_same_v<scalar_t, c10::Half> &&
                            std::is_same_v<acc_t, float>)),
                          (((kVecBase<scalar_t, acc_t, float> || kVecBase<scalar_t, acc_t, double>) &&
                            (K == terms::kWGAN || (K == terms::kMargin && REAL))) ||
                           (kVecBase<scalar_t, acc_t, double> && K == terms::kLSGAN)))
// dx_i = s · t'(x_i): Vectorized for every kind, except for bf16 in the kinds whose derivative
// does not depend on x on that side (wgan, margin's real side), where the hand-written loop
// matches or wins
FASTGAN_MULTIVERSION_KIND(void, adv_grad, (const scalar_t* x, scalar_t* dx, acc_t s, int64_t n, acc_t target,
                                           acc_t margin),
                          (x, dx, s, n, target, margin),
                          (kVecTypes<scalar_t, acc_t> ||
                           (kVecLowp<scalar_t> && std::is_same_v<acc_t, float> &&
                            (std::is_same_v<scalar_t, c10::Half> || (K != terms::kWGAN && !(K == terms::kMargin && REAL))))),
                          false)

#undef FASTGAN_MULTIVERSION_KIND
#undef FASTGAN_MULTIVERSION

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
