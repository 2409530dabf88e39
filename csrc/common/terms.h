// fastgan: element-wise terms of the fused operators and their derivatives, written once.
//
// Plain inline functions on a floating type T (float or double: the accumulation type), with no
// torch dependency, so that the C++ CPU kernels and the CUDA kernels (nvcc marks them
// __host__ __device__) share one definition and the CPU tests exercise the CUDA math too.
//
// NaN policy: NaN in, NaN out. Comparisons are written so that a NaN operand takes the branch
// that carries it through (e.g. relu(t) = t < 0 ? 0 : t).
#pragma once

#include <cmath>
#include <type_traits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define FASTGAN_HD __host__ __device__ __forceinline__
#else
#define FASTGAN_HD inline
#endif

namespace fastgan {
namespace terms {

// ----------------------------------------------------------------------------- basic functions
// log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)).
template <typename T>
FASTGAN_HD T softplus(T x) {
  using std::exp;
  using std::fabs;
  using std::log1p;
  return (x > T(0) ? x : T(0)) + log1p(exp(-fabs(x)));
}

// 1 / (1 + exp(-x)), the derivative of softplus, without overflow.
template <typename T>
FASTGAN_HD T sigmoid(T x) {
  using std::exp;
  if (x >= T(0)) {
    return T(1) / (T(1) + exp(-x));
  }
  const T e = exp(x);  // NaN lands here and stays NaN
  return e / (T(1) + e);
}

template <typename T>
FASTGAN_HD T relu(T t) {
  return t < T(0) ? T(0) : t;
}

// d relu(t) / dt as autograd defines it (0 at t = 0).
template <typename T>
FASTGAN_HD T relu_grad(T t) {
  return t <= T(0) ? T(0) : T(1);
}

// sign with sign(0) = 0 and sign(NaN) = 0: the derivative of |d| as autograd defines it
// (torch.sgn), so a NaN difference gives a 0 gradient like the reference (its loss is NaN).
template <typename T>
FASTGAN_HD T sign(T d) {
  return d > T(0) ? T(1) : (d < T(0) ? T(-1) : T(0));
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
template <int K, bool REAL, typename T>
FASTGAN_HD T adv_term(T x, T target, T margin) {
  if (K == kBCE) return REAL ? softplus(-x) : softplus(x);
  if (K == kWGAN) return REAL ? -x : x;
  if (K == kLSGAN) return T(0.5) * (x - target) * (x - target);
  if (K == kHinge) return REAL ? relu(margin - x) : relu(margin + x);
  return REAL ? x : relu(margin - x);  // kMargin
}

// d t(x) / dx
template <int K, bool REAL, typename T>
FASTGAN_HD T adv_term_grad(T x, T target, T margin) {
  if (K == kBCE) return REAL ? -sigmoid(-x) : sigmoid(x);
  if (K == kWGAN) return REAL ? T(-1) : T(1);
  if (K == kLSGAN) return x - target;
  if (K == kHinge) return REAL ? -relu_grad(margin - x) : relu_grad(margin + x);
  return REAL ? T(1) : -relu_grad(margin - x);  // kMargin
}

// ------------------------------------------------------------------------ grad_norm_penalty
// φ(t) = t^2, or max(t, 0)^2 when one-sided; φ'(t) = 2t or 2 max(t, 0).
template <typename T>
FASTGAN_HD T penalty_phi(T t, bool one_sided) {
  const T r = one_sided ? relu(t) : t;
  return r * r;
}

template <typename T>
FASTGAN_HD T penalty_phi_grad(T t, bool one_sided) {
  return T(2) * (one_sided ? relu(t) : t);
}

// Per-sample factor of the penalty's backward: dg_i = scale * g_i with
// scale = gout · φ'(n − center) / (B · n), and scale = 0 where n = 0 (finite gradient).
template <typename T>
FASTGAN_HD T penalty_grad_scale(T norm, T center, bool one_sided, T gout, T batch) {
  if (norm == T(0)) return T(0);
  return gout * penalty_phi_grad(norm - center, one_sided) / (batch * norm);
}

// --------------------------------------------------------------------- reconstruction_error
// |d|^p for p in {1, 2} and its derivative.
template <typename T>
FASTGAN_HD T rec_term(T d, int p) {
  using std::fabs;
  return p == 1 ? fabs(d) : d * d;
}

template <typename T>
FASTGAN_HD T rec_term_grad(T d, int p) {
  return p == 1 ? sign(d) : T(2) * d;
}

// ------------------------------------------------------------------------------ interpolate
// x̂ = fake + alpha (real − fake)
template <typename T>
FASTGAN_HD T lerp(T real, T fake, T alpha) {
  return fake + alpha * (real - fake);
}

}  // namespace terms
}  // namespace fastgan
