// The CPU kernels' hot loops two ways, for benchmarks/vec_vs_handwritten.py: the hand-written
// vector code (csrc/cpu/loops.h: GCC vector extensions, Cephes exp/log1p for fp32, libm for fp64;
// its AVX2 variant, name_avx2) and the at::vec::Vectorized code (AVX2, Sleef exp/log1p): the
// shipped `_vec` variants of csrc/cpu/loops_vec.cpp (compiled in by the script), and, for the loops
// that ship hand-written code only (sum_squares; scale with fp32 input and an fp64 factor), the
// Vectorized versions below. Both sides evaluate terms.h's formulas (csrc/common/terms.h).
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
    if constexpr (std::is_same_v<T, double>) {
      vec ? loops::scale_vec<T, T>(a, o1, 0.5, n) : loops::scale_avx2<T, T>(a, o1, 0.5, n);
    } else {
      vec ? gen::scale(a, o1, 0.5, n) : loops::scale_avx2<T, double>(a, o1, 0.5, n);
    }
    return 0;
  }
  if (loop == "rec_p1" || loop == "rec_p2") {
    const int p = loop == "rec_p1" ? 1 : 2;
    return vec ? loops::sum_abs_pow_diff_vec<T, T>(a, b, n, p) : loops::sum_abs_pow_diff_avx2<T, T>(a, b, n, p);
  }
  if (loop == "rec_grad_p1" || loop == "rec_grad_p2") {
    const int p = loop == "rec_grad_p1" ? 1 : 2;
    vec ? loops::rec_grad_vec<T, T>(a, b, o1, o2, s, n, p) : loops::rec_grad_avx2<T, T>(a, b, o1, o2, s, n, p);
    return 0;
  }
  if (loop == "lerp") {
    vec ? loops::lerp_vec<T, T>(a, b, o1, s, n) : loops::lerp_avx2<T, T>(a, b, o1, s, n);
    return 0;
  }
  if (loop == "lerp_grad") {
    vec ? loops::lerp_grad_vec<T, T>(a, o1, o2, s, n) : loops::lerp_grad_avx2<T, T>(a, o1, o2, s, n);
    return 0;
  }
  if (loop == "lerp_backward") {
    return vec ? loops::lerp_backward_vec<T, T>(a, b, c, o1, o2, s, n) : loops::lerp_backward_avx2<T, T>(a, b, c, o1, o2, s, n);
  }
  double out = 0;
  const auto one = [&](auto kc, auto rc) {
    constexpr int K = decltype(kc)::value;
    constexpr bool R = decltype(rc)::value;
    if (loop == "adv_sum") {
      out = vec ? loops::adv_sum_vec<K, R, T, T>(a, n, t, m) : loops::adv_sum_avx2<K, R, T, T>(a, n, t, m);
    } else {
      vec ? loops::adv_grad_vec<K, R, T, T>(a, o1, s, n, t, m) : loops::adv_grad_avx2<K, R, T, T>(a, o1, s, n, t, m);
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
