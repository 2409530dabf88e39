// Run-time choice of the AVX2 variants of the hot loops (csrc/cpu/loops.h).
#include "loops.h"

#include <cstdlib>
#include <cstring>

namespace fastgan {
namespace cpu {
namespace loops {

namespace {
bool detect_avx2() {
  const char* off = std::getenv("FASTGAN_DISABLE_AVX2");
  if (off != nullptr && std::strcmp(off, "1") == 0) return false;
#if FASTGAN_HAVE_AVX2_VARIANT
  __builtin_cpu_init();
  // loops_vec.cpp is compiled for avx2, fma and f16c (Vectorized's fp16 loads): all three, or
  // the baseline variants (every AVX2 CPU made has the other two; this makes sure).
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}
}  // namespace

bool cpu_has_avx2() {
  static const bool has = detect_avx2();
  return has;
}

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
