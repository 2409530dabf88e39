// The CPU kernels' hot loops two ways, for benchmarks/vec_vs_handwritten.py: the hand-written
// vector code (csrc/cpu/loops.h: GCC vector extensions, Cephes exp/log1p for fp32, libm for fp64;
// its AVX2 variant, name_avx2) and the at::vec::Vectorized code (AVX2, Sleef exp/log1p): the
// shipped `_vec` variants of csrc/cpu/loops_vec.cpp (compiled in by the script), and, for the loops
// that ship hand-written code only (sum_squares; scale with fp32 input and an fp64 factor), the
// Vectorized versions below. Both sides evaluate terms.h's formulas (csrc/common/terms.h).
// Compiled by the script with -mavx2 -mfma -DCPU_CAPABILITY=AVX2 -DCPU_CAPABILITY_AVX2; and a second
// time with -DFASTGAN_BENCH_BASE and Vectorized's DEFAULT capability (no -mavx2), where only
// run_generic exists (vec_vs_handwritten_generic.h: the loops on Vectorized for any input type,
// against loops.h's baseline variants). Not part of fastgan's build.
#include <ATen/cpu/vec/vec.h>
#include <torch/extension.h>

#include "loops.h"
#include "vec_math.h"            // terms::Math for Vectorized (loops_vec.cpp's)
#include "loops_vec_generic.h"   // loops_vec.cpp's Vectorized loops (vreduce)

#include <chrono>
#include <cmath>
#include <string>

using at::vec::Vectorized;
namespace loops = fastgan::cpu::loops;
namespace terms = fastgan::terms;

namespace gen {
// float in, double accumulation (grad_norm_penalty): two Vectorized<double> per Vectorized<float>
inline at::vec::VectorizedN<double, 2> widen(const Vectorized<float>& v) {
  return at::vec::convert<double, 2, float, 1>(at::vec::VectorizedN<float, 1>(v));
}

template <typename S> double sum_squares(const S* x, int64_t n) {
  using V = Vectorized<double>;
  if constexpr (std::is_same_v<S, double>) {
    return loops::vreduce<double>(n, [&](int64_t i) { const V v = V::loadu(x + i); return v * v; },
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
#ifndef FASTGAN_BENCH_BASE
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

#endif  // FASTGAN_BENCH_BASE

// ------------------------------------------- Vectorized for any input type (bf16 / fp16 / base)
// The loops on at::vec::Vectorized<A> with A = fp64 for fp64 input, else fp32: bf16 and fp16 load
// through at::vec::load_to_float (16 elements to two float vectors) and store through
// convert_from_float, fp32 and fp64 through loadu / store. Against the hand-written variant HAND:
// name_avx2 here, name_base in the FASTGAN_BENCH_BASE build, where Vectorized is its DEFAULT
// capability (plain arrays of 32 bytes; exp and log1p per element through the C library).
#ifndef FASTGAN_BENCH_BASE
#define HAND(name) name##_avx2
#else
#define HAND(name) name##_base
#endif

namespace gv {
template <typename T>
using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
template <typename T>
using FV = Vectorized<Acc<T>>;
template <typename T>
constexpr int64_t kW = FV<T>::size();

// two vectors from 2W elements at p, and back
template <typename T> inline void load2(const T* p, FV<T>& a, FV<T>& b) {
  if constexpr (at::vec::is_reduced_floating_point_v<T>) {
    at::vec::load_to_float(p, a, b);
  } else {
    a = FV<T>::loadu(p);
    b = FV<T>::loadu(p + kW<T>);
  }
}
template <typename T> inline void store2(T* p, const FV<T>& a, const FV<T>& b) {
  if constexpr (at::vec::is_reduced_floating_point_v<T>) {
    at::vec::convert_from_float<T>(a, b).store(p);
  } else {
    a.store(p);
    b.store(p + kW<T>);
  }
}

// Σ f(a, b) over blocks of 2W elements (two blocks per step, four accumulators), scalar tail g(i)
template <typename T, typename F, typename G> Acc<T> reduce(int64_t n, const F& f, const G& g) {
  using V = FV<T>;
  constexpr int64_t W = kW<T>;
  V acc[4] = {V(0), V(0), V(0), V(0)};
  int64_t i = 0;
  for (; i + 4 * W <= n; i += 4 * W) {
    f(i, acc[0], acc[1]);
    f(i + 2 * W, acc[2], acc[3]);
  }
  for (; i + 2 * W <= n; i += 2 * W) f(i, acc[0], acc[1]);
  Acc<T> tail = 0;
  for (; i < n; ++i) tail += g(i);
  Acc<T> lanes[W];
  ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
  Acc<T> s = 0;
  for (int w = 0; w < W; ++w) s += lanes[w];
  return s + tail;
}
// bf16 / fp16 on AVX2: the shipped loops of csrc/cpu/loops_vec.cpp (namespace lowp there, the same
// code as below), so the table measures what fastgan runs
template <typename T>
constexpr bool kShipped = at::vec::is_reduced_floating_point_v<T>;
template <typename T> inline Acc<T> at(const T* p, int64_t i) { return static_cast<Acc<T>>(p[i]); }

// sum_squares / scale accumulate in fp64 (grad_norm_penalty): fp32 vectors widened
template <typename T> double sum_squares(const T* x, int64_t n) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::sum_squares_vec<T, double>(x, n);
#endif
  if constexpr (std::is_same_v<T, double>) {
    return reduce<T>(n, [&](int64_t i, auto& s0, auto& s1) { FV<T> a, b; load2(x + i, a, b); s0 = s0 + a * a; s1 = s1 + b * b; },
                     [&](int64_t i) { return x[i] * x[i]; });
  } else {
    using D = Vectorized<double>;
    constexpr int64_t W = kW<T>;
    D acc[4] = {D(0.0), D(0.0), D(0.0), D(0.0)};
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      FV<T> a, b;
      load2(x + i, a, b);
      const auto da = gen::widen(a), db = gen::widen(b);
      acc[0] = acc[0] + da[0] * da[0];
      acc[1] = acc[1] + da[1] * da[1];
      acc[2] = acc[2] + db[0] * db[0];
      acc[3] = acc[3] + db[1] * db[1];
    }
    double tail = 0;
    for (; i < n; ++i) tail += double(x[i]) * double(x[i]);
    double lanes[D::size()];
    ((acc[0] + acc[1]) + (acc[2] + acc[3])).store(lanes);
    double s = 0;
    for (int w = 0; w < D::size(); ++w) s += lanes[w];
    return s + tail;
  }
}
template <typename T> void scale(const T* x, T* out, double s, int64_t n) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::scale_vec<T, double>(x, out, s, n);
#endif
  using D = Vectorized<double>;
  constexpr int64_t W = kW<T>;
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    FV<T> a, b;
    load2(x + i, a, b);
    if constexpr (std::is_same_v<T, double>) {
      store2(out + i, a * D(s), b * D(s));
    } else {
      auto da = gen::widen(a), db = gen::widen(b);
      for (int k = 0; k < 2; ++k) { da[k] = da[k] * D(s); db[k] = db[k] * D(s); }
      store2(out + i, at::vec::convert<float, 1, double, 2>(da), at::vec::convert<float, 1, double, 2>(db));
    }
  }
  for (; i < n; ++i) out[i] = static_cast<T>(static_cast<double>(x[i]) * s);
}

template <typename T> Acc<T> rec_sum(const T* x, const T* r, int64_t n, int p) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::sum_abs_pow_diff_vec<T, float>(x, r, n, p);
#endif
  const auto body = [&](auto pc) {
    constexpr int P = decltype(pc)::value;
    return reduce<T>(
        n,
        [&](int64_t i, auto& s0, auto& s1) {
          FV<T> xa, xb, ra, rb;
          load2(x + i, xa, xb);
          load2(r + i, ra, rb);
          s0 = s0 + terms::rec_term(xa - ra, P);
          s1 = s1 + terms::rec_term(xb - rb, P);
        },
        [&](int64_t i) { return terms::rec_term(at(x, i) - at(r, i), P); });
  };
  return p == 1 ? body(std::integral_constant<int, 1>()) : body(std::integral_constant<int, 2>());
}

template <typename T> void rec_grad(const T* x, const T* r, T* dx, T* dr, Acc<T> s, int64_t n, int p) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::rec_grad_vec<T, float>(x, r, dx, dr, s, n, p);
#endif
  using V = FV<T>;
  int64_t i = 0;
  for (; i + 2 * kW<T> <= n; i += 2 * kW<T>) {
    V xa, xb, ra, rb;
    load2(x + i, xa, xb);
    load2(r + i, ra, rb);
    const V ga = terms::rec_term_grad(xa - ra, p) * V(s), gb = terms::rec_term_grad(xb - rb, p) * V(s);
    if (dx) store2(dx + i, ga, gb);
    if (dr) store2(dr + i, ga.neg(), gb.neg());
  }
  for (; i < n; ++i) {
    const Acc<T> g = s * terms::rec_term_grad(at(x, i) - at(r, i), p);
    if (dx) dx[i] = static_cast<T>(g);
    if (dr) dr[i] = static_cast<T>(-g);
  }
}

template <typename T> void lerp(const T* real, const T* fake, T* out, Acc<T> a, int64_t n) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::lerp_vec<T, float>(real, fake, out, a, n);
#endif
  int64_t i = 0;
  for (; i + 2 * kW<T> <= n; i += 2 * kW<T>) {
    FV<T> ra, rb, fa, fb;
    load2(real + i, ra, rb);
    load2(fake + i, fa, fb);
    store2(out + i, terms::lerp(ra, fa, a), terms::lerp(rb, fb, a));
  }
  for (; i < n; ++i) out[i] = static_cast<T>(terms::lerp(at(real, i), at(fake, i), a));
}

template <typename T> void lerp_grad(const T* g, T* dreal, T* dfake, Acc<T> a, int64_t n) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::lerp_grad_vec<T, float>(g, dreal, dfake, a, n);
#endif
  int64_t i = 0;
  for (; i + 2 * kW<T> <= n; i += 2 * kW<T>) {
    FV<T> va, vb;
    load2(g + i, va, vb);
    if (dreal) store2(dreal + i, terms::lerp_grad_real(va, a), terms::lerp_grad_real(vb, a));
    if (dfake) store2(dfake + i, terms::lerp_grad_fake(va, a), terms::lerp_grad_fake(vb, a));
  }
  for (; i < n; ++i) {
    if (dreal) dreal[i] = static_cast<T>(terms::lerp_grad_real(at(g, i), a));
    if (dfake) dfake[i] = static_cast<T>(terms::lerp_grad_fake(at(g, i), a));
  }
}

template <typename T>
Acc<T> lerp_backward(const T* g, const T* real, const T* fake, T* dreal, T* dfake, Acc<T> a, int64_t n) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::lerp_backward_vec<T, float>(g, real, fake, dreal, dfake, a, n);
#endif
  return reduce<T>(
      n,
      [&](int64_t i, auto& s0, auto& s1) {
        FV<T> va, vb, ra, rb, fa, fb;
        load2(g + i, va, vb);
        load2(real + i, ra, rb);
        load2(fake + i, fa, fb);
        if (dreal) store2(dreal + i, terms::lerp_grad_real(va, a), terms::lerp_grad_real(vb, a));
        if (dfake) store2(dfake + i, terms::lerp_grad_fake(va, a), terms::lerp_grad_fake(vb, a));
        s0 = s0 + terms::lerp_grad_alpha(va, ra, fa);
        s1 = s1 + terms::lerp_grad_alpha(vb, rb, fb);
      },
      [&](int64_t i) {
        const Acc<T> v = at(g, i);
        if (dreal) dreal[i] = static_cast<T>(terms::lerp_grad_real(v, a));
        if (dfake) dfake[i] = static_cast<T>(terms::lerp_grad_fake(v, a));
        return terms::lerp_grad_alpha(v, at(real, i), at(fake, i));
      });
}

template <int K, bool REAL, typename T> Acc<T> adv_sum(const T* x, int64_t n, Acc<T> t, Acc<T> m) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::adv_sum_vec<K, REAL, T, float>(x, n, t, m);
#endif
  return reduce<T>(
      n,
      [&](int64_t i, auto& s0, auto& s1) {
        FV<T> a, b;
        load2(x + i, a, b);
        s0 = s0 + terms::adv_term<K, REAL>(a, t, m);
        s1 = s1 + terms::adv_term<K, REAL>(b, t, m);
      },
      [&](int64_t i) { return terms::adv_term<K, REAL>(at(x, i), t, m); });
}

template <int K, bool REAL, typename T> void adv_grad(const T* x, T* dx, Acc<T> s, int64_t n, Acc<T> t, Acc<T> m) {
#ifndef FASTGAN_BENCH_BASE
  if constexpr (kShipped<T>) return loops::adv_grad_vec<K, REAL, T, float>(x, dx, s, n, t, m);
#endif
  using V = FV<T>;
  int64_t i = 0;
  for (; i + 2 * kW<T> <= n; i += 2 * kW<T>) {
    V a, b;
    load2(x + i, a, b);
    store2(dx + i, terms::adv_term_grad<K, REAL>(a, t, m) * V(s), terms::adv_term_grad<K, REAL>(b, t, m) * V(s));
  }
  for (; i < n; ++i) dx[i] = static_cast<T>(s * terms::adv_term_grad<K, REAL>(at(x, i), t, m));
}
}  // namespace gv

// One call of `loop`: the hand-written variant HAND (vec = false) or gv's Vectorized loop.
template <typename T>
double call_generic(const std::string& loop, bool vec, int kind, bool real, const T* a, const T* b, const T* c, T* o1,
                    T* o2, int64_t n) {
  using A = gv::Acc<T>;
  const A t = A(0.75), m = A(1.5), s = A(0.5);
  if (loop == "sum_squares") return vec ? gv::sum_squares(a, n) : loops::HAND(sum_squares)<T, double>(a, n);
  if (loop == "scale") {
    vec ? gv::scale(a, o1, 0.5, n) : loops::HAND(scale)<T, double>(a, o1, 0.5, n);
    return 0;
  }
  if (loop == "rec_p1" || loop == "rec_p2") {
    const int p = loop == "rec_p1" ? 1 : 2;
    return vec ? gv::rec_sum(a, b, n, p) : loops::HAND(sum_abs_pow_diff)<T, A>(a, b, n, p);
  }
  if (loop == "rec_grad_p1" || loop == "rec_grad_p2") {
    const int p = loop == "rec_grad_p1" ? 1 : 2;
    vec ? gv::rec_grad(a, b, o1, o2, s, n, p) : loops::HAND(rec_grad)<T, A>(a, b, o1, o2, s, n, p);
    return 0;
  }
  if (loop == "lerp") {
    vec ? gv::lerp(a, b, o1, s, n) : loops::HAND(lerp)<T, A>(a, b, o1, s, n);
    return 0;
  }
  if (loop == "lerp_grad") {
    vec ? gv::lerp_grad(a, o1, o2, s, n) : loops::HAND(lerp_grad)<T, A>(a, o1, o2, s, n);
    return 0;
  }
  if (loop == "lerp_backward") {
    return vec ? gv::lerp_backward(a, b, c, o1, o2, s, n) : loops::HAND(lerp_backward)<T, A>(a, b, c, o1, o2, s, n);
  }
  double out = 0;
  const auto one = [&](auto kc, auto rc) {
    constexpr int K = decltype(kc)::value;
    constexpr bool R = decltype(rc)::value;
    if (loop == "adv_sum") {
      out = vec ? gv::adv_sum<K, R>(a, n, t, m) : loops::HAND(adv_sum)<K, R, T, A>(a, n, t, m);
    } else {
      vec ? gv::adv_grad<K, R>(a, o1, s, n, t, m) : loops::HAND(adv_grad)<K, R, T, A>(a, o1, s, n, t, m);
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

// Run the loop `reps` times, any floating input type; returns (seconds per call, the last value).
std::tuple<double, double> run_generic(const std::string& loop, bool vec, int64_t kind, bool real, at::Tensor a,
                                       at::Tensor b, at::Tensor c, at::Tensor o1, at::Tensor o2, int64_t reps) {
  double value = 0;
  const auto t0 = std::chrono::steady_clock::now();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, a.scalar_type(), "run_generic", [&] {
    for (int64_t r = 0; r < reps; ++r) {
      value = call_generic<scalar_t>(loop, vec, static_cast<int>(kind), real, a.const_data_ptr<scalar_t>(),
                                     b.const_data_ptr<scalar_t>(), c.const_data_ptr<scalar_t>(),
                                     o1.mutable_data_ptr<scalar_t>(), o2.mutable_data_ptr<scalar_t>(), a.numel());
    }
  });
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {dt / static_cast<double>(reps), value};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
#ifndef FASTGAN_BENCH_BASE
  m.def("run", &run);
#endif
  m.def("run_generic", &run_generic);
}
