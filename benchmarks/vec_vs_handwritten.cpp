// The CPU kernels' hot loops two ways, for benchmarks/vec_vs_handwritten.py: as shipped
// (csrc/cpu/loops.h: GCC vector extensions, Cephes exp/log1p for fp32, libm for fp64; its AVX2
// variant, the one that runs on an AVX2 machine) and with ATen's at::vec::Vectorized (AVX2, Sleef
// exp/log1p), the element-wise terms written once as templates for a scalar T and Vectorized<T>.
// Compiled by the script with -mavx2 -mfma -DCPU_CAPABILITY=AVX2 -DCPU_CAPABILITY_AVX2.
// Not part of fastgan's build.
#include <ATen/cpu/vec/vec.h>
#include <torch/extension.h>

#include "loops.h"

#include <chrono>
#include <cmath>
#include <string>

using at::vec::Vectorized;
namespace loops = fastgan::cpu::loops;
namespace terms = fastgan::terms;

namespace gen {
// ------------------------------------------------ the same operations on T and Vectorized<T>
template <typename T> T where(bool c, T a, T b) { return c ? a : b; }
template <typename T> Vectorized<T> where(const Vectorized<T>& c, const Vectorized<T>& a, const Vectorized<T>& b) {
  return Vectorized<T>::blendv(b, a, c);
}
template <typename T> T vexp(T x) { return std::exp(x); }
template <typename T> Vectorized<T> vexp(const Vectorized<T>& x) { return x.exp(); }
template <typename T> T vlog1p(T x) { return std::log1p(x); }
template <typename T> Vectorized<T> vlog1p(const Vectorized<T>& x) { return x.log1p(); }
template <typename T> T vabs(T x) { return std::fabs(x); }
template <typename T> Vectorized<T> vabs(const Vectorized<T>& x) { return x.abs(); }

// ------------------------------------------------------ the terms, once for both (T: scalar)
template <typename T, typename V> V relu(V t) { return where(t < V(T(0)), V(T(0)), t); }
template <typename T, typename V> V relu_grad(V t) { return where(t <= V(T(0)), V(T(0)), V(T(1))); }
template <typename T, typename V> V softplus(V x) {
  return where(x > V(T(0)), x, V(T(0))) + vlog1p(vexp(V(T(0)) - vabs(x)));
}
template <typename T, typename V> V sigmoid(V x) {
  const V e = vexp(V(T(0)) - vabs(x));
  const V r = V(T(1)) / (V(T(1)) + e);
  return where(x >= V(T(0)), r, e * r);
}
template <int K, bool REAL, typename T, typename V> V adv_term(V x, T target, T margin) {
  if constexpr (K == terms::kBCE) return REAL ? softplus<T>(V(T(0)) - x) : softplus<T>(x);
  if constexpr (K == terms::kWGAN) return REAL ? V(T(0)) - x : x;
  if constexpr (K == terms::kLSGAN) return V(T(0.5)) * (x - V(target)) * (x - V(target));
  if constexpr (K == terms::kHinge) return REAL ? relu<T>(V(margin) - x) : relu<T>(V(margin) + x);
  return REAL ? x : relu<T>(V(margin) - x);
}
template <int K, bool REAL, typename T, typename V> V adv_term_grad(V x, T target, T margin) {
  if constexpr (K == terms::kBCE) return REAL ? V(T(0)) - sigmoid<T>(V(T(0)) - x) : sigmoid<T>(x);
  if constexpr (K == terms::kWGAN) return V(T(REAL ? -1 : 1));
  if constexpr (K == terms::kLSGAN) return x - V(target);
  if constexpr (K == terms::kHinge) return REAL ? V(T(0)) - relu_grad<T>(V(margin) - x) : relu_grad<T>(V(margin) + x);
  return REAL ? V(T(1)) : V(T(0)) - relu_grad<T>(V(margin) - x);
}
template <typename T, typename V> V sign(V d) {
  return where(d > V(T(0)), V(T(1)), where(d < V(T(0)), V(T(-1)), V(T(0))));
}

// ---------------------------------------------------------------------------- the loops
constexpr int kRegs = 4;
// Σ f(i) over vectors with four accumulators, scalar tail g(i), lanes added in order.
template <typename T, typename F, typename G> T reduce(int64_t n, const F& f, const G& g) {
  using V = Vectorized<T>;
  constexpr int W = V::size();
  V acc[kRegs] = {V(T(0)), V(T(0)), V(T(0)), V(T(0))};
  int64_t i = 0;
  for (; i + kRegs * W <= n; i += kRegs * W) {
    for (int r = 0; r < kRegs; ++r) acc[r] = acc[r] + f(i + r * W);
  }
  for (; i + W <= n; i += W) acc[0] = acc[0] + f(i);
  T tail = T(0);
  for (; i < n; ++i) tail += g(i);
  const V v = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  T lanes[W];
  v.store(lanes);
  T s = T(0);
  for (int w = 0; w < W; ++w) s += lanes[w];
  return s + tail;
}

// float in, double accumulation (grad_norm_penalty): two Vectorized<double> per Vectorized<float>
inline at::vec::VectorizedN<double, 2> widen(const Vectorized<float>& v) {
  return at::vec::convert<double, 2, float, 1>(at::vec::VectorizedN<float, 1>(v));
}

template <typename S> double sum_squares(const S* x, int64_t n) {
  using V = Vectorized<double>;
  if constexpr (std::is_same_v<S, double>) {
    return reduce<double>(n, [&](int64_t i) { const V v = V::loadu(x + i); return v * v; },
                          [&](int64_t i) { return x[i] * x[i]; });
  } else {  // 8 floats -> 2 x 4 doubles
    constexpr int W = Vectorized<float>::size();
    V acc[2] = {V(0.0), V(0.0)};
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const auto d = widen(Vectorized<float>::loadu(x + i));
      acc[0] = acc[0] + d[0] * d[0];
      acc[1] = acc[1] + d[1] * d[1];
    }
    double tail = 0;
    for (; i < n; ++i) tail += double(x[i]) * double(x[i]);
    double lanes[4];
    (acc[0] + acc[1]).store(lanes);
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + tail;
  }
}

template <typename S> void scale(const S* x, S* out, double s, int64_t n) {
  using V = Vectorized<double>;
  int64_t i = 0;
  if constexpr (std::is_same_v<S, double>) {
    for (; i + V::size() <= n; i += V::size()) (V::loadu(x + i) * V(s)).store(out + i);
  } else {
    constexpr int W = Vectorized<float>::size();
    for (; i + W <= n; i += W) {
      auto d = widen(Vectorized<float>::loadu(x + i));
      d[0] = d[0] * V(s);
      d[1] = d[1] * V(s);
      at::vec::convert<float, 1, double, 2>(d).store(out + i);
    }
  }
  for (; i < n; ++i) out[i] = static_cast<S>(static_cast<double>(x[i]) * s);
}

template <typename T> T sum_abs_pow_diff(const T* x, const T* r, int64_t n, int p) {
  using V = Vectorized<T>;
  if (p == 1) {
    return reduce<T>(n, [&](int64_t i) { return vabs(V::loadu(x + i) - V::loadu(r + i)); },
                     [&](int64_t i) { return vabs(x[i] - r[i]); });
  }
  return reduce<T>(n, [&](int64_t i) { const V d = V::loadu(x + i) - V::loadu(r + i); return d * d; },
                   [&](int64_t i) { const T d = x[i] - r[i]; return d * d; });
}

template <typename T> void rec_grad(const T* x, const T* r, T* dx, T* dr, T s, int64_t n, int p) {
  using V = Vectorized<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    const V d = V::loadu(x + i) - V::loadu(r + i);
    const V g = p == 1 ? sign<T>(d) * V(s) : d * V(T(2) * s);
    if (dx) g.store(dx + i);
    if (dr) (V(T(0)) - g).store(dr + i);
  }
  for (; i < n; ++i) {
    const T d = x[i] - r[i];
    const T g = p == 1 ? sign<T>(d) * s : d * (T(2) * s);
    if (dx) dx[i] = g;
    if (dr) dr[i] = -g;
  }
}

template <typename T> void lerp(const T* real, const T* fake, T* out, T a, int64_t n) {
  using V = Vectorized<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    const V f = V::loadu(fake + i);
    (f + V(a) * (V::loadu(real + i) - f)).store(out + i);
  }
  for (; i < n; ++i) out[i] = fake[i] + a * (real[i] - fake[i]);
}

template <typename T> void lerp_grad(const T* g, T* dreal, T* dfake, T a, int64_t n) {
  using V = Vectorized<T>;
  const T b = T(1) - a;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    const V v = V::loadu(g + i);
    if (dreal) (v * V(a)).store(dreal + i);
    if (dfake) (v * V(b)).store(dfake + i);
  }
  for (; i < n; ++i) {
    if (dreal) dreal[i] = a * g[i];
    if (dfake) dfake[i] = b * g[i];
  }
}

template <typename T> T lerp_backward(const T* g, const T* real, const T* fake, T* dreal, T* dfake, T a, int64_t n) {
  using V = Vectorized<T>;
  const T b = T(1) - a;
  return reduce<T>(
      n,
      [&](int64_t i) {
        const V v = V::loadu(g + i);
        if (dreal) (v * V(a)).store(dreal + i);
        if (dfake) (v * V(b)).store(dfake + i);
        return v * (V::loadu(real + i) - V::loadu(fake + i));
      },
      [&](int64_t i) {
        if (dreal) dreal[i] = a * g[i];
        if (dfake) dfake[i] = b * g[i];
        return g[i] * (real[i] - fake[i]);
      });
}

template <int K, bool REAL, typename T> T adv_sum(const T* x, int64_t n, T target, T margin) {
  using V = Vectorized<T>;
  return reduce<T>(n, [&](int64_t i) { return adv_term<K, REAL, T, V>(V::loadu(x + i), target, margin); },
                   [&](int64_t i) { return adv_term<K, REAL, T, T>(x[i], target, margin); });
}

template <int K, bool REAL, typename T> void adv_grad(const T* x, T* dx, T s, int64_t n, T target, T margin) {
  using V = Vectorized<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) {
    (adv_term_grad<K, REAL, T, V>(V::loadu(x + i), target, margin) * V(s)).store(dx + i);
  }
  for (; i < n; ++i) dx[i] = s * adv_term_grad<K, REAL, T, T>(x[i], target, margin);
}
}  // namespace gen

// ------------------------------------------------------------------------------- the driver
// One call of `loop` over n elements, hand-written (vec = false) or Vectorized; returns a
// reduction's value (0 for element-wise loops). kind: terms::Kind; real: which side.
template <typename T>
double call(const std::string& loop, bool vec, int kind, bool real, const T* a, const T* b, const T* c, T* o1,
            T* o2, int64_t n) {
  const T t = T(0.75), m = T(1.5), s = T(0.5);
  if (loop == "sum_squares") return vec ? gen::sum_squares(a, n) : loops::sum_squares_avx2<T, double>(a, n);
  if (loop == "scale") {
    vec ? gen::scale(a, o1, 0.5, n) : loops::scale_avx2<T, double>(a, o1, 0.5, n);
    return 0;
  }
  if (loop == "rec_p1" || loop == "rec_p2") {
    const int p = loop == "rec_p1" ? 1 : 2;
    return vec ? gen::sum_abs_pow_diff(a, b, n, p) : loops::sum_abs_pow_diff_avx2<T, T>(a, b, n, p);
  }
  if (loop == "rec_grad_p1" || loop == "rec_grad_p2") {
    const int p = loop == "rec_grad_p1" ? 1 : 2;
    vec ? gen::rec_grad(a, b, o1, o2, s, n, p) : loops::rec_grad_avx2<T, T>(a, b, o1, o2, s, n, p);
    return 0;
  }
  if (loop == "lerp") {
    vec ? gen::lerp(a, b, o1, s, n) : loops::lerp_avx2<T, T>(a, b, o1, s, n);
    return 0;
  }
  if (loop == "lerp_grad") {
    vec ? gen::lerp_grad(a, o1, o2, s, n) : loops::lerp_grad_avx2<T, T>(a, o1, o2, s, n);
    return 0;
  }
  if (loop == "lerp_backward") {
    return vec ? gen::lerp_backward(a, b, c, o1, o2, s, n) : loops::lerp_backward_avx2<T, T>(a, b, c, o1, o2, s, n);
  }
  double out = 0;
  const auto one = [&](auto kc, auto rc) {
    constexpr int K = decltype(kc)::value;
    constexpr bool R = decltype(rc)::value;
    if (loop == "adv_sum") {
      out = vec ? gen::adv_sum<K, R>(a, n, t, m) : loops::adv_sum_avx2<K, R, T, T>(a, n, t, m);
    } else {
      vec ? gen::adv_grad<K, R>(a, o1, s, n, t, m) : loops::adv_grad_avx2<K, R, T, T>(a, o1, s, n, t, m);
    }
  };
  terms::dispatch_kind(
      kind,
      [&](auto kc) {
        if (real) {
          one(kc, std::true_type());
        } else {
          one(kc, std::false_type());
        }
      },
      [] { TORCH_CHECK(false, "unknown kind"); });
  return out;
}

// Run the loop `reps` times; returns (seconds per call, the last call's value).
std::tuple<double, double> run(const std::string& loop, bool vec, int64_t kind, bool real, at::Tensor a, at::Tensor b,
                               at::Tensor c, at::Tensor o1, at::Tensor o2, int64_t reps) {
  double value = 0;
  const auto t0 = std::chrono::steady_clock::now();
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "run", [&] {
    for (int64_t r = 0; r < reps; ++r) {
      value = call<scalar_t>(loop, vec, static_cast<int>(kind), real, a.const_data_ptr<scalar_t>(),
                             b.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
                             o1.mutable_data_ptr<scalar_t>(), o2.mutable_data_ptr<scalar_t>(), a.numel());
    }
  });
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {dt / static_cast<double>(reps), value};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("run", &run); }
