// fastgan CPU kernels: which variant of the hot loops runs on this CPU (csrc/cpu/loops.cpp).
#pragma once

namespace fastgan {
namespace cpu {
namespace loops {

// True when this CPU runs AVX2 (and the hot loops' AVX2 variants were compiled in).
bool cpu_has_avx2();

}  // namespace loops
}  // namespace cpu
}  // namespace fastgan
