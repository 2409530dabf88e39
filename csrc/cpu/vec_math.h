// The math primitives of terms.h (terms::Math) for at::vec::Vectorized: comparisons give lane
// masks, blendv selects with them; exp and log1p are Sleef's (u10) with an AVX2 capability, the C
// library's per element with the DEFAULT one. Included after <ATen/cpu/vec/vec.h>, whose
// capability (CPU_CAPABILITY_*) the includer chooses: by csrc/cpu/loops_vec.cpp and by
// benchmarks/vec_vs_handwritten.cpp.
#pragma once

#include "../common/terms.h"

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
}  // namespace fastgan
