// fastgan CPU kernels: the fp32 / fp64 Vectorized loops shared by csrc/cpu/loops_vec.cpp (AVX2)
// and csrc/cpu/loops_vec_base.cpp (Vectorized's DEFAULT capability, CPUs without AVX2), written
// once. Included after <ATen/cpu/vec/vec.h> and vec_math.h, whose capability the includer chose.
// Everything here is in an anonymous namespace: each including file compiles its own copy for its
// own instruction set, and no copy can stand in for another's (no ODR merge across capabilities).
#pragma once

#include <cstdint>

namespace fastgan {
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

// out = real + a·(fake − real), fp32 or fp64 in and out
template <typename T>
void generic_lerp(const T* real, const T* fake, T* out, T a, int64_t n) {
  using V = Vc<T>;
  int64_t i = 0;
  for (; i + V::size() <= n; i += V::size()) terms::lerp(V::loadu(real + i), V::loadu(fake + i), a).store(out + i);
  for (; i < n; ++i) out[i] = terms::lerp(real[i], fake[i], a);
}

// Σ t(x_i) for the adversarial term of kind K on side REAL, fp32 or fp64 in and accumulated
template <int K, bool REAL, typename T>
T generic_adv_sum(const T* x, int64_t n, T target, T margin) {
  using V = Vc<T>;
  return vreduce<T>(
      n, [&](int64_t i) { return terms::adv_term<K, REAL>(V::loadu(x + i), target, margin); },
      [&](int64_t i) { return terms::adv_term<K, REAL>(x[i], target, margin); });
}
}  // namespace
}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
