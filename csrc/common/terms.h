// fastgan: element-wise terms of the fused operators and their derivatives, written once.
//
// Each formula below is a template over its value type V, written once and shared by every
// implementation: the scalar kernels (float or double, the accumulation type: the C++ CPU loops'
// tails and the CUDA kernels, which nvcc compiles with these functions marked __host__ __device__,
// so the CPU tests exercise the CUDA math too), the GCC-vector loops of csrc/cpu/loops.h
// (Vec<float>, Vec<double>) and the at::vec::Vectorized<T> loops of csrc/cpu/loops_vec.cpp. A
// formula touches its values only through arithmetic (+, -, *, /) and the math primitives of
// Math<V> (below): splat, select, neg, abs, exp, log1p, relu, relu_grad, sign, sigmoid, softplus.
// Only the primitives differ per value type: this file supplies them for float and double, loops.h
// for its GCC vectors (Cephes exp / log1p for fp32), loops_vec.cpp for Vectorized (Sleef). No
// torch dependency here.
//
// NaN policy: NaN in, NaN out. Comparisons are written so that a NaN operand takes the branch
// that carries it through (e.g. relu(t) = t < 0 ? 0 : t).
#pragma once

#include <cmath>
#include <type_traits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FASTGAN_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
// always inlined, like nvcc's __forceinline__: loops.h calls these on 256-bit vectors from
// functions compiled for AVX2, and an out-of-line copy (compiled for the baseline target) would
// take those vectors with another calling convention. With every call inlined no 256-bit vector
// crosses a call, so GCC's note that such a parameter "changes the ABI" without AVX does not apply.
#define FASTGAN_HD inline __attribute__((always_inline))
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#else
#define FASTGAN_HD inline
#endif

namespace fastgan {
namespace terms {

// ----------------------------------------------------------------------------- math primitives
// Math<V>: the primitives of one value type V, as static functions; S = Math<V>::scalar is its
// element type. Each specialisation supplies splat(S) -> V, select(mask, a, b) (a where the mask
// of a comparison of two V holds, else b), neg, abs, exp and log1p, and may replace the generic
// forms of relu, relu_grad, sign, sigmoid and softplus that GenericMath derives from those.
template <typename V, typename Enable = void>
struct Math;

// The primitives every value type shares, written with the type's own splat / select / exp /
// log1p (D: the Math specialisation deriving from this one).
template <typename D, typename V, typename S>
struct GenericMath {
  typedef S scalar;
  static FASTGAN_HD V relu(V t) { return D::select(t < D::splat(S(0)), D::splat(S(0)), t); }
  // d relu(t) / dt as autograd defines it (0 at t = 0)
  static FASTGAN_HD V relu_grad(V t) { return D::select(t <= D::splat(S(0)), D::splat(S(0)), D::splat(S(1))); }
  // sign with sign(0) = 0 and sign(NaN) = 0: the derivative of |d| as autograd defines it
  // (torch.sgn), so a NaN difference gives a 0 gradient like the reference (its loss is NaN)
  static FASTGAN_HD V sign(V d) {
    return D::select(d > D::splat(S(0)), D::splat(S(1)),
                     D::select(d < D::splat(S(0)), D::splat(S(-1)), D::splat(S(0))));
  }
  // log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|))
  static FASTGAN_HD V softplus(V x) {
    return D::select(x > D::splat(S(0)), x, D::splat(S(0))) + D::log1p(D::exp(D::neg(D::abs(x))));
  }
  // 1 / (1 + exp(-x)), the derivative of softplus, without overflow; both sides from one exp
  static FASTGAN_HD V sigmoid(V x) {
    const V e = D::exp(D::neg(D::abs(x)));
    const V r = D::splat(S(1)) / (D::splat(S(1)) + e);
    return D::select(x >= D::splat(S(0)), r, e * r);  // NaN takes e·r = NaN
  }
};

// float and double (the scalar kernels, host and CUDA device)
template <typename T>
struct ScalarMath : GenericMath<ScalarMath<T>, T, T> {
  static FASTGAN_HD T splat(T c) { return c; }
  static FASTGAN_HD T select(bool c, T a, T b) { return c ? a : b; }
  static FASTGAN_HD T neg(T x) { return -x; }
  static FASTGAN_HD T abs(T x) {
    using std::fabs;
    return fabs(x);
  }
  static FASTGAN_HD T exp(T x) {
    using std::exp;
    return exp(x);
  }
  static FASTGAN_HD T log1p(T x) {
    using std::log1p;
    return log1p(x);
  }
  // one exp on the side that cannot overflow, one division
  static FASTGAN_HD T sigmoid(T x) {
    using std::exp;
    if (x >= T(0)) {
      return T(1) / (T(1) + exp(-x));
    }
    const T e = exp(x);  // NaN lands here and stays NaN
    return e / (T(1) + e);
  }
};
template <>
struct Math<float> : ScalarMath<float> {};
template <>
struct Math<double> : ScalarMath<double> {};

// The scalar primitives under their former names (float / double).
template <typename T>
FASTGAN_HD T softplus(T x) {
  return Math<T>::softplus(x);
}
template <typename T>
FASTGAN_HD T sigmoid(T x) {
  return Math<T>::sigmoid(x);
}
template <typename T>
FASTGAN_HD T relu(T t) {
  return Math<T>::relu(t);
}
template <typename T>
FASTGAN_HD T relu_grad(T t) {
  return Math<T>::relu_grad(t);
}
template <typename T>
FASTGAN_HD T sign(T d) {
  return Math<T>::sign(d);
}

// ------------------------------------------------------------------------- adversarial_loss
// The kind codes, defined here only: the CPU kernels, their vector loops, the CUDA kernels and
// glue all use these. kKindNames[code] is the kind's name; the order is that of
// fastgan.ops.adversarial_loss.KINDS (tests/test_build.py compares them through
// fastgan._C.build_info()["kinds"]). The name -> code lookup is prepare::kind_code
// (csrc/common/prepare.h).
enum Kind : int { kBCE = 0, kWGAN = 1, kLSGAN = 2, kHinge = 3, kMargin = 4 };
constexpr int kNumKinds = 5;
constexpr const char* kKindNames[kNumKinds] = {"bce", "wgan", "lsgan", "hinge", "margin"};

// f(std::integral_constant<int, K>()) for the kind code `kind`; otherwise() for any other int.
// The kind becomes a template parameter, so each instantiation holds one kind's terms only.
template <typename F, typename G>
decltype(auto) dispatch_kind(int kind, F&& f, G&& otherwise) {
  switch (kind) {
    case kBCE: return f(std::integral_constant<int, kBCE>());
    case kWGAN: return f(std::integral_constant<int, kWGAN>());
    case kLSGAN: return f(std::integral_constant<int, kLSGAN>());
    case kHinge: return f(std::integral_constant<int, kHinge>());
    case kMargin: return f(std::integral_constant<int, kMargin>());
    default: return otherwise();
  }
}

// t_real(x) and t_fake(x) for each kind:
//   bce     softplus(-x)            softplus(x)
//   wgan    -x                      x
//   lsgan   (x - target)^2 / 2      (x - target)^2 / 2
//   hinge   relu(margin - x)        relu(margin + x)
//   margin  x                       relu(margin - x)        (EBGAN)
template <int K, bool REAL, typename V>
FASTGAN_HD V adv_term(V x, typename Math<V>::scalar target, typename Math<V>::scalar margin) {
  using M = Math<V>;
  if constexpr (K == kBCE) return REAL ? M::softplus(M::neg(x)) : M::softplus(x);
  if constexpr (K == kWGAN) return REAL ? M::neg(x) : x;
  if constexpr (K == kLSGAN) return M::splat(0.5) * (x - M::splat(target)) * (x - M::splat(target));
  if constexpr (K == kHinge) return REAL ? M::relu(M::splat(margin) - x) : M::relu(M::splat(margin) + x);
  return REAL ? x : M::relu(M::splat(margin) - x);  // kMargin
}

// d t(x) / dx
template <int K, bool REAL, typename V>
FASTGAN_HD V adv_term_grad(V x, typename Math<V>::scalar target, typename Math<V>::scalar margin) {
  using M = Math<V>;
  if constexpr (K == kBCE) return REAL ? M::neg(M::sigmoid(M::neg(x))) : M::sigmoid(x);
  if constexpr (K == kWGAN) return M::splat(REAL ? -1 : 1);
  if constexpr (K == kLSGAN) return x - M::splat(target);
  if constexpr (K == kHinge) return REAL ? M::neg(M::relu_grad(M::splat(margin) - x)) : M::relu_grad(M::splat(margin) + x);
  return REAL ? M::splat(1) : M::neg(M::relu_grad(M::splat(margin) - x));  // kMargin
}

// ------------------------------------------------------------------------ grad_norm_penalty
// φ(t) = t^2, or max(t, 0)^2 when one-sided; φ'(t) = 2t or 2 max(t, 0).
template <typename V>
FASTGAN_HD V penalty_phi(V t, bool one_sided) {
  const V r = one_sided ? Math<V>::relu(t) : t;
  return r * r;
}

template <typename V>
FASTGAN_HD V penalty_phi_grad(V t, bool one_sided) {
  return Math<V>::splat(2) * (one_sided ? Math<V>::relu(t) : t);
}

// Per-sample factor of the penalty's backward (scalars only): dg_i = scale * g_i with
// scale = gout · φ'(n − center) / (B · n), and scale = 0 where n = 0 (finite gradient).
template <typename T>
FASTGAN_HD T penalty_grad_scale(T norm, T center, bool one_sided, T gout, T batch) {
  if (norm == T(0)) return T(0);
  return gout * penalty_phi_grad(norm - center, one_sided) / (batch * norm);
}

// --------------------------------------------------------------------- reconstruction_error
// |d|^p for p in {1, 2} and its derivative.
template <typename V>
FASTGAN_HD V rec_term(V d, int p) {
  return p == 1 ? Math<V>::abs(d) : d * d;
}

template <typename V>
FASTGAN_HD V rec_term_grad(V d, int p) {
  return p == 1 ? Math<V>::sign(d) : Math<V>::splat(2) * d;
}

// ------------------------------------------------------------------------------ interpolate
// x̂ = fake + alpha (real − fake)
template <typename V>
FASTGAN_HD V lerp(V real, V fake, typename Math<V>::scalar alpha) {
  return fake + Math<V>::splat(alpha) * (real - fake);
}

// d x̂ / d real = alpha, d x̂ / d fake = 1 − alpha: dreal = alpha·g, dfake = (1 − alpha)·g
template <typename V>
FASTGAN_HD V lerp_grad_real(V g, typename Math<V>::scalar alpha) {
  return g * Math<V>::splat(alpha);
}

template <typename V>
FASTGAN_HD V lerp_grad_fake(V g, typename Math<V>::scalar alpha) {
  return g * Math<V>::splat(typename Math<V>::scalar(1) - alpha);
}

// d x̂ / d alpha = real − fake: alpha's gradient term g·(real − fake)
template <typename V>
FASTGAN_HD V lerp_grad_alpha(V g, V real, V fake) {
  return g * (real - fake);
}

}  // namespace terms
}  // namespace fastgan
